// Package manifests embeds the manifests the server installs by default:
// the Gateway API standard-channel CRDs (refreshed by
// hack/update-gateway-api.sh from the module go.mod resolves), and a kind
// cluster's system pods and add-ons (system/, templates pkg/system fills).
package manifests

import (
	"embed"
	"strings"
)

// GatewayAPICRDs are the CRDs of gateway-api/*.yaml, as released, in one
// JSON array (pkg/crds ParseJSON): every default start reads them, and
// decoding the YAML took 150 ms of it, the JSON 25 ms. pkg/crds'
// TestGatewayAPIJSON keeps the two equal (-update rewrites the JSON).
//
//go:embed gateway-api.json
var GatewayAPICRDs []byte

//go:embed gateway-api/VERSION
var gatewayAPIVersion string

// GatewayAPIVersion is the release of the Gateway API CRDs.
func GatewayAPIVersion() string { return strings.TrimSpace(gatewayAPIVersion) }

// System holds system/*.yaml.
//
//go:embed system/*.yaml
var System embed.FS
