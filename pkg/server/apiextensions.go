package server

import (
	"context"
	"fmt"
	"strings"

	restful "github.com/emicklei/go-restful/v3"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	apiextensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsoptions "k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	openapicontroller "k8s.io/apiextensions-apiserver/pkg/controller/openapi"
	openapiv3controller "k8s.io/apiextensions-apiserver/pkg/controller/openapiv3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"

	"github.com/mockernetes/mockernetes/pkg/crds"
	"github.com/mockernetes/mockernetes/pkg/storage"
)

// newAPIExtensionsConfig is kube-apiserver's CreateAPIExtensionsConfig
// (pkg/controlplane/apiserver/apiextensions.go) on the in-memory backend: a
// shallow copy of the built-in server's generic config (same listener,
// authentication, admission, discovery manager), apiextensions' own codec
// and resource config, no post-start hooks of the built-in server, and one
// API server instance (more would hold Established back by 5 s).
func newAPIExtensionsConfig(kube *genericapiserver.Config, informers informers.SharedInformerFactory, backend *storage.Backend,
	serviceResolver webhook.ServiceResolver, authResolver webhook.AuthenticationInfoResolverWrapper) *apiextensionsapiserver.Config {
	g := *kube
	g.PostStartHooks = map[string]genericapiserver.PostStartHookConfigEntry{}
	g.MergedResourceConfig = apiextensionsapiserver.DefaultAPIResourceConfigSource()

	etcd := groupStorage(apiextensionsapiserver.Codecs.LegacyCodec(v1beta1.SchemeGroupVersion, apiextensionsv1.SchemeGroupVersion), v1beta1.SchemeGroupVersion)
	g.RESTOptionsGetter = backend.Wrap(etcd.CreateRESTOptionsGetter(&genericoptions.SimpleStorageFactory{StorageConfig: etcd.StorageConfig}, nil))

	return &apiextensionsapiserver.Config{
		GenericConfig: &genericapiserver.RecommendedConfig{Config: g, SharedInformerFactory: informers},
		ExtraConfig: apiextensionsapiserver.ExtraConfig{
			CRDRESTOptionsGetter: backend.Wrap(apiextensionsoptions.NewCRDRESTOptionsGetter(*etcd, nil, nil)),
			MasterCount:          1,
			ServiceResolver:      serviceResolver,
			AuthResolverWrapper:  authResolver,
		},
	}
}

// groupStorage are the storage options of a server that stores one API
// group with codec (the apiextensions and aggregator servers), as
// kube-apiserver derives them from its etcd options, on the in-memory
// backend.
func groupStorage(codec runtime.Codec, encodeAs schema.GroupVersion) *genericoptions.EtcdOptions {
	etcd := genericoptions.NewEtcdOptions(storagebackend.NewDefaultConfig("/registry", codec))
	etcd.StorageConfig.EncodeVersioner = runtime.NewMultiGroupVersioner(encodeAs, schema.GroupKind{Group: encodeAs.Group})
	etcd.SkipHealthEndpoints = true
	return etcd
}

// addAPIExtensions wires the CRD server behind the built-in one: the CRD
// OpenAPI controllers on the built-in server's documents, and the
// preloaded CRDs (readiness waits for them). Discovery of CRD groups is the
// aggregator's (an APIService per CRD group version).
func (s *Server) addAPIExtensions(apiext *apiextensionsapiserver.CustomResourceDefinitions) error {
	crdInformer := apiext.Informers.Apiextensions().V1().CustomResourceDefinitions()
	// apiextensions' own post-start hook starts these only for a server
	// that installs its OpenAPI itself; here the documents are the
	// built-in server's, built in the background (installOpenAPI), which
	// the aggregator merges.
	if err := s.GenericAPIServer.AddPostStartHook("mockernetes-crd-openapi", func(ctx genericapiserver.PostStartHookContext) error {
		go func() {
			select {
			case <-s.openAPI.built:
			case <-ctx.Done():
				return
			}
			// Made only now: their work queues end only when they run.
			v2 := openapicontroller.NewController(crdInformer)
			v3 := openapiv3controller.NewController(crdInformer)
			g := s.kube
			go v2.Run(g.StaticOpenAPISpec, g.OpenAPIVersionedService, ctx.Done())
			go v3.Run(g.OpenAPIV3VersionedService, ctx.Done())
		}()
		return nil
	}); err != nil {
		return err
	}

	installed := make(chan struct{})
	s.crdsInstalled = installed
	if len(s.config.CRDs) == 0 {
		close(installed)
		return nil
	}
	client, err := apiextensionsclient.NewForConfig(s.config.Generic.LoopbackClientConfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(s.config.Generic.LoopbackClientConfig)
	if err != nil {
		return err
	}
	return s.GenericAPIServer.AddPostStartHook("mockernetes-install-crds", func(ctx genericapiserver.PostStartHookContext) error {
		if err := crds.Install(context.Context(ctx), client, dyn, s.config.CRDs); err != nil {
			// A hook's error ends the process (klog.Fatal); the caller gets
			// this one from WaitReady instead, and readiness never passes.
			err = fmt.Errorf("installing the CRDs: %w", err)
			s.failed.Store(&err)
			<-ctx.Done()
			return nil
		}
		close(installed)
		return nil
	})
}

// openAPIRoutes are the web services the OpenAPI documents describe: the
// built-in server's and the apiextensions group of the CRD server (CRD
// groups get into the documents through the CRD OpenAPI controllers).
func openAPIRoutes(kube, apiext *genericapiserver.GenericAPIServer) *restful.Container {
	c := restful.NewContainer()
	for _, ws := range kube.Handler.GoRestfulContainer.RegisteredWebServices() {
		c.Add(ws)
	}
	prefix := "/apis/" + apiextensionsv1.GroupName
	for _, ws := range apiext.Handler.GoRestfulContainer.RegisteredWebServices() {
		if ws.RootPath() == prefix || strings.HasPrefix(ws.RootPath(), prefix+"/") {
			c.Add(ws)
		}
	}
	return c
}
