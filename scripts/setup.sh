#!/usr/bin/env bash
# Installs what buoy's demo and tests need on a Debian machine (as root):
# Debian packages (only those missing) and the npm dependencies.
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

node -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("setup: buoy needs Node.js 20 or later, found " + process.version); process.exit(1) }'
if [[ ! -x node_modules/.bin/bun || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
