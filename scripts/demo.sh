#!/usr/bin/env bash
# The main job, until the lab exists: a walk-through of a floating IP's life
# (pool, ADD with the annotation, the CNI result, the stored endpoint and
# claim, DEL, everything gone) inside throwaway network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "demo.sh: run as root (the demo creates network namespaces)" >&2; exit 1; }
scripts/setup.sh
npm run -s build
exec scripts/netns-run.sh "bdemo-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  ./node_modules/.bin/bun scripts/walkthrough.ts
