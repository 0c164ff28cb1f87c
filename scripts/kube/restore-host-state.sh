#!/usr/bin/env bash
# Puts back what a real-node test changed outside its run, from the file
# test/support/kube-node.ts wrote before starting the kubelet
# (/tmp/PREFIX-node-host-state); scripts/netns-run.sh calls it at cleanup
# too, so a test that died still leaves the host as it found it. Lines:
#   sysctl NAME VALUE     a global sysctl the kubelet tunes: set back
#   created PATH          a fixed path that did not exist: unmounted below, removed
#   cgroup PATH           a cgroup that did not exist (where runc puts pods):
#                         the processes in it killed (they are the run's pods), removed
#   netns NAME            a pod network namespace that existed before: kept
# Every other /run/netns/cni-* (made by this run's containerd) is deleted.
set -uo pipefail
file=${1:?usage: restore-host-state.sh FILE}
[[ -f $file ]] || exit 0
declare -A keep=()
while read -r kind name value; do
  case $kind in
    netns) keep[$name]=1 ;;
    cgroup)
      [[ -d $name ]] || continue
      # Deepest first: a cgroup can go only when empty of processes and children.
      while read -r dir; do
        while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$dir/cgroup.procs"
      done < <(find "$name" -depth -type d 2>/dev/null)
      sleep 0.2
      find "$name" -depth -type d -exec rmdir {} \; 2>/dev/null
      ;;
  esac
done <"$file"
for ns in /run/netns/cni-*; do
  [[ -e $ns ]] || continue
  name=${ns#/run/netns/}
  [[ -n ${keep[$name]:-} ]] || ip netns delete "$name" 2>/dev/null
done
while read -r kind name value; do
  case $kind in
    sysctl) sysctl -qw "$name=$value" ;;
    created)
      [[ -e $name ]] || continue
      findmnt -rn -o TARGET | grep -E "^${name}(/|$)" | sort -r | while read -r target; do
        umount -l "$target" 2>/dev/null
      done
      rm -rf -- "$name"
      ;;
  esac
done <"$file"
rm -f -- "$file"
# The machine's node lock, when its holder is gone (test/support/kube-node.ts).
lock=/run/lock/buoy-kube-node.pid
if [[ -f $lock ]] && ! kill -0 "$(cat "$lock")" 2>/dev/null; then rm -f -- "$lock"; fi
