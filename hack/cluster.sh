#!/usr/bin/env bash
# cluster.sh — a real local Kubernetes cluster without Docker or a kubelet: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and kwok with fake nodes, from the
# binaries hack/control-plane.sh builds. Pods are scheduled for real and kwok marks them
# Running/Ready, so Deployments become Available, Jobs complete and the garbage collector and
# namespace controller run. No container runs: logs, exec and Service traffic do not work.
#
# usage: STATE=DIR hack/cluster.sh start|stop|status|down COMPONENT|up COMPONENT
#   down/up stop and restart one running component (chaos tests restart the API server)
#   STATE   folder for pki/, etcd data, logs/, *.pid and the kubeconfigs (default .dev/cluster):
#           admin.kubeconfig is cluster-admin; operator.kubeconfig is cluster-admin too, as its
#           own user "marketplace-operator", so audit logs and metrics can tell its requests apart
#   RESET=1 wipe STATE on start (default: reuse its certificates and etcd data, so instances
#           survive a restart)
#   NODES   fake nodes (default 2); NODE_PODS pods and NODE_CPU CPUs each offers (default 110, 32)
#   CONTROLLER_QPS  API rate limit of kcm and the scheduler (default: theirs, 20 and 50); raise
#           it for benchmarks, or creating thousands of Pods is throttled by kcm, not the operator
#   AUDIT_POLICY    an audit policy file: the API server then logs to STATE/logs/audit.log
#   ETCD_PORT, API_PORT, KCM_PORT, SCHED_PORT pick the ports
#   OWNER_PID       on start, a watchdog stops the cluster once that process is gone: a test
#           run killed before its cleanup (a CI timeout, a SIGTERM) leaves nothing behind
#   BIN     the control plane folder (default: what hack/control-plane.sh prints)
# needs: bash, openssl, curl
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STATE=$(realpath -m "${STATE:-$HERE/../.dev/cluster}")
NODES=${NODES:-2} NODE_PODS=${NODE_PODS:-110} NODE_CPU=${NODE_CPU:-32}
ETCD_PORT=${ETCD_PORT:-22379} API_PORT=${API_PORT:-26443}
KCM_PORT=${KCM_PORT:-20257}   SCHED_PORT=${SCHED_PORT:-20259}
COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler kwok"   # start order

die() { echo "cluster: $*" >&2; exit 1; }
T0=$EPOCHREALTIME
log() { awk -v t0="$T0" -v t1="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "cluster: %5.1fs %s\n", t1-t0, m}' >&2; }

# wait_for NAME CMD...: retry CMD every 0.2 s for up to 60 s
wait_for() {
  local name=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$name not healthy after 60s, see $STATE/logs/$name.log"
}

launch() {  # launch NAME CMD...: run in the background, log to logs/NAME.log, remember the PID
  local name=$1; shift
  "$@" >>"$STATE/logs/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

watchdog() {  # with OWNER_PID: stop every component once that process is gone
  [ -n "${OWNER_PID:-}" ] || return 0
  running watchdog && return 0
  # Detached from our output, or whoever reads it would wait for the watchdog to end.
  (
    while kill -0 "$OWNER_PID" 2>/dev/null; do sleep 1; done
    rm -f "$STATE/watchdog.pid"  # so the stop below does not halt the watchdog running it
    STATE=$STATE "$HERE/cluster.sh" stop
  ) >>"$STATE/logs/watchdog.log" 2>&1 </dev/null &
  echo $! >"$STATE/watchdog.pid"
}

pki() {  # CA, apiserver serving cert, service-account key pair, static tokens
  local p=$STATE/pki; mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=local-ca \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout "$p/apiserver.key" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes.default.svc" 2>/dev/null |
  openssl x509 -req -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial -days 3650 \
    -copy_extensions copy -out "$p/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  # Static bearer tokens (token,user,uid,"groups"): kcm and the scheduler get their normal
  # RBAC identities; admin and kwok are cluster-admin. Random, so no two clusters share them.
  local t; t() { openssl rand -hex 16; }
  cat >"$p/tokens.csv" <<TOKENS
$(t),admin,admin,"system:masters"
$(t),system:kube-controller-manager,kcm
$(t),system:kube-scheduler,sched
$(t),kwok,kwok,"system:masters"
$(t),marketplace-operator,marketplace-operator,"system:masters"
TOKENS
}

kubeconfig() {  # kubeconfig NAME USER -> $STATE/NAME.kubeconfig, with USER's token
  local token; token=$(awk -F, -v u="$2" '$2==u {print $1}' "$STATE/pki/tokens.csv")
  cat >"$STATE/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$STATE/pki/ca.crt"}}]
users: [{name: $1, user: {token: $token}}]
contexts: [{name: local, context: {cluster: local, user: $1}}]
current-context: local
KC
}

fake_node() {  # a Node object for kwok to manage (it sets it Ready and renews its Lease)
  cat <<NODE
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$1
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$1, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  allocatable: {cpu: "$NODE_CPU", memory: $((NODE_CPU * 8))Gi, pods: "$NODE_PODS"}
  capacity: {cpu: "$NODE_CPU", memory: $((NODE_CPU * 8))Gi, pods: "$NODE_PODS"}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake}
NODE
}

# launch_COMPONENT starts one component and waits until it is healthy.
launch_etcd() {
  launch etcd "$BIN/etcd" --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$((ETCD_PORT+1))" --unsafe-no-fsync=true   # throwaway data
  wait_for etcd curl -fs "http://127.0.0.1:$ETCD_PORT/health"
}

