#!/usr/bin/env bash
# Runs a command inside a fresh network namespace that plays the node:
#   scripts/netns-run.sh PREFIX command [args...]
# Creates PREFIX-node (loopback up, IPv4/IPv6 forwarding on), runs the command
# in it with BUOY_RUN_PREFIX=PREFIX exported, then removes every namespace
# whose name starts with PREFIX and stops the processes still inside them (by
# PID: only what this run started can be there) and deletes /tmp/PREFIX-*
# (logs, data dirs) — also on failure or signal.
# Nothing is ever added to the root namespace.
#
# BUOY_NETNS_MOUNTS=host enters the namespace with `nsenter --net` instead of
# `ip netns exec`, keeping the host's mount namespace and /sys (cgroups, the
# pods' network namespace mounts): what a real kubelet and containerd need
# (test/support/kube-node.ts). Host state such a run recorded in
# /tmp/PREFIX-node-host-state is put back at cleanup
# (scripts/kube/restore-host-state.sh).
set -euo pipefail
prefix=${1:?usage: netns-run.sh PREFIX command...}
shift
[[ $prefix =~ ^[a-z][a-z0-9-]{2,24}$ ]] || { echo "netns-run: bad prefix '$prefix'" >&2; exit 2; }
node="$prefix-node"

cleanup() {
  exec >/dev/null 2>&1
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  sleep 0.2
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [[ -f /tmp/${prefix}-node-host-state ]]; then
    "$(dirname "$0")/kube/restore-host-state.sh" "/tmp/${prefix}-node-host-state" || true
  fi
  # Mounts a run left under its own /tmp paths (the kubelet binds its root dir).
  local target
  for target in $(findmnt -rn -o TARGET | grep -E "^/tmp/${prefix}-" | sort -r || true); do
    umount -l "$target" || true
  done
  rm -rf "/tmp/${prefix}-"*
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A reader that goes away (`| head`) must not cut the cleanup short.
trap '' PIPE

ip netns add "$node"
ip -n "$node" link set lo up
ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
if [[ ${BUOY_NETNS_MOUNTS:-} == host ]]; then
  BUOY_RUN_PREFIX="$prefix" nsenter --net="/run/netns/$node" -- "$@"
else
  BUOY_RUN_PREFIX="$prefix" ip netns exec "$node" "$@"
fi
