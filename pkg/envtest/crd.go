package envtest

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
)

// CRD and webhook installation are controller-runtime's own: the same
// options, files and waiting, against the in-process server.
type (
	// CRDInstallOptions are the options for installing CRDs.
	CRDInstallOptions = crenvtest.CRDInstallOptions
	// WebhookInstallOptions are the options for installing webhooks.
	WebhookInstallOptions = crenvtest.WebhookInstallOptions
)

var (
	// InstallCRDs installs a collection of CRDs into a cluster by reading
	// the CRD yaml files from a directory.
	InstallCRDs = crenvtest.InstallCRDs
	// UninstallCRDs uninstalls a collection of CRDs.
	UninstallCRDs = crenvtest.UninstallCRDs
	// CreateCRDs creates (or updates) the CRDs.
	CreateCRDs = crenvtest.CreateCRDs
	// WaitForCRDs waits for the CRDs to appear in discovery.
	WaitForCRDs = crenvtest.WaitForCRDs
	// ReadCRDFiles reads the CRD files of options.Paths into options.CRDs.
	ReadCRDFiles = crenvtest.ReadCRDFiles
	// WaitForWebhooks waits for the webhook configurations to be served.
	WaitForWebhooks = crenvtest.WaitForWebhooks
)

// mergePaths merges two lists of paths, dropping duplicates.
func mergePaths(s1, s2 []string) []string {
	seen := map[string]bool{}
	var merged []string
	for _, s := range append(append([]string(nil), s1...), s2...) {
		if !seen[s] {
			seen[s] = true
			merged = append(merged, s)
		}
	}
	return merged
}

// mergeCRDs merges two lists of CRDs by name (a later one wins), as
// copies.
func mergeCRDs(s1, s2 []*apiextensionsv1.CustomResourceDefinition) []*apiextensionsv1.CustomResourceDefinition {
	index := map[string]int{}
	var merged []*apiextensionsv1.CustomResourceDefinition
	for _, crd := range append(append([]*apiextensionsv1.CustomResourceDefinition(nil), s1...), s2...) {
		if i, ok := index[crd.Name]; ok {
			merged[i] = crd.DeepCopy()
			continue
		}
		index[crd.Name] = len(merged)
		merged = append(merged, crd.DeepCopy())
	}
	return merged
}

// What envtest has for finding and downloading binaries: kept so that
// suites referring to them compile; nothing here reads them.
var (
	// DefaultBinaryAssetsIndexURL is envtest's index of binaries.
	DefaultBinaryAssetsIndexURL = crenvtest.DefaultBinaryAssetsIndexURL
	// SetupEnvtestDefaultBinaryAssetsDirectory is where setup-envtest
	// keeps binaries.
	SetupEnvtestDefaultBinaryAssetsDirectory = crenvtest.SetupEnvtestDefaultBinaryAssetsDirectory
	// DefaultKubeAPIServerFlags are envtest's kube-apiserver flags.
	//
	// Deprecated: as in envtest; use APIServer.Configure() instead.
	DefaultKubeAPIServerFlags = crenvtest.DefaultKubeAPIServerFlags //nolint:staticcheck
)
