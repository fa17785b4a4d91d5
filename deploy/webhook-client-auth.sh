#!/usr/bin/env bash
# deploy/webhook-client-auth.sh DIR: what it takes for the KupenStack admission webhook to
# accept the API server's calls only (the host's --admission-client-ca).
#
# The API server presents a client certificate to a webhook when its admission
# configuration names a kubeconfig for webhooks; this script makes, in DIR:
#   client-ca.crt, client-ca.key     a CA of its own (EC P-256, ten years): keep the key
#                                    offline, it signs nothing but the client certificate
#   client.crt, client.key           CN=kube-apiserver-webhook-client (clientAuth)
#   webhook.kubeconfig               that certificate for every webhook ("*")
#   admission-config.yaml            AdmissionConfiguration: the Validating and Mutating
#                                    admission webhooks use webhook.kubeconfig
#   client-ca-configmap.yaml         ConfigMap kupenstack-system/kupenstack-webhook-client-ca
#                                    (ca.crt) that deploy/operator.yaml mounts
# Then, on every control-plane node, give kube-apiserver
#   --admission-control-config-file=DIR/admission-config.yaml
# (kubeadm: apiServer.extraArgs and extraVolumes; the paths inside admission-config.yaml
# are DIR's, so copy DIR to the same place on each node), and
#   kubectl apply -f DIR/client-ca-configmap.yaml
# A caller without a certificate this CA signed is refused at the TLS handshake and the
# host logs 'admission: TLS handshake refused'. An existing DIR/client-ca.key is reused
# (run it again to renew the client certificate under the same CA).
# tests/env/kube runs this for the test cluster.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
D=$(realpath -m "$1")
NS=${KS_NAMESPACE:-kupenstack-system}
mkdir -p "$D"
chmod 700 "$D"
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if ! [ -s "$D/client-ca.key" ]; then
	newkey "$D/client-ca.key"
	openssl req -x509 -new -key "$D/client-ca.key" -subj "/CN=kupenstack-webhook-client-ca" \
		-days 3650 -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -out "$D/client-ca.crt"
fi
newkey "$D/client.key"
openssl req -new -key "$D/client.key" -subj "/CN=kube-apiserver-webhook-client" |
	openssl x509 -req -CA "$D/client-ca.crt" -CAkey "$D/client-ca.key" -days 825 \
		-set_serial "0x$(openssl rand -hex 16)" -out "$D/client.crt" \
		-extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth") 2>/dev/null

cat >"$D/webhook.kubeconfig" <<EOF
apiVersion: v1
kind: Config
users:
- name: "*"
  user:
    client-certificate: $D/client.crt
    client-key: $D/client.key
EOF
cat >"$D/admission-config.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $D/webhook.kubeconfig
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $D/webhook.kubeconfig
EOF
{
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n'
	printf '  name: kupenstack-webhook-client-ca\n  namespace: %s\ndata:\n  ca.crt: |\n' "$NS"
	sed 's/^/    /' "$D/client-ca.crt"
} >"$D/client-ca-configmap.yaml"
chmod 644 "$D/client-ca.crt" "$D/client.crt" "$D/client-ca-configmap.yaml"
