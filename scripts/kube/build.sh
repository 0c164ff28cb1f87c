#!/usr/bin/env bash
# Builds the real Kubernetes API server the kube tests run against:
# kube-apiserver v1.20.2 (and kube-controller-manager with KCM=1), from Debian
# bookworm's source package `kubernetes` (1.20.5+really1.20.2-1.1+deb12u1,
# vendored dependencies included) with Debian's Go 1.19, offline: apt is the
# only thing reached. Also extracts the version-matched kubectl from Debian's
# `kubernetes-client` (for looking around by hand; the tests do not need it).
#
#   scripts/kube/build.sh             # kube-apiserver (+ kubectl)
#   KCM=1 scripts/kube/build.sh       # also kube-controller-manager
#   KUBELET=1 scripts/kube/build.sh   # also the kubelet and kube-scheduler (a real node: issue 6)
#
# Everything (apt lists, source, Go build cache, binaries, logs) is cached in
# BUOY_KUBE_CACHE (default /var/cache/buoy-kube-1.20); a second run finds the
# binaries there and returns in well under a second. Idempotent and safe to interrupt:
# every step builds under a temporary name and renames when complete, and a
# lock keeps two runs from building the same cache at once.
# Installs only the Debian packages missing (as root). docs/kube-testing.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache=${BUOY_KUBE_CACHE:-/var/cache/buoy-kube-1.20}
want_version=${BUOY_KUBE_DEB_VERSION:-1.20.5+really1.20.2-1.1+deb12u1}
reflect2_version=1.0.2-2
# Bumped whenever the preparation of the source (recipe) or the go build
# flags (build_recipe) below change: forces a redo of that part.
recipe=1
build_recipe=2
go=/usr/lib/go-1.19/bin/go
targets=(kube-apiserver)
[[ ${KCM:-0} == 1 ]] && targets+=(kube-controller-manager)
[[ ${KUBELET:-0} == 1 ]] && targets+=(kubelet kube-scheduler)
jobs=${BUOY_KUBE_JOBS:-$(nproc)}

