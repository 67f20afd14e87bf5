// Package manifests embeds the manifests the server installs by default:
// the Gateway API standard-channel CRDs (refreshed by
// hack/update-gateway-api.sh from the module go.mod resolves), and a kind
// cluster's system pods and add-ons (system/, templates pkg/system fills).
package manifests

import "embed"

// GatewayAPI holds gateway-api/*.yaml.
//
//go:embed gateway-api/*.yaml gateway-api/VERSION
var GatewayAPI embed.FS

// System holds system/*.yaml.
//
//go:embed system/*.yaml
var System embed.FS
