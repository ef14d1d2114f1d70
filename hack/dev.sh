#!/usr/bin/env bash
# dev.sh — `make dev`: run marketplace-operator locally against a real local cluster.
#
# Builds the control plane if needed (~16 min on a fresh machine, then cached), starts etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and kwok with fake nodes
# (hack/cluster.sh), installs the CRDs and the sample plans, starts the KooGallery Open API
# stand-in (`koosim serve`) and the operator with generated development keys, prints how to
# drive it, and waits. Ctrl-C stops everything it started. It writes DEV_DIR/env for the other
# shells: `. .dev/env` sets KUBECONFIG, KOOSIM_URL and a PATH with kubectl, helm and koosim.
#
# usage: hack/dev.sh [--reset]
#   --reset      start from an empty cluster and new keys (default: reuse .dev/ from the last run)
#   DEV_DIR      state folder (default .dev in the repository)
#   DEV_PORT     the marketplace endpoint's port (default 18090; the Open API stand-in uses
#                DEV_PORT+1, the probes DEV_PORT+2)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DEV=$(realpath -m "${DEV_DIR:-$ROOT/.dev}")
PORT=${DEV_PORT:-18090}
OPENAPI_PORT=$((PORT + 1)) PROBE_PORT=$((PORT + 2))
RESET=0
for a in "$@"; do
  case $a in
    --reset) RESET=1 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "dev: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "dev: $*" >&2; }

[ "$RESET" = 1 ] && rm -rf "$DEV"
mkdir -p "$DEV/logs" "$DEV/keys"
BIN=$("$HERE/control-plane.sh")
export STATE="$DEV/cluster" BIN
KUBECTL="$BIN/kubectl --kubeconfig=$STATE/admin.kubeconfig"

say "building bin/manager and bin/koosim"
(cd "$ROOT" && go build -o bin/manager ./cmd/manager && go build -o bin/koosim ./cmd/koosim)

PIDS=()
cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$HERE/cluster.sh" stop
  say "stopped; state kept in $DEV (--reset starts afresh)"
}
trap cleanup INT TERM EXIT

"$HERE/cluster.sh" start

# Development keys: random, generated once, kept with the state.
for k in basic kit ak sk; do
  [ -s "$DEV/keys/$k" ] || openssl rand -hex 16 >"$DEV/keys/$k"
done

crds=$($KUBECTL apply --server-side -f "$ROOT/config/crd/bases" -o name)
# Not `kubectl wait --for=condition=Established`: a CRD just created has no conditions yet, and
# kubectl wait then fails instead of waiting. Poll each CRD's condition, for a minute at most.
deadline=$((SECONDS + 60))
for crd in $crds; do
  until [ "$($KUBECTL get "$crd" -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}')" = True ]; do
    [ "$SECONDS" -lt "$deadline" ] || { say "$crd is not Established after a minute"; exit 1; }
    sleep 0.2
  done
done
$KUBECTL apply --server-side -f "$ROOT/config/samples/saas_v1alpha1_marketplaceplan_basic.yaml" \
  -f "$ROOT/config/samples/saas_v1alpha1_marketplaceplan_pro.yaml" \
  -f "$ROOT/config/samples/saas_v1alpha1_marketplaceplan_ondemand.yaml" \
  -f "$ROOT/config/samples/saas_v1alpha1_marketplaceplan_metered.yaml" >/dev/null
say "CRDs and the sample plans (demo-basic, demo-pro, demo-ondemand, demo-metered) installed"

# Orders the stand-in serves besides KooGallery's MOCK* ones: a purchase of each sample
# plan's SKU, a renewal and an upgrade, for `koosim lifecycle`.
expire=$(date -u -d '+1 year' +%Y%m%d%H%M%S)
order() {  # order ID TYPE PRODUCT SKU
  printf '{"orderId":"%s","orderType":"%s","createTime":"%s","orderLine":[{"orderLineId":"%s-000001","chargingMode":"PERIOD","periodType":"year","periodNumber":1,"expireTime":"%s","productInfo":[{"productId":"%s","skuCode":"%s","productName":"demo"}]}]}' \
    "$1" "$2" "$(date -u +%Y%m%d%H%M%S)" "$1" "$expire" "$3" "$4"
}
{
  echo "["
  order DEVBASIC0001 NEW OFFI000000000000001 demo-basic-monthly; echo ","
  order DEVRENEW0001 RENEW OFFI000000000000001 demo-basic-monthly; echo ","
  order DEVPRO0001 CHANGE OFFI000000000000003 demo-pro-monthly
  echo "]"
} >"$DEV/orders.json"

# Usage pushes are signed with the basic key; in development the stand-in takes usage for any
# instance (KooGallery knows its own).
"$ROOT/bin/koosim" serve --listen "127.0.0.1:$OPENAPI_PORT" --ak-file "$DEV/keys/ak" --sk-file "$DEV/keys/sk" \
  --usage-key-file "$DEV/keys/basic" --any-instance \
  --orders-file "$DEV/orders.json" >"$DEV/logs/koosim.log" 2>&1 &
PIDS+=($!)

KUBECONFIG="$STATE/admin.kubeconfig" "$ROOT/bin/manager" \
  --marketplace-bind-address "127.0.0.1:$PORT" --marketplace-keys-dir "$DEV/keys" \
  --koogallery-api-url "http://127.0.0.1:$OPENAPI_PORT" --usage-push-interval "${DEV_USAGE_PUSH_INTERVAL:-1m}" \
  --health-probe-bind-address "127.0.0.1:$PROBE_PORT" --metrics-bind-address 0 \
  --zap-encoder console >"$DEV/logs/manager.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 150); do
  curl -fs "http://127.0.0.1:$PROBE_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "${PIDS[1]}" 2>/dev/null || { say "the operator exited; see $DEV/logs/manager.log"; tail -20 "$DEV/logs/manager.log" >&2; exit 1; }
  sleep 0.2
done
curl -fs "http://127.0.0.1:$PROBE_PORT/readyz" >/dev/null || { say "the operator is not ready; see $DEV/logs/manager.log"; exit 1; }

# A machine may have no kubectl, or one of another version, on its PATH: the shells that drive
# this cluster get the control plane's own first, and koosim.
{
  printf 'export KUBECONFIG=%q\n' "$STATE/admin.kubeconfig"
  printf 'export KOOSIM_URL=%q\n' "http://127.0.0.1:$PORT/saasproduce"
  printf 'export PATH=%q:%q:"$PATH"\n' "$BIN" "$ROOT/bin"
} >"$DEV/env"

cat <<MSG
dev: ready
  marketplace endpoint  http://127.0.0.1:$PORT/saasproduce   (keys in $DEV/keys)
  KooGallery Open API   http://127.0.0.1:$OPENAPI_PORT          (koosim serve)
  logs                  $DEV/logs/

In another shell:
  . $DEV/env    # KUBECONFIG, KOOSIM_URL, and PATH with kubectl, helm and koosim
  koosim lifecycle --key-file $DEV/keys/basic \\
      --order-id DEVBASIC0001 --renew-order-id DEVRENEW0001 --upgrade-order-id DEVPRO0001 \\
      --retry-schedule 1s,2s,4s
  kubectl get mpi,mpp
  # a pay-per-use order, metered per ${DEV_USAGE_PUSH_INTERVAL:-1m}, and what KooGallery received:
  koosim lifecycle --key-file $DEV/keys/basic --order-id MOCKONDEMAND --retry-schedule 1s,2s,4s
  koosim usage --openapi-url http://127.0.0.1:$OPENAPI_PORT

Ctrl-C stops everything.
MSG
wait "${PIDS[1]}"
