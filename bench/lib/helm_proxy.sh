# bench/lib/helm_proxy.sh: sourced by the benchmarks that run helm beside KupenStack.
# helm_proxy NAMESPACE: a `kubectl proxy` (PROXY_PID) logging every request, and
# $WORK/helm.kubeconfig pointing helm at it in NAMESPACE; proxy_writes counts the writes
# helm made through it so far.
helm_proxy() {
	PPORT=$(free_port)
	kubectl proxy --port "$PPORT" -v=6 >"$WORK/proxy.out" 2>"$WORK/proxy.log" &
	PROXY_PID=$!
	cat >"$WORK/helm.kubeconfig" <<EOK
apiVersion: v1
kind: Config
clusters: [{name: p, cluster: {server: "http://127.0.0.1:$PPORT"}}]
contexts: [{name: p, context: {cluster: p, namespace: $1}}]
current-context: p
users: []
EOK
	for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$PPORT/version" && break; sleep 0.2; done
}
proxy_writes() { grep -cE '\] (POST|PUT|PATCH|DELETE) https' "$WORK/proxy.log"; }
