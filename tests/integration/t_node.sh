#!/usr/bin/env bash
# wisp-node against a cluster's Kubernetes API with the real kubectl: a pod
# runs in its sandbox and shows Running with an address from its node's
# range; kubectl delete removes it and its namespace; a command exiting 3
# ends Failed with exitCode 3; 50 pods churned through a /28 never share an
# address while running; SIGTERM to wisp-node leaves no namespace behind.
# Root only (namespaces); every object is named wisp-itnPID… and removed by
# the EXIT trap even when a check fails.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
need gcloud kubectl curl python3 ip
need_root

P=wisp-it-node
L=us-central1
PFX=wisp-itn$$
FAB=$PFX-f
NODE_PID=
OUT="$T_STATE/out"

node_cleanup() {
    if [ -n "$NODE_PID" ]; then kill -TERM "$NODE_PID" 2>/dev/null; wait "$NODE_PID" 2>/dev/null; fi
    "$WISP_BIN/wisp-node" sweep "$PFX" > /dev/null 2>&1 || true
    if [ "$T_FAIL" -gt 0 ] && [ -f "$T_STATE/node.log" ]; then
        echo "--- wisp-node log (tail)"; tail -30 "$T_STATE/node.log"; fi
    wisp_cleanup
}
trap node_cleanup EXIT

wisp_start "$P"
our_netns() { ip netns list | awk '{print $1}' | grep "^$PFX" || true; }
phase_ip() { kubectl get pod "$1" -o jsonpath='{.status.phase} {.status.podIP}' 2>/dev/null; }
wait_phase() { # wait_phase POD PHASE: up to 30 s
    for _ in $(seq 300); do
        case "$(phase_ip "$1")" in "$2"*) return 0 ;; esac
        sleep 0.1
    done
    return 1
}

check "create a cluster with a workload pool" \
    gcloud container clusters create c1 --location=$L --workload-pool=$P.svc.id.goog \
    --num-nodes=1 --quiet
check "get-credentials" gcloud container clusters get-credentials c1 --location=$L
node_inputs
NET=${CIDR%.0/24}
check "the node has a /24 pod range" test -n "$NODE" -a "$NET.0/24" = "$CIDR"
if [ "$T_FAIL" -gt 0 ]; then echo "the cluster's Kubernetes API is not usable; stopping"; wisp_done; exit 1; fi
# A /28 of the node's range, so that 50 pods must reuse its 13 addresses.
check "fabric up" "$WISP_BIN/wisp-node" fabric-up "$FAB"
"$WISP_BIN/wisp-node" run --kube-api "$KAPI" --kube-ca "$T_STATE/cluster-ca.pem" \
    --kube-token-file "$T_STATE/owner.token" --node "$NODE" --pod-cidr "$NET.0/28" \
    --state "$T_STATE/node" --fabric "$FAB" --ca "$T_STATE/ca.pem" \
    --restart-backoff-ms 200 > "$T_STATE/node.log" 2>&1 &
NODE_PID=$!

cat > "$T_STATE/pod.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: test-pod
spec:
  containers:
  - name: test-pod
    image: google/cloud-sdk:slim
    command: ["sleep","infinity"]
YAML
check "kubectl apply the pod" kubectl apply -f "$T_STATE/pod.yaml"
check "it becomes Running" wait_phase test-pod Running
IP=$(phase_ip test-pod | cut -d' ' -f2)
case "$IP" in "$NET".*) in_range=yes ;; *) in_range=no ;; esac
check "with an address from the node's range ($IP)" test "$in_range" = yes
UID_=$(kubectl get pod test-pod -o jsonpath='{.metadata.uid}')
check "its network namespace exists" sh -c "ip netns list | grep -q -- '$UID_'"
check "status has hostIP, a running container and Ready" test \
    "$(kubectl get pod test-pod -o jsonpath='{.status.hostIP} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].state.running.startedAt}' | wc -w)" = 3
check "the projected token is in the pod's files" \
    test -s "$T_STATE/node/pods/$UID_/sa/token"
check "kubectl delete pod" kubectl delete pod test-pod --timeout=60s
check "the pod is gone" sh -c "! kubectl get pod test-pod > /dev/null 2>&1"
check "and its namespace" sh -c "! ip netns list | grep -q -- '$UID_'"

cat > "$T_STATE/exit3.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: exit3
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh","-c","exit 3"]
YAML
kubectl apply -f "$T_STATE/exit3.yaml" > /dev/null
check "a command exiting 3 ends Failed" wait_phase exit3 Failed
check "with exitCode 3" test \
    "$(kubectl get pod exit3 -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}')" = 3
kubectl delete pod exit3 --timeout=60s > /dev/null 2>&1

# Churn: 5 waves of 10 pods through 13 addresses, each wave created while
# the previous one is being deleted; no two live pods may share an address.
dup=0
for wave in 1 2 3 4 5; do
    for i in $(seq 10); do
        echo "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"c$wave-$i\"},\"spec\":{\"containers\":[{\"name\":\"m\",\"image\":\"x\",\"command\":[\"sleep\",\"infinity\"]}]}}"
    done | kubectl apply -f - > /dev/null
    for _ in $(seq 300); do
        n=$(kubectl get pods -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}' |
            grep -c "^c$wave-.* Running")
        [ "$n" -ge 10 ] && break
        sleep 0.1
    done
    live=$(kubectl get pods -o jsonpath='{range .items[*]}{.status.phase} {.status.podIP}{"\n"}{end}' |
        awk '$1 == "Running" {print $2}')
    [ "$(echo "$live" | sort | uniq -d | wc -l)" -eq 0 ] || dup=1
    kubectl delete pods $(seq -f "c$wave-%g" 1 10) --wait=false > /dev/null
done
check "50 pods through a /28: no address shared by two live pods" test "$dup" = 0
for _ in $(seq 300); do
    [ -z "$(kubectl get pods -o name)" ] && break
    sleep 0.1
done
check "every churned pod is deleted" test -z "$(kubectl get pods -o name)"
check "only the node's namespace is left" test "$(our_netns | wc -l)" = 2

kill -TERM "$NODE_PID"
wait "$NODE_PID"
check "wisp-node exits cleanly on SIGTERM" test $? = 0
NODE_PID=
check "no sanitizer report from wisp-node" \
    sh -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error' '$T_STATE/node.log'"
check "it removed its namespace" test "$(our_netns)" = "$FAB"
"$WISP_BIN/wisp-node" fabric-down "$FAB"
check "fabric down leaves nothing" test -z "$(our_netns)"
wisp_done
