#!/usr/bin/env bash
# Every test: static checks and unit tests, the integration tests against the
# real kernel and etcd, the end-to-end tests on `buoy lab` clusters (BIRD,
# routing across nodes), then the tests against a real kube-apiserver v1.20.2
# built from Debian's source (scripts/kube/build.sh, cached in
# /var/cache/buoy-kube-1.20), and the container image built without Docker
# (scripts/image/build.sh, its root file system cached in /var/cache/buoy-image),
# and buoy called by a real kubelet and containerd (test/node), all inside
# throwaway network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "test.sh: run as root (the integration tests create network namespaces)" >&2; exit 1; }
scripts/setup.sh
npm run -s check
npm run -s test:integration
npm run -s test:e2e
npm run -s test:kube
npm run -s test:node
npm run -s test:image
