#!/usr/bin/env bash
# Runs a command inside a fresh network namespace that plays the node:
#   scripts/netns-run.sh PREFIX command [args...]
# Creates PREFIX-node (loopback up, IPv4/IPv6 forwarding on), runs the command
# in it with BUOY_RUN_PREFIX=PREFIX exported, then removes every namespace
# whose name starts with PREFIX and stops the processes still inside them (by
# PID: only what this run started can be there) and deletes /tmp/PREFIX-*
# (logs, data dirs) — also on failure or signal.
# Nothing is ever added to the root namespace.
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
  rm -rf "/tmp/${prefix}-"*
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A reader that goes away (`| head`) must not cut the cleanup short.
trap '' PIPE

ip netns add "$node"
ip -n "$node" link set lo up
ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
BUOY_RUN_PREFIX="$prefix" ip netns exec "$node" "$@"
