#!/usr/bin/env bash
# Every test: static checks and unit tests, then the integration tests against
# the real kernel and etcd inside throwaway network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "test.sh: run as root (the integration tests create network namespaces)" >&2; exit 1; }
scripts/setup.sh
npm run -s check
npm run -s test:integration
