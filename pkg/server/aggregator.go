package server

import (
	"net/http"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apimachinery/pkg/runtime/schema"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/informers"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1beta1"
	aggregatorapiserver "k8s.io/kube-aggregator/pkg/apiserver"
	aggregatorscheme "k8s.io/kube-aggregator/pkg/apiserver/scheme"
	aggregatoropenapi "k8s.io/kube-aggregator/pkg/generated/openapi"
	controlplaneapiserver "k8s.io/kubernetes/pkg/controlplane/apiserver"

	"github.com/mockernetes/mockernetes/pkg/storage"
)

// frontProxyClientName is the common name of the aggregator's client
// certificate, the one name extension API servers accept (kubeadm's).
const frontProxyClientName = "front-proxy-client"

// newAggregatorConfig is kube-apiserver's CreateAggregatorConfig
// (pkg/controlplane/apiserver/aggregator.go) on the in-memory backend: a
// shallow copy of the built-in server's generic config (same listener,
// handler chain, authentication, discovery manager) with apiregistration's
// codec and resource config, no post-start hooks of the built-in server, and
// its own OpenAPI aggregation. It proxies with the front proxy's client
// certificate and dials through the egress gate.
func newAggregatorConfig(kube *genericapiserver.Config, informers informers.SharedInformerFactory, backend *storage.Backend,
	resolver aggregatorapiserver.ServiceResolver, proxyTransport *http.Transport, state State) *aggregatorapiserver.Config {
	g := *kube
	g.PostStartHooks = map[string]genericapiserver.PostStartHookConfigEntry{}
	g.SkipOpenAPIInstallation = true
	g.MergedResourceConfig = aggregatorapiserver.DefaultAPIResourceConfigSource()
	// Its own routes' documents from its own definitions (kube-aggregator's
	// generated ones, 70 where Kubernetes has 1,500): the same documents,
	// built in a fraction of the time at start-up.
	namer := openapinamer.NewDefinitionNamer(aggregatorscheme.Scheme)
	g.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(aggregatoropenapi.GetOpenAPIDefinitions, namer)
	g.OpenAPIConfig.Info.Title = kube.OpenAPIConfig.Info.Title
	g.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(aggregatoropenapi.GetOpenAPIDefinitions, namer)
	g.OpenAPIV3Config.Info.Title = kube.OpenAPIV3Config.Info.Title

	etcd := groupStorage(aggregatorscheme.Codecs.LegacyCodec(apiregistrationv1.SchemeGroupVersion, v1beta1.SchemeGroupVersion), apiregistrationv1.SchemeGroupVersion)
	g.RESTOptionsGetter = backend.Wrap(etcd.CreateRESTOptionsGetter(&genericoptions.SimpleStorageFactory{StorageConfig: etcd.StorageConfig}, nil))

	return &aggregatorapiserver.Config{
		GenericConfig: &genericapiserver.RecommendedConfig{Config: g, SharedInformerFactory: informers},
		ExtraConfig: aggregatorapiserver.ExtraConfig{
			ProxyClientCertFile: state.FrontProxyClientCertFile,
			ProxyClientKeyFile:  state.FrontProxyClientKeyFile,
			ServiceResolver:     resolver,
			ProxyTransport:      proxyTransport,
		},
	}
}

// newAggregator puts kube-aggregator in front of the built-in server as
// kube-apiserver's CreateServerChain does: an APIService for every local
// group version (autoregistration) and every CRD group version (CRD
// registration), each Available once served, and readiness waiting for them.
func newAggregator(c completedConfig, kube genericapiserver.DelegationTarget, apiext *apiextensionsapiserver.CustomResourceDefinitions) (*aggregatorapiserver.APIAggregator, error) {
	crdEnabled := c.apiExtensions.GenericConfig.MergedResourceConfig.ResourceEnabled(apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions"))
	return controlplaneapiserver.CreateAggregatorServer(c.aggregator, kube, apiext.Informers.Apiextensions().V1().CustomResourceDefinitions(), crdEnabled, apiServicePriorities())
}

// apiServicePriorities are kube-apiserver's (cmd/kube-apiserver/app/aggregator.go,
// not exported there): the generic control plane's and the groups
// kube-apiserver adds, which order the groups of discovery.
func apiServicePriorities() map[schema.GroupVersion]controlplaneapiserver.APIServicePriority {
	p := controlplaneapiserver.DefaultGenericAPIServicePriorities()
	for gv, priority := range map[schema.GroupVersion]controlplaneapiserver.APIServicePriority{
		{Group: "", Version: "v1"}:                        {Group: 18000, Version: 1},
		{Group: "apps", Version: "v1"}:                    {Group: 17800, Version: 15},
		{Group: "autoscaling", Version: "v1"}:             {Group: 17500, Version: 15},
		{Group: "autoscaling", Version: "v2"}:             {Group: 17500, Version: 30},
		{Group: "autoscaling", Version: "v2beta1"}:        {Group: 17500, Version: 9},
		{Group: "autoscaling", Version: "v2beta2"}:        {Group: 17500, Version: 1},
		{Group: "batch", Version: "v1"}:                   {Group: 17400, Version: 15},
		{Group: "batch", Version: "v1beta1"}:              {Group: 17400, Version: 9},
		{Group: "batch", Version: "v2alpha1"}:             {Group: 17400, Version: 9},
		{Group: "networking.k8s.io", Version: "v1"}:       {Group: 17200, Version: 15},
		{Group: "networking.k8s.io", Version: "v1beta1"}:  {Group: 17200, Version: 9},
		{Group: "policy", Version: "v1"}:                  {Group: 17100, Version: 15},
		{Group: "policy", Version: "v1beta1"}:             {Group: 17100, Version: 9},
		{Group: "storage.k8s.io", Version: "v1"}:          {Group: 16800, Version: 15},
		{Group: "storage.k8s.io", Version: "v1beta1"}:     {Group: 16800, Version: 9},
		{Group: "storage.k8s.io", Version: "v1alpha1"}:    {Group: 16800, Version: 1},
		{Group: "scheduling.k8s.io", Version: "v1"}:       {Group: 16600, Version: 15},
		{Group: "scheduling.k8s.io", Version: "v1beta1"}:  {Group: 16600, Version: 9},
		{Group: "scheduling.k8s.io", Version: "v1alpha3"}: {Group: 16600, Version: 3},
		{Group: "node.k8s.io", Version: "v1"}:             {Group: 16300, Version: 15},
		{Group: "node.k8s.io", Version: "v1alpha1"}:       {Group: 16300, Version: 1},
		{Group: "node.k8s.io", Version: "v1beta1"}:        {Group: 16300, Version: 9},
		{Group: "resource.k8s.io", Version: "v1"}:         {Group: 16200, Version: 21},
		{Group: "resource.k8s.io", Version: "v1beta2"}:    {Group: 16200, Version: 15},
		{Group: "resource.k8s.io", Version: "v1beta1"}:    {Group: 16200, Version: 9},
		{Group: "resource.k8s.io", Version: "v1alpha3"}:   {Group: 16200, Version: 1},
		{Group: "lifecycle.k8s.io", Version: "v1alpha1"}:  {Group: 15700, Version: 1},
	} {
		p[gv] = priority
	}
	return p
}
