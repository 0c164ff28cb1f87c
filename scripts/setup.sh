#!/usr/bin/env bash
# Installs what buoy's demo and tests need on a Debian machine (as root):
# Debian packages (only those missing) and the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(iproute2 nftables iptables conntrack etcd-server etcd-client
  containernetworking-plugins iputils-ping socat util-linux procps)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("setup: buoy needs Node.js 20 or later, found " + process.version); process.exit(1) }'
if [[ ! -x node_modules/.bin/bun || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