begin=$SECONDS
log() { printf 'kube-build: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
# Runs a command with its output going to a log file; shows the tail on failure.
logged() {
  local file=$1
  shift
  if ! "$@" >>"$file" 2>&1; then
    tail -n 30 "$file" >&2
    die "failed: $* (full log: $file)"
  fi
}

# ---- Debian packages: only the missing ones --------------------------------
missing_of() {
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      printf '%s\n' "$package"
  done
}
apt_install() {
  local missing
  mapfile -t missing < <(missing_of "$@")
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || die "missing Debian packages ${missing[*]} (run as root to install them)"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A freshly installed etcd must not start as a service in the root namespace.
  local policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
  fi
  local status=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
    status=$?
  [[ -n $policy ]] && rm -f "$policy"
  ((status == 0)) || die "apt-get install ${missing[*]} failed"
  if [[ " ${missing[*]} " == *" etcd-server "* && -d /run/systemd/system ]]; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
}
# What the tests need at run time: etcd for the API server, openssl for its PKI.
apt_install etcd-server openssl util-linux

mkdir -p "$cache" 2>/dev/null && [[ -w $cache ]] || die "cannot write to $cache (set BUOY_KUBE_CACHE)"
mkdir -p "$cache/bin" "$cache/logs"
exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "waiting for another build of $cache"
  flock 9
fi

# ---- fast path: every binary built from the current source -----------------
source_stamp() { cat "$cache/src/.buoy-source" 2>/dev/null || true; }
binary_stamp() { echo "$(source_stamp)build=$build_recipe"; }
source_ready() {
  local stamp
  stamp=$(source_stamp)
  [[ $stamp == "recipe=$recipe "* ]] || return 1
  [[ -z ${BUOY_KUBE_DEB_VERSION:-} || $stamp == *" version=$BUOY_KUBE_DEB_VERSION "* ]]
}
binary_ready() {
  [[ -x $cache/bin/$1 && -f $cache/bin/$1.stamp && $(<"$cache/bin/$1.stamp") == "$(binary_stamp)" ]]
}
all_ready() {
  source_ready || return 1
  local target
  for target in "${targets[@]}"; do binary_ready "$target" || return 1; done
}
if all_ready; then
  for target in "${targets[@]}"; do
    log "$target: cached ($("$cache/bin/$target" --version 2>&1)) in $cache/bin"
  done
  exit 0
fi

apt_install golang-1.19-go dpkg-dev
[[ -x $go ]] || die "$go not found after installing golang-1.19-go"

# ---- the source, once: private apt configuration, two fixes, openapi --------
apt_config() {
  # deb and deb-src entries for Debian bookworm, taken from the system's own
  # apt sources (deb822 .sources files and one-line .list files), in a
  # private configuration under $cache: the system's apt setup is not touched.
  local dir=$cache/apt
  mkdir -p "$dir/sources" "$dir/lists/partial" "$dir/cache/archives/partial"
  local sources=()
  shopt -s nullglob
  sources=(/etc/apt/sources.list.d/*.sources)
  if ((${#sources[@]} > 0)); then
    awk 'BEGIN { RS = ""; ORS = "" }
      {
        keep = 0; n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) if (lines[i] ~ /^Suites:/) {
          m = split(substr(lines[i], 8), suites)
          for (j = 1; j <= m; j++) if (suites[j] ~ /^bookworm(-updates|-security)?$/) keep = 1
        }
        if (!keep) next
        for (i = 1; i <= n; i++) print (lines[i] ~ /^Types:/ ? "Types: deb deb-src" : lines[i]) "\n"
        print "\n"
      }' "${sources[@]}" >"$dir/sources/debian.sources.tmp"
  else
    : >"$dir/sources/debian.sources.tmp"
  fi
  sources=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  shopt -u nullglob
  local lists=()
  for file in "${sources[@]}"; do [[ -f $file ]] && lists+=("$file"); done
  if ((${#lists[@]} > 0)); then
    awk '$1 == "deb" {
        rest = $0; sub(/^deb[ \t]+/, "", rest); opts = ""
        if (rest ~ /^\[/) { opts = substr(rest, 1, index(rest, "]")) " "; rest = substr(rest, index(rest, "]") + 1) }
        n = split(rest, f)
        if (n >= 2 && f[2] ~ /^bookworm(-updates|-security)?$/) { print "deb " opts rest; print "deb-src " opts rest }
      }' "${lists[@]}" >"$dir/sources/debian.list.tmp"
  else
    : >"$dir/sources/debian.list.tmp"
  fi
  [[ -s $dir/sources/debian.sources.tmp || -s $dir/sources/debian.list.tmp ]] ||
    die "no Debian bookworm entry in the system's apt sources"
  mv -f "$dir/sources/debian.sources.tmp" "$dir/sources/debian.sources"
  mv -f "$dir/sources/debian.list.tmp" "$dir/sources/debian.list"
  apt_options=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$dir/sources"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache")
}

# Generates pkg/generated/openapi/zz_generated.openapi.go, which the source
# tarball lacks: the KUBE target of Makefile.generated_files (gen_openapi)
# without the whole `make generated_files`.
generate_openapi() {
  (
    cd "$GOPATH/src/k8s.io/kubernetes"
    "$go" build -o "$cache/bin/.openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
    local dirs tagfiles inputs
    dirs=$(find -H . -not \( \( -path ./_\* -o -path ./.\* -o -path ./vendor -o -path ./debian \) -prune \) \
      -type f -name '*.go' | sed 's|^./staging/src|vendor|; s|^./||; s|/[^/]*$||' | LC_ALL=C sort -u)
    tagfiles=$(for d in $dirs; do find "$d" -maxdepth 1 -type f -name '*.go'; done |
      xargs grep --color=never -l '^// *+k8s:' |
      grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/')
    # shellcheck disable=SC2086 # word splitting of the file list is intended
    inputs=$(grep --color=never -l '+k8s:openapi-gen=' $tagfiles | xargs -n1 dirname | LC_ALL=C sort -u |
      sed 's|^|k8s.io/kubernetes/|' | paste -sd,)
    echo "openapi input packages: $(tr , '\n' <<<"$inputs" | wc -l)"
    "$cache/bin/.openapi-gen" --logtostderr -i "$inputs" -p k8s.io/kubernetes/pkg/generated/openapi \
      -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
      -r "$cache/logs/openapi-violations.report"
    test -s pkg/generated/openapi/zz_generated.openapi.go
  )
}

export GOPATH=$cache/gopath GO111MODULE=off GOFLAGS= GOPROXY=off GOENV=off CGO_ENABLED=0 \
  GOCACHE=$cache/gocache
export PATH=/usr/lib/go-1.19/bin:$PATH

if ! source_ready; then
  step=$SECONDS
  apt_log=$cache/logs/apt.log
  : >"$apt_log"
  apt_config
  log "[source] apt lists for Debian bookworm (deb-src) in $cache/apt"
  logged "$apt_log" apt-get "${apt_options[@]}" update
  version=$want_version
  mapfile -t available < <(apt-cache "${apt_options[@]}" showsrc --only-source kubernetes 2>/dev/null |
    awk '/^Version: /{print $2}' | sort -uV)
  if [[ " ${available[*]} " != *" $version "* ]]; then
    [[ -z ${BUOY_KUBE_DEB_VERSION:-} ]] || die "kubernetes $version not in apt (have: ${available[*]:-none})"
    fallback=$(printf '%s\n' "${available[@]}" | grep -F '+really1.20.2-' | tail -n1 || true)
    [[ -n $fallback ]] || die "no kubernetes 1.20.2 source package in apt (have: ${available[*]:-none})"
    log "warning: kubernetes $version is gone from apt, using $fallback"
    version=$fallback
  fi
  log "[source] kubernetes $version (source package, with vendor/)"
  mkdir -p "$cache/debsrc" "$cache/debs"
  (cd "$cache/debsrc" && logged "$apt_log" apt-get "${apt_options[@]}" source --download-only \
    --only-source "kubernetes=$version")
  (cd "$cache/debs" && logged "$apt_log" apt-get "${apt_options[@]}" download \
    "golang-github-modern-go-reflect2-dev=$reflect2_version")

  # Unpacked and fixed in $staging (with dpkg-source's own temporary
  # files), moved to $cache/src when complete.
  staging=$cache/staging
  rm -rf "$staging" "$cache/debs/reflect2"
  mkdir -p "$staging"
  log "[source] unpacking into $cache/src"
  logged "$apt_log" dpkg-source --no-copy -x "$cache/debsrc/kubernetes_${version#*:}.dsc" "$staging/src"
  # Fix 1: the vendored github.com/modern-go/reflect2 v1.0.1 segfaults under
  # Go >= 1.18 (as soon as json-iterator encodes a map); Debian's 1.0.2 works.
  log "[source] fix 1: vendor/github.com/modern-go/reflect2 1.0.1 -> Debian's $reflect2_version"
  dpkg-deb -x "$cache/debs/golang-github-modern-go-reflect2-dev_${reflect2_version}_all.deb" \
    "$cache/debs/reflect2"
  rm -rf "$staging/src/vendor/github.com/modern-go/reflect2"
  cp -r "$cache/debs/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2" \
    "$staging/src/vendor/github.com/modern-go/reflect2"
  rm -f "$staging/src/vendor/github.com/modern-go/reflect2/go.mod"
  # Kubernetes 1.20 builds in GOPATH mode from vendor/ (as upstream's
  # hack/lib/golang.sh and Debian do); the GOPATH view is a symlink.
  mkdir -p "$GOPATH/src/k8s.io"
  ln -sfn "$staging/src" "$GOPATH/src/k8s.io/kubernetes"
  # Fix 2: the generated openapi definitions are not in the tarball.
  log "[source] fix 2: generating pkg/generated/openapi"
  logged "$cache/logs/openapi.log" generate_openapi
  printf 'recipe=%s version=%s reflect2=%s \n' "$recipe" "$version" "$reflect2_version" \
    >"$staging/src/.buoy-source"
  rm -rf "$cache/src"
  mv "$staging/src" "$cache/src"
  rm -rf "$staging"
  ln -sfn "$cache/src" "$GOPATH/src/k8s.io/kubernetes"

  # kubectl of the same version, for looking around by hand (optional).
  if (cd "$cache/debs" && apt-get "${apt_options[@]}" download "kubernetes-client=$version" \
    >>"$apt_log" 2>&1); then
    rm -rf "$cache/debs/kubectl"
    dpkg-deb -x "$cache/debs/kubernetes-client_${version#*:}_$(dpkg --print-architecture).deb" \
      "$cache/debs/kubectl"
    cp "$cache/debs/kubectl/usr/bin/kubectl" "$cache/bin/.kubectl.partial"
    mv -f "$cache/bin/.kubectl.partial" "$cache/bin/kubectl"
  else
    log "warning: kubernetes-client $version not downloadable; no kubectl in $cache/bin"
  fi
  rm -rf "$cache/debs/reflect2" "$cache/debs/kubectl"
  log "[source] ready in $((SECONDS - step)) s"
fi

# ---- the binaries ----------------------------------------------------------
# The build date is the Debian changelog's: the same source gives the same binary.
build_date=$(date -u -d "@$(dpkg-parsechangelog -l "$cache/src/debian/changelog" -S Timestamp)" \
  +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for package in k8s.io/kubernetes/vendor/k8s.io/component-base/version \
  k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  ldflags+=" -X $package.gitVersion=v1.20.2 -X $package.gitMajor=1 -X $package.gitMinor=20"
  ldflags+=" -X $package.gitTreeState=clean -X $package.buildDate=$build_date"
done
# -trimpath: no cache path in the binary, so the same source gives the same bytes.
build_flags=(-trimpath -ldflags "$ldflags")
# Every 30 s while a build runs: how many packages `go build -v` compiled.
progress() {
  local sleeper=""
  trap '[[ -n $sleeper ]] && kill "$sleeper" 2>/dev/null; exit 0' TERM
  while :; do
    sleep 30 &
    sleeper=$!
    wait "$sleeper"
    log "[build] $1: $(grep -c . "$2") packages compiled, $((SECONDS - $3)) s"
  done
}
ticker=""
trap '[[ -n $ticker ]] && kill "$ticker" 2>/dev/null; true' EXIT
for target in "${targets[@]}"; do
  if binary_ready "$target"; then
    log "$target: cached"
    continue
  fi
  step=$SECONDS
  build_log=$cache/logs/$target.log
  : >"$build_log"
  rm -f "$cache/bin/.$target.partial"
  log "[build] $target with $($go version | cut -d' ' -f3), $jobs jobs" \
    "(about 3 min on 2 cores from a cold Go cache, 1.4 GB of memory)"
  progress "$target" "$build_log" "$step" 9>&- &
  ticker=$!
  (cd "$GOPATH/src/k8s.io/kubernetes" &&
    logged "$build_log" "$go" build -v -p "$jobs" "${build_flags[@]}" \
      -o "$cache/bin/.$target.partial" "./cmd/$target")
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  ticker=""
  mv -f "$cache/bin/.$target.partial" "$cache/bin/$target"
  binary_stamp >"$cache/bin/$target.stamp"
  log "[build] $target: built in $((SECONDS - step)) s: $("$cache/bin/$target" --version 2>&1)"
done
log "done in $((SECONDS - begin)) s: ${targets[*]} in $cache/bin"
