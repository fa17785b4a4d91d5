#!/usr/bin/env bash
# tests/e2e/policy_wiring.sh: the admission webhooks wired as in a cluster (deploy/), the
# real API server calling the host through a Service with a client certificate.
#  - deploy/'s manifests (namespace, ServiceAccount, RBAC, CRDs, the client CA ConfigMap
#    deploy/webhook-client-auth.sh makes, operator.yaml with its Deployment and Service)
#    pass `kubectl apply --dry-run=server`.
#  - host w runs with --admission-service kupenstack-admission:PORT and
#    --admission-client-ca (tests/env/kube's webhook client CA: the API server presents
#    its certificate to webhooks that ask). The test cluster has no kube-proxy, so the
#    Service kupenstack-admission is an ExternalName one for localhost (the API server
#    resolves it to localhost:PORT; it still checks the certificate for
#    kupenstack-admission.kupenstack-system.svc). Both webhook configurations say
#    clientConfig.service, not url; the certificate names the Service; a policy's denial
#    reaches `kubectl apply` (the API server's call, through the Service, with its client
#    certificate, is accepted); curl with no client certificate, or one another CA signed,
#    is refused at the handshake and the host logs why; curl with the API server's is
#    answered.
# Needs KUBECONFIG (admin) and KS_KUBE_DIR of a tests/env/kube cluster; applies crds/.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OPNS=kupenstack-system
W=ks-e2e-polw-$$
POL=e2e-wiring-$$
WC=${KS_KUBE_DIR:-/nonexistent}/pki/webhook-client
PKI=${KS_KUBE_DIR:-/nonexistent}/pki

wiring_cleanup() {
	k delete validatingwebhookconfiguration kupenstack --ignore-not-found >/dev/null 2>&1
	k delete mutatingwebhookconfiguration kupenstack --ignore-not-found >/dev/null 2>&1
	k delete clusterpolicy "$POL" --ignore-not-found >/dev/null 2>&1
	k delete secret kupenstack -n "$OPNS" --ignore-not-found >/dev/null 2>&1
	k delete service kupenstack-admission -n "$OPNS" --ignore-not-found >/dev/null 2>&1
}
trap 'stop_hosts; wiring_cleanup; cleanup' EXIT
k apply -f "$TOP/crds/" >/dev/null || exit 3
wiring_cleanup

check "deploy/ applies (kubectl apply --dry-run=server: Deployment, Service, RBAC, CRDs)" -- \
	k apply --dry-run=server -f "$TOP/deploy/namespace.yaml" \
	-f "$TOP/deploy/serviceaccount.yaml" -f "$TOP/deploy/rbac.yaml" \
	-f "$TOP/deploy/rbac-aggregate.yaml" -f "$TOP/crds/" \
	-f "$WC/client-ca-configmap.yaml" -f "$TOP/deploy/operator.yaml"
