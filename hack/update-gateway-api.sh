#!/usr/bin/env bash
# Refreshes manifests/gateway-api from the Gateway API module that go.mod
# resolves: the standard-channel CustomResourceDefinitions, as released,
# and manifests/gateway-api.json, the same CRDs as the server embeds them.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
version=$(go list -m -f '{{.Version}}' sigs.k8s.io/gateway-api)
rm -f manifests/gateway-api/*.yaml
for f in "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
	# The standard channel also carries a ValidatingAdmissionPolicy
	# (vap_safeupgrades); only the CRDs are kept.
	grep -q '^kind: CustomResourceDefinition' "$f" || continue
	install -m 0644 "$f" manifests/gateway-api/
done
echo "$version" > manifests/gateway-api/VERSION
# The server reads them from one JSON array (quicker to decode than YAML).
go test ./pkg/crds -run TestGatewayAPIJSON -update >/dev/null || true
go test ./pkg/crds -run TestGatewayAPIJSON
echo "manifests/gateway-api: Gateway API $version, $(ls manifests/gateway-api/*.yaml | wc -l) CRDs"
