//go:build pin

// Package hack holds build scripts. This file is never compiled: its import
// keeps k8s.io/kubernetes v1.37.2 required in go.mod (go mod tidy reads every
// build tag), pinning the Kubernetes release that every staging module in the
// replace block matches, until the server imports it for real.
package hack

import _ "k8s.io/kubernetes/pkg/api/legacyscheme"
