#!/usr/bin/env bash
# control-plane.sh — build the local Kubernetes control plane from the Go module proxy and print
# the folder that holds it (usable as KUBEBUILDER_ASSETS).
#
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl at the versions
# pinned in hack/k8s/go.mod, and kwok (plus the kwok-stages.yaml it needs) and helm at the versions
# below, with the real version stamped, into a cache outside the repository:
#   ${MPO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/marketplace-operator}/k8s-v<K8S>/
# A complete, matching cache is reused as is (a few ms). A fresh machine takes ~16 min on 2 cores
# (most of it kube-apiserver); with a warm Go build cache, ~1 min.
#
# A KUBEBUILDER_ASSETS that names another folder (binaries you already have) is used instead,
# and never written to, once every binary there reports the pinned version; otherwise the
# script fails, listing what it found against what is pinned and how to fix it.
#
# usage: hack/control-plane.sh                   build if needed, print the assets folder on stdout
#        hack/control-plane.sh --check [NAME...] exit 0 if the folder holds the pinned binaries
#                                                (only NAME... of them, when given), 1 otherwise
#        hack/control-plane.sh --stages          print the kwok stages file (kwok-stages.yaml)
# Progress goes to stderr so that `KUBEBUILDER_ASSETS=$(hack/control-plane.sh)` works.
set -euo pipefail
export GOFLAGS=-buildvcs=false
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$HERE/k8s                                   # wrapper module: go.mod/go.sum pin everything
K8S=1.36.3 ETCD=3.6.8 KWOK=0.8.0 HELM=3.22.0      # keep in step with hack/k8s/go.mod
CACHE=${MPO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/marketplace-operator}
OUT=$CACHE/k8s-v$K8S
STAMP="k8s=$K8S etcd=$ETCD kwok=$KWOK helm=$HELM helm-kube=stamped"
BINARIES="etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm"

complete() {
  [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$STAMP" ] || return 1
  for b in $BINARIES; do [ -x "$OUT/$b" ] || return 1; done
  [ -s "$OUT/kwok-stages.yaml" ]
}

# kwok exits "no stages found" without Stage objects: use the defaults kwokctl embeds
# (node init + lease heartbeat, pod ready/complete/delete).
stages() {
  local s
  s="$(cd "$SRC" && go mod download -json "sigs.k8s.io/kwok@v$KWOK" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')/kustomize/stage"
  for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
           pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    cat "$s/$f.yaml"; echo ---
  done
}

pinned() {  # pinned NAME: the version NAME must report
  case $1 in
    etcd) echo "v$ETCD" ;;
    kwok) echo "v$KWOK" ;;
    helm) echo "v$HELM" ;;
    *) echo "v$K8S" ;;
  esac
}

reported() {  # reported NAME DIR: the version DIR/NAME reports, empty if it reports none
  case $1 in
    etcd) "$2/etcd" --version | sed -n 's/^etcd Version: /v/p' ;;
    kubectl) "$2/kubectl" version --client | sed -n 's/^Client Version: //p' ;;
    kwok) "$2/kwok" --version | sed -n 's/^kwok version \([^ ]*\).*/\1/p' ;;
    helm) "$2/helm" version --short | sed 's/+.*//' ;;
    *) "$2/$1" --version | sed -n 's/^Kubernetes //p' ;;
  esac
}

