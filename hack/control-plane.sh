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
# usage: hack/control-plane.sh            build if needed, print the assets folder on stdout
#        hack/control-plane.sh --check    exit 0 if the cache is complete, 1 otherwise
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

if [ "${1:-}" = "--check" ]; then complete; exit; fi
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

# kwok exits "no stages found" without Stage objects: use the defaults kwokctl embeds
# (node init + lease heartbeat, pod ready/complete/delete).
S="$(go env GOMODCACHE)/sigs.k8s.io/kwok@v$KWOK/kustomize/stage"
for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
         pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  cat "$S/$f.yaml"; echo ---
done >"$OUT/kwok-stages.yaml"

echo "$STAMP" >"$OUT/.stamp"
step "done"
echo "$OUT"
