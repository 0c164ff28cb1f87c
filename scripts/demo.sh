#!/usr/bin/env bash
# The main job: `buoy lab demo`. Builds a 2-node virtual cluster in network
# namespaces (etcd, a node agent and BIRD per node, an external BGP router),
# gives a pod a floating IP with the real CNI plugin, prints who reaches it
# over which protocol, moves it to a pod on the other node under a 100 Hz
# ping and prints the interruption, then removes everything it made.
# Arguments go to `buoy lab demo` (e.g. --routing direct, --ipv6).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "demo.sh: run as root (the lab creates network namespaces)" >&2; exit 1; }
scripts/setup.sh
npm run -s build
exec node_modules/.bin/node dist/buoy lab demo "$@"
