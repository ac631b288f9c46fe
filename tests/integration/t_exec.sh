#!/usr/bin/env bash
# kubectl exec end to end with the real kubectl: wispd's pods/exec
# WebSocket (v5.channel.k8s.io) relayed to the node agent, which runs the
# command inside the pod (docs/internals/EXEC.md). Output, exit codes,
# stdin, the pod's hostname, a tty, the seed's `kubectl exec -it
# pods/test-pod --namespace=NS -- /bin/bash`, a caller without
# container.pods.exec, and pods that do not run. Root only (namespaces);
# every object is named wisp-itxPID… and removed by the EXIT trap.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud kubectl curl python3 ip script
need_root

P=wisp-it-exec
L=us-central1
NS=exec-ns
PFX=wisp-itx$$
FAB=$PFX-f
NODE_PID=
OUT="$T_STATE/out"

exec_cleanup() {
    if [ -n "$NODE_PID" ]; then kill -TERM "$NODE_PID" 2>/dev/null; wait "$NODE_PID" 2>/dev/null; fi
    "$WISP_BIN/wisp-node" fabric-down "$FAB" > /dev/null 2>&1 || true
    "$WISP_BIN/wisp-node" sweep "$PFX" > /dev/null 2>&1 || true
    if [ "$T_FAIL" -gt 0 ] && [ -f "$T_STATE/node.log" ]; then
        echo "--- wisp-node log (tail)"; tail -30 "$T_STATE/node.log"
        echo "--- wispd log (tail)"; tail -30 "$T_STATE/wispd.log"; fi
    wisp_cleanup
}
trap exec_cleanup EXIT