# check_assets DIR NAME...: every NAME in DIR at its pinned version, or a report of each that is
# not, on stderr. Asking seven large binaries their version takes seconds on a busy machine, so
# a passed check is remembered in the cache, keyed on the files' sizes and times.
check_assets() {
  local dir=$1 b found bad=() tmp seen; shift
  seen="$CACHE/checked/$(echo "$dir $STAMP $*" | sha256sum | cut -c1-16)"
  [ -f "$seen" ] && [ "$(cd "$dir" && stat -L -c '%n %s %Y' "$@" 2>&1)" = "$(cat "$seen")" ] && return 0
  tmp=$(mktemp -d)
  for b in "$@"; do
    [ "$b" = kwok-stages.yaml ] || [ ! -x "$dir/$b" ] || (reported "$b" "$dir" >"$tmp/$b" 2>/dev/null || true) &
  done
  wait
  for b in "$@"; do
    if [ "$b" = kwok-stages.yaml ]; then
      [ -s "$dir/$b" ] || bad+=("$(printf '  %-24s missing: hack/control-plane.sh --stages >%s writes it' "$b" "$dir/$b")")
    elif [ ! -x "$dir/$b" ]; then
      bad+=("$(printf '  %-24s missing, expected %s' "$b" "$(pinned "$b")")")
    else
      found=$(head -1 "$tmp/$b")
      [ "$found" = "$(pinned "$b")" ] ||
        bad+=("$(printf '  %-24s found %s, expected %s' "$b" "${found:-no version}" "$(pinned "$b")")")
    fi
  done
  rm -rf "$tmp"
  if [ ${#bad[@]} = 0 ]; then
    mkdir -p "$CACHE/checked" && (cd "$dir" && stat -L -c '%n %s %Y' "$@") >"$seen"
    return 0
  fi
  {
    echo "control-plane: KUBEBUILDER_ASSETS=$dir does not hold the control plane this project pins:"
    printf '%s\n' "${bad[@]}"
    echo "control-plane: put those versions there (hack/k8s/go.mod and hack/control-plane.sh pin them),"
    echo "control-plane: or unset KUBEBUILDER_ASSETS to build them into $OUT (~16 min once, then reused)"
  } >&2
  return 1
}

case ${1:-} in
  --stages) stages; exit ;;
  --check) shift; [ $# -gt 0 ] || set -- $BINARIES kwok-stages.yaml ;;
  "") ;;
  *) echo "control-plane: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
esac

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ "$(realpath -m "$KUBEBUILDER_ASSETS")" != "$(realpath -m "$OUT")" ]; then
  USER_ASSETS=$(realpath -m "$KUBEBUILDER_ASSETS")
  if [ $# -gt 0 ]; then check_assets "$USER_ASSETS" "$@"; exit; fi
  check_assets "$USER_ASSETS" $BINARIES kwok-stages.yaml || exit 1
  echo "$USER_ASSETS"
  exit 0
fi
if [ $# -gt 0 ]; then
  complete && exit 0
  echo "control-plane: $OUT is not complete: run hack/control-plane.sh (or make control-plane) to build it" >&2
  exit 1
fi
if complete; then echo "$OUT"; exit 0; fi

T0=$SECONDS
step() { echo "control-plane: $(( (SECONDS-T0)/60 ))m$(( (SECONDS-T0)%60 ))s $*" >&2; }
echo "control-plane: building Kubernetes v$K8S, etcd v$ETCD, kwok v$KWOK, helm v$HELM into $OUT" >&2
echo "control-plane: the first build on a fresh machine takes ~16 min on 2 cores; later runs reuse it" >&2
mkdir -p "$OUT"
rm -f "$OUT/.stamp"

# Stamp the real version: unstamped servers say v0.0.0-master and Helm charts with a
# kubeVersion constraint refuse to install. -s -w shrinks the binaries by ~30 %.
MINOR=$(echo "$K8S" | cut -d. -f2)
LDF="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDF+=" -X $p.gitVersion=v$K8S -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
done

cd "$SRC"
go mod download >&2
step "modules ready"
# One at a time: two cores, and each build reuses the previous one's compiled packages.
go build -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3; step etcd
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  go build -ldflags "$LDF" -o "$OUT/$c" "k8s.io/kubernetes/cmd/$c"; step "$c"
done
# kwok and helm carry no replace directives, so they build from their own pinned go.sum
# (their k8s.io dependencies differ from the wrapper's v0.36.3 replaces).
GOBIN="$OUT" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK"; step kwok
# helm's default Kubernetes version (used without a cluster: helm template, helm lint) is stamped
# too, as official helm builds do; unstamped it is v1.20 and charts with a kubeVersion floor fail.
HLDF="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM"
for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  HLDF+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$MINOR"
done
GOBIN="$OUT" go install -ldflags "$HLDF" "helm.sh/helm/v3/cmd/helm@v$HELM"; step helm

stages >"$OUT/kwok-stages.yaml"

echo "$STAMP" >"$OUT/.stamp"
step "done"
echo "$OUT"