launch_kube-apiserver() {
  local audit=()
  [ -n "${AUDIT_POLICY:-}" ] && audit=(--audit-policy-file="$(realpath "$AUDIT_POLICY")"
    --audit-log-path="$STATE/logs/audit.log" --audit-log-format=json --audit-log-maxsize=0)
  launch kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --tls-cert-file="$STATE/pki/apiserver.crt" --tls-private-key-file="$STATE/pki/apiserver.key" \
    --token-auth-file="$STATE/pki/tokens.csv" --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$STATE/pki/sa.pub" --service-account-signing-key-file="$STATE/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --endpoint-reconciler-type=none "${audit[@]}"  # none: 127.0.0.1 is not a valid Endpoints IP
  wait_for kube-apiserver $KC get --raw /readyz
}

qps() { [ -n "${CONTROLLER_QPS:-}" ] && echo "--kube-api-qps=$CONTROLLER_QPS --kube-api-burst=$((CONTROLLER_QPS * 2))"; true; }

launch_kube-controller-manager() {
  # Per-controller ServiceAccounts (TokenRequest) so RBAC works as in a real cluster.
  # shellcheck disable=SC2046
  launch kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$STATE/kcm.kubeconfig" --use-service-account-credentials=true \
    --root-ca-file="$STATE/pki/ca.crt" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" $(qps)
  wait_for kube-controller-manager curl -fsk "https://127.0.0.1:$KCM_PORT/healthz"
}

launch_kube-scheduler() {
  # shellcheck disable=SC2046
  launch kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$STATE/sched.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" $(qps)
  wait_for kube-scheduler curl -fsk "https://127.0.0.1:$SCHED_PORT/healthz"
}

launch_kwok() {
  # kwok exits "no stages found" without its Stage objects, and manages only the Node
  # objects we create.
  launch kwok "$BIN/kwok" --kubeconfig="$STATE/kwok.kubeconfig" --config="$BIN/kwok-stages.yaml" \
    --manage-all-nodes=true --cidr=10.244.0.0/16 --node-ip=127.0.0.1 --node-lease-duration-seconds=40
}

tools() {
  BIN=${BIN:-$("$HERE/control-plane.sh")}
  for b in $COMPONENTS kubectl; do [ -x "$BIN/$b" ] || die "missing $BIN/$b (run hack/control-plane.sh)"; done
  KC="$BIN/kubectl --kubeconfig=$STATE/admin.kubeconfig"
}

start() {
  tools
  for c in $COMPONENTS; do running "$c" && die "already running ($c); run: STATE=$STATE $0 stop"; done
  for port in "$ETCD_PORT" "$API_PORT" "$KCM_PORT" "$SCHED_PORT"; do
    # Another cluster on these ports would answer our health checks and fool the start.
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port is in use (another cluster?); stop it or set ETCD_PORT/API_PORT/KCM_PORT/SCHED_PORT"
  done
  [ "${RESET:-0}" = 1 ] && rm -rf "$STATE"
  mkdir -p "$STATE/logs"
  watchdog
  [ -f "$STATE/pki/tokens.csv" ] || pki
  # State from before the operator had its own user gets one.
  grep -q ',marketplace-operator,' "$STATE/pki/tokens.csv" ||
    echo "$(openssl rand -hex 16),marketplace-operator,marketplace-operator,\"system:masters\"" >>"$STATE/pki/tokens.csv"
  log "pki ready"
  kubeconfig admin admin; kubeconfig kcm system:kube-controller-manager
  kubeconfig sched system:kube-scheduler; kubeconfig kwok kwok
  kubeconfig operator marketplace-operator

  launch_etcd; log "etcd healthy"
  launch_kube-apiserver; log "kube-apiserver ready"
  launch_kwok
  launch_kube-controller-manager
  launch_kube-scheduler; log "controller-manager, scheduler healthy"

  for i in $(seq 0 $((NODES-1))); do fake_node "$i"; echo ---; done | $KC apply -f - >/dev/null
  $KC wait --for=condition=Ready node --all --timeout=60s >/dev/null; log "$NODES kwok node(s) Ready"
  # Pods are refused until the ServiceAccount controller made the "default" ServiceAccount.
  wait_for kube-controller-manager $KC get serviceaccount default -n default
  log "up: export KUBECONFIG=$STATE/admin.kubeconfig"
}

halt() {  # halt NAME: stop one component by its recorded PID
  local pid
  [ -f "$STATE/$1.pid" ] || return 0
  pid=$(cat "$STATE/$1.pid")
  kill "$pid" 2>/dev/null && for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$STATE/$1.pid"
}

component() {  # the COMPONENT argument of down/up, checked
  local c=${1:-}
  [[ " $COMPONENTS " == *" $c "* && -n $c ]] || die "name a component: $COMPONENTS"
  echo "$c"
}

stop() {  # reverse order
  halt watchdog
  for n in $(echo $COMPONENTS | tr ' ' '\n' | tac); do halt "$n"; done
  log "stopped (state kept in $STATE)"
}

status() {
  for n in $COMPONENTS; do
    if running "$n"; then echo "$n: running"; else echo "$n: stopped"; fi
  done
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  down) c=$(component "${2:-}"); halt "$c"; log "$c stopped" ;;
  up) c=$(component "${2:-}"); tools; running "$c" && die "$c is running"; "launch_$c"; log "$c up" ;;
  *) die "usage: $0 start|stop|status|down COMPONENT|up COMPONENT" ;;
esac