wisp_start "$P"
phase() { kubectl get pod "$1" -n "$NS" -o jsonpath='{.status.phase}' 2>/dev/null; }
wait_phase() { # wait_phase POD PHASE: up to 30 s
    for _ in $(seq 300); do
        [ "$(phase "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
# has FILE TEXT: the file holds the text (shown when it does not)
has() { grep -qF -- "$2" "$1" || { echo "--- $1:"; cat "$1"; return 1; }; }

check "create a cluster" \
    gcloud container clusters create c1 --location=$L --workload-pool=$P.svc.id.goog \
    --num-nodes=1 --quiet
check "get-credentials" gcloud container clusters get-credentials c1 --location=$L
node_inputs
check "fabric up" "$WISP_BIN/wisp-node" fabric-up "$FAB"
"$WISP_BIN/wisp-node" run --kube-api "$KAPI" --kube-ca "$T_STATE/cluster-ca.pem" \
    --kube-token-file "$T_STATE/owner.token" --node "$NODE" --pod-cidr "$CIDR" \
    --state "$T_STATE/node" --fabric "$FAB" --ca "$T_STATE/ca.pem" > "$T_STATE/node.log" 2>&1 &
NODE_PID=$!

kubectl create namespace "$NS" > /dev/null
cat > "$T_STATE/pod.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: test-pod
  namespace: $NS
spec:
  hostname: exec-host
  containers:
  - name: test-pod
    image: google/cloud-sdk:slim
    command: ["sleep","infinity"]
    env:
    - name: GREETING
      value: from-the-manifest
YAML
check "kubectl apply the pod" kubectl apply -f "$T_STATE/pod.yaml"
check "it becomes Running" wait_phase test-pod Running

kubectl exec test-pod -n "$NS" -- echo hi > "$OUT" 2>&1
rc=$?
check "kubectl exec -- echo hi prints hi, rc 0" test "$rc:$(cat "$OUT")" = "0:hi"
kubectl exec test-pod -n "$NS" -- sh -c 'exit 3' > "$OUT" 2>&1
rc=$?
check "sh -c 'exit 3' gives rc 3" test "$rc" = 3
check "with kubectl's message" has "$OUT" "command terminated with exit code 3"
kubectl exec test-pod -n "$NS" -- sh -c 'echo out; echo err >&2' > "$OUT" 2> "$OUT.err"
check "stdout and stderr stay apart" test "$(cat "$OUT"):$(cat "$OUT.err")" = "out:err"
printf 'data\nmore data\n' | kubectl exec -i test-pod -n "$NS" -- cat > "$OUT" 2>&1
check "stdin reaches the command: echo data | kubectl exec -i -- cat" \
    test "$(cat "$OUT")" = "$(printf 'data\nmore data')"
head -c 3000000 /dev/urandom > "$T_STATE/big"
kubectl exec -i test-pod -n "$NS" -- sha256sum < "$T_STATE/big" > "$OUT" 2>&1
check "3 MB of stdin arrive whole" test "$(cut -d' ' -f1 "$OUT")" = "$(sha256sum < "$T_STATE/big" | cut -d' ' -f1)"
kubectl exec test-pod -n "$NS" -- head -c 3000000 /dev/zero | wc -c > "$OUT"
check "3 MB of stdout arrive whole" test "$(cat "$OUT")" = 3000000
kubectl exec test-pod -n "$NS" -- hostname > "$OUT" 2>&1
check "hostname runs in the pod" test "$(cat "$OUT")" = exec-host
kubectl exec test-pod -n "$NS" -- sh -c 'echo $GREETING $HOME; cat /proc/1/cmdline | tr "\0" " "' \
    > "$OUT" 2>&1
check "with the container's env and HOME, in the pod's PID namespace" \
    has "$OUT" "from-the-manifest /root"
check "where PID 1 is the pod's init, not the host's" sh -c "! grep -q systemd '$OUT'"
kubectl exec test-pod -n "$NS" -- no-such-command > "$OUT" 2>&1
rc=$?
check "a missing command fails (rc $rc) saying so" has "$OUT" 'executable file not found in $PATH'

script -qec "kubectl exec -it test-pod -n $NS -- /bin/sh -c 'tty; stty size'" /dev/null \
    < /dev/null > "$OUT" 2>&1
check "kubectl exec -it gets a pty" has "$OUT" "/dev/pts/"
echo 'echo seed-$((6*7)); hostname; exit' |
    kubectl exec -it pods/test-pod --namespace="$NS" -- /bin/bash > "$OUT" 2>&1
check "the seed's kubectl exec -it pods/test-pod --namespace=NS -- /bin/bash, input piped" \
    sh -c "grep -q seed-42 '$OUT' && grep -q exec-host '$OUT'"
printf 'echo typed-$((6*7))\nexit 5\n' |
    script -qec "kubectl exec -it pods/test-pod --namespace=$NS -- /bin/bash" /dev/null \
    > "$OUT" 2>&1
rc=$?
check "the same under a terminal (script): bash in a pty runs what is typed" \
    has "$OUT" "typed-42"
check "and its exit 5 is kubectl's rc" test "$rc" = 5

# kubectl 1.30 and later use the WebSocket by default (1.27-1.29 speak
# only SPDY, which wisp does not: they get "Upgrade request required").
K130="$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.30"
if [ -x "$K130" ]; then
    check "kubectl 1.30 beside it: exec works" test "$("$K130" exec test-pod -n "$NS" -- echo hi)" = hi
fi

# A caller with container.pods.get but not container.pods.exec.
gcloud iam service-accounts create viewer --quiet > /dev/null 2>&1
gcloud projects add-iam-policy-binding "$P" --role=roles/container.viewer \
    --member="serviceAccount:viewer@$P.iam.gserviceaccount.com" --condition=None > /dev/null 2>&1
PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_port"])' \
    "$T_STATE/run/wispd.json")
VTOK=$(curl -sS --cacert "$T_STATE/ca.pem" -H "Authorization: Bearer $(cat "$T_STATE/owner.token")" \
    -H 'Content-Type: application/json' -d '{"scope":["https://www.googleapis.com/auth/cloud-platform"]}' \
    "https://127.0.0.1:$PORT/iamcredentials/v1/projects/-/serviceAccounts/viewer@$P.iam.gserviceaccount.com:generateAccessToken" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
kubectl config set-credentials viewer --token="$VTOK" > /dev/null
kubectl --user=viewer exec test-pod -n "$NS" -- echo hi > "$OUT" 2>&1
rc=$?
check "without container.pods.exec: Forbidden (rc $rc)" \
    sh -c "test $rc != 0 && grep -q 'Forbidden' '$OUT' && grep -q 'container.pods.exec' '$OUT'"
check "the viewer could read the pod" kubectl --user=viewer get pod test-pod -n "$NS" -o name

# Pods that do not run: unscheduled, and bound to a node nobody runs.
kubectl apply -f - > /dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: nowhere, namespace: $NS}
spec:
  nodeSelector: {no-such-label: "true"}
  containers: [{name: c, image: x, command: ["sleep","infinity"]}]
YAML
kubectl exec nowhere -n "$NS" -- echo hi > "$OUT" 2>&1
rc=$?
check "exec into an unscheduled pod fails (rc $rc)" has "$OUT" "does not have a host assigned"
kubectl exec test-pod -n "$NS" -c other -- echo hi > "$OUT" 2>&1
check "an unknown container is refused" has "$OUT" "container other is not valid"

check "no session is left in the pod" sh -c \
    "! kubectl exec test-pod -n '$NS' -- sh -c 'ps -e -o comm= 2>/dev/null || ls /proc' | grep -qx cat"
kill -TERM "$NODE_PID"
wait "$NODE_PID"
check "wisp-node exits cleanly on SIGTERM" test $? = 0
NODE_PID=
check "and removes its exec socket" sh -c "! ls /run/wisp/exec/*-'$NODE'.sock 2> /dev/null | grep -q ."
check "no sanitizer report" \
    sh -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error' '$T_STATE/node.log' '$T_STATE/wispd.log'"
wisp_done