check "operator.yaml wires the webhook: the Service's port 443 to the container's, the flags" -- \
	bash -c "$(declare -f k); k apply --dry-run=server -o json -f '$TOP/deploy/operator.yaml' | jq -e '
		[.items[] | select(.kind == \"Service\")][0].spec.ports[0] as \$p |
		[.items[] | select(.kind == \"Deployment\")][0].spec.template.spec.containers[0] as \$c |
		\$p.port == 443 and (\$c.ports[] | select(.name == \$p.targetPort) | .containerPort) == 8443 and
		(\$c.args | index(\"--admission-service=kupenstack-admission:443\")) and
		(\$c.args | index(\"--admission-addr=0.0.0.0:8443\")) and
		(\$c.args | any(startswith(\"--admission-client-ca=\")))'"
check "the test cluster's API server has a webhook client certificate" -- \
	openssl verify -CAfile "$WC/client-ca.crt" -purpose sslclient "$WC/client.crt"

new_ns "$W" bare
mkdir -p "$WORK/plugins"
k apply -f - >/dev/null <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: ClusterPolicy
metadata: {name: $POL}
spec:
  match: {kinds: [kupenstack.io/Instance], namespaces: [$W], operations: [CREATE]}
  lua: |
    return { validate = function(obj) return "spec.flavorRef: no Instances in $W (wiring)" end }
EOT
PORT=$(free_port)
k apply -f - >/dev/null <<EOT
apiVersion: v1
kind: Service
metadata: {name: kupenstack-admission, namespace: $OPNS}
spec: {type: ExternalName, externalName: localhost}
EOT
start_host w "$WORK/plugins" - --admission-addr "127.0.0.1:$PORT" --admission-namespace "$OPNS" \
	--admission-service "kupenstack-admission:$PORT" --admission-client-ca "$WC/client-ca.crt"
eventually 30 "the policy is Loaded" w -- \
	bash -c "$(declare -f k); k get clusterpolicy $POL -o jsonpath='{.status.phase}' | grep -qx Loaded"
svc_ok() { # KIND PATH
	k get "$1" kupenstack -o json | jq -e --arg path "$2" --arg port "$PORT" '
		.webhooks[0].clientConfig | (has("url") | not) and
		.service == {namespace: "kupenstack-system", name: "kupenstack-admission",
			     path: $path, port: ($port | tonumber)} and (.caBundle | length) > 0'
}
eventually 30 "the validating webhook says clientConfig.service (no url)" w -- \
	bash -c "$(declare -f k svc_ok); PORT=$PORT svc_ok validatingwebhookconfiguration /validate"
check "the mutating webhook says clientConfig.service (no url)" w -- \
	svc_ok mutatingwebhookconfiguration /mutate
k get secret kupenstack -n "$OPNS" -o jsonpath='{.data.tls\.crt}' | base64 -d >"$WORK/tls.crt"
k get secret kupenstack -n "$OPNS" -o jsonpath='{.data.ca\.crt}' | base64 -d >"$WORK/ca.crt"
check "the serving certificate names the Service" -- \
	expect_out 'does match certificate' \
	openssl x509 -in "$WORK/tls.crt" -noout -checkhost kupenstack-admission.kupenstack-system.svc
cat >"$WORK/vm1.yaml" <<EOT
apiVersion: kupenstack.io/v1alpha1
kind: Instance
metadata: {name: vm1}
spec:
  flavorRef: {name: m1.small}
  imageRef: {name: cirros}
  networks: [{networkRef: {name: net}}]
EOT
check "the API server's call, through the Service with its client certificate, is accepted" w -- \
	expect_out 'denied the request: \['"$POL"'\] spec.flavorRef: no Instances in '"$W"' \(wiring\)' \
	k apply -n "$W" -f "$WORK/vm1.yaml"
check "and no handshake was refused" -- bash -c "! grep 'TLS handshake refused' '${HLOG[w]}'"

cat >"$WORK/review.json" <<EOT
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
 "kind":{"group":"","version":"v1","kind":"ConfigMap"},
 "resource":{"group":"","version":"v1","resource":"configmaps"},
 "operation":"CREATE","namespace":"$W","name":"c1","userInfo":{"username":"e2e"},
 "object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1","namespace":"$W"}}}}
EOT
review() { # curl the webhook; extra curl flags
	curl -sS --max-time 10 --cacert "$WORK/ca.crt" -H 'Content-Type: application/json' \
		--data @"$WORK/review.json" "$@" "https://127.0.0.1:$PORT/validate"
}
check "curl without a client certificate is refused" -- expect_fail review
eventually 10 "the host logs the refusal and why (no certificate)" -- \
	grep -E 'TLS handshake refused.*peer=127.0.0.1 client_ca=required reason=.*(peer did not return a certificate|certificate required)' "${HLOG[w]}"
check "curl with a certificate another CA signed (the cluster admin's) is refused" -- \
	expect_fail review --cert "$PKI/admin.crt" --key "$PKI/admin.key"
eventually 10 "the host logs the refusal and why (the certificate's issuer)" -- \
	grep -E 'TLS handshake refused.*reason=client certificate: unable to get (local )?issuer certificate' "${HLOG[w]}"
check "curl with the API server's webhook client certificate is answered" -- \
	bash -c "$(declare -f review); PORT=$PORT WORK=$WORK review --cert '$WC/client.crt' --key '$WC/client.key' | jq -e '.response.uid == \"u1\" and .response.allowed == true'"
check "the host served on through the refusals" w -- host_answers w
finish
