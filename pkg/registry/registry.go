// Package registry lists the REST storage of every built-in Kubernetes API
// group, taken from kube-apiserver's own providers (k8s.io/kubernetes/pkg/
// registry/<group>/rest), in kube-apiserver's order. Only the core group is
// assembled here (core.go): upstream's builder opens etcd for the NodePort
// allocator.
package registry

import (
	"net"
	"net/http"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/registry/generic"
	genericapiserver "k8s.io/apiserver/pkg/server"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	"k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/kubernetes/pkg/controlplane"
	controlplaneapiserver "k8s.io/kubernetes/pkg/controlplane/apiserver"
	kubeletclient "k8s.io/kubernetes/pkg/kubelet/client"
	"k8s.io/kubernetes/pkg/registry/core/service/portallocator"

	"k8s.io/kubernetes/pkg/serviceaccount"

	"github.com/mockernetes/mockernetes/pkg/listcache"

	admissionregistrationrest "k8s.io/kubernetes/pkg/registry/admissionregistration/rest"
	apiserverinternalrest "k8s.io/kubernetes/pkg/registry/apiserverinternal/rest"
	appsrest "k8s.io/kubernetes/pkg/registry/apps/rest"
	authenticationrest "k8s.io/kubernetes/pkg/registry/authentication/rest"
	authorizationrest "k8s.io/kubernetes/pkg/registry/authorization/rest"
	autoscalingrest "k8s.io/kubernetes/pkg/registry/autoscaling/rest"
	batchrest "k8s.io/kubernetes/pkg/registry/batch/rest"
	certificatesrest "k8s.io/kubernetes/pkg/registry/certificates/rest"
	coordinationrest "k8s.io/kubernetes/pkg/registry/coordination/rest"
	"k8s.io/kubernetes/pkg/registry/core/componentstatus"
	discoveryrest "k8s.io/kubernetes/pkg/registry/discovery/rest"
	eventsrest "k8s.io/kubernetes/pkg/registry/events/rest"
	flowcontrolrest "k8s.io/kubernetes/pkg/registry/flowcontrol/rest"
	lifecyclerest "k8s.io/kubernetes/pkg/registry/lifecycle/rest"
	networkingrest "k8s.io/kubernetes/pkg/registry/networking/rest"
	noderest "k8s.io/kubernetes/pkg/registry/node/rest"
	policyrest "k8s.io/kubernetes/pkg/registry/policy/rest"
	rbacrest "k8s.io/kubernetes/pkg/registry/rbac/rest"
	resourcerest "k8s.io/kubernetes/pkg/registry/resource/rest"
	schedulingrest "k8s.io/kubernetes/pkg/registry/scheduling/rest"
	storagerest "k8s.io/kubernetes/pkg/registry/storage/rest"
	svmrest "k8s.io/kubernetes/pkg/registry/storagemigration/rest"
)

// Provider builds the REST storage of one API group (upstream's interface).
type Provider = controlplaneapiserver.RESTStorageProvider

// Config is what the upstream providers need from the server around them.
type Config struct {
	StorageFactory       serverstorage.StorageFactory
	LoopbackClientConfig *restclient.Config
	// Informers is the server's shared informer factory on the loopback
	// client (the ClusterIP allocator and flow control read from it).
	Informers informers.SharedInformerFactory

	Authenticator authenticator.Request
	APIAudiences  authenticator.Audiences
	Authorizer    authorizer.Authorizer
	RuleResolver  authorizer.RuleResolver

	ServiceAccountIssuer        serviceaccount.TokenGenerator
	ServiceAccountMaxExpiration time.Duration
	EventTTL                    time.Duration

	ServiceClusterIPRange net.IPNet
	ServiceNodePortRange  utilnet.PortRange
	// NodePorts is the in-memory NodePort allocator of that range; the
	// server keeps it to follow the Services on reset and restore.
	NodePorts *portallocator.PortAllocator

	KubeletClientConfig kubeletclient.KubeletClientConfig
	// PodLogs, when set, serves pods/log from the simulated kubelet instead
	// of proxying to a kubelet. exec, attach, port-forward and pods/proxy
	// are upstream's: they dial the kubelet or pod through ProxyTransport
	// and the kubelet client's egress lookup, which reach the simulated
	// kubelets in process.
	PodLogs ContainerLogs
	// Kubelets, when set, answer nodes/proxy for the nodes they simulate.
	// nodes/proxy never dials a node: other nodes refuse, as a node with no
	// kubelet listening does.
	Kubelets            Kubelets
	ProxyTransport      *http.Transport
	EndpointSliceGetter proxy.EndpointSliceGetter
	// ComponentStatuses are the components componentstatuses reports on
	// (kube-apiserver dials its scheduler's, controller manager's and etcd's
	// health endpoints); nil serves no componentstatuses.
	ComponentStatuses func() map[string]componentstatus.Server
	// ListCache, when set, keeps the JSON and protobuf encodings of each listed object
	// version for the next LIST of it (every group shares it).
	ListCache *listcache.Cache
}

// DefaultResourceConfig is the set of group versions kube-apiserver 1.37
// serves when no --runtime-config is given.
func DefaultResourceConfig() *serverstorage.ResourceConfig {
	return controlplane.DefaultAPIResourceConfigSource()
}

// DefaultKubeletClientConfig is kube-apiserver's default (ports and address
// preference); node and pod storage need one even though no kubelet listens.
func DefaultKubeletClientConfig() kubeletclient.KubeletClientConfig {
	return kubeletclient.KubeletClientConfig{
		Port:         10250,
		ReadOnlyPort: 10255,
		PreferredAddressTypes: []string{
			"Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP",
		},
		HTTPTimeout: 5 * time.Second,
	}
}

// Providers returns the providers of every built-in API group in the order of
// kube-apiserver's controlplane.StorageProviders (the order shows in
// discovery and decides which group a bare resource name resolves to).
func Providers(c Config) ([]Provider, error) {
	client, err := kubernetes.NewForConfig(c.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	core, err := newCoreProvider(c)
	if err != nil {
		return nil, err
	}
	providers := []Provider{
		core,
		apiserverinternalrest.StorageProvider{},
		authenticationrest.RESTStorageProvider{Authenticator: c.Authenticator, APIAudiences: c.APIAudiences},
		authorizationrest.RESTStorageProvider{Authorizer: c.Authorizer, RuleResolver: c.RuleResolver},
		autoscalingrest.RESTStorageProvider{},
		batchrest.RESTStorageProvider{},
		certificatesrest.RESTStorageProvider{Authorizer: c.Authorizer},
		coordinationrest.RESTStorageProvider{},
		discoveryrest.StorageProvider{},
		lifecyclerest.RESTStorageProvider{},
		networkingrest.RESTStorageProvider{},
		noderest.RESTStorageProvider{},
		policyrest.RESTStorageProvider{},
		rbacrest.RESTStorageProvider{Authorizer: c.Authorizer},
		schedulingrest.RESTStorageProvider{},
		storagerest.RESTStorageProvider{},
		svmrest.RESTStorageProvider{},
		flowcontrolrest.RESTStorageProvider{InformerFactory: c.Informers},
		appsrest.StorageProvider{},
		admissionregistrationrest.RESTStorageProvider{Authorizer: c.Authorizer, DiscoveryClient: client.Discovery()},
		eventsrest.RESTStorageProvider{TTL: c.EventTTL},
		resourcerest.RESTStorageProvider{NamespaceClient: client.CoreV1().Namespaces(), Authorizer: c.Authorizer},
	}
	if c.ListCache != nil {
		for i, p := range providers {
			providers[i] = cachedLists(p, c.ListCache)
		}
	}
	return providers, nil
}

// cachedLists makes p's API group write its JSON and protobuf lists through cache.
func cachedLists(p Provider, cache *listcache.Cache) Provider {
	l := listCaching{Provider: p, cache: cache}
	if hooks, ok := p.(genericapiserver.PostStartHookProvider); ok {
		return listCachingWithHook{listCaching: l, hooks: hooks}
	}
	return l
}

type listCaching struct {
	Provider
	cache *listcache.Cache
}

func (l listCaching) NewRESTStorage(resources serverstorage.APIResourceConfigSource, getter generic.RESTOptionsGetter) (genericapiserver.APIGroupInfo, error) {
	info, err := l.Provider.NewRESTStorage(resources, getter)
	if err != nil || info.NegotiatedSerializer == nil { // a group not served has none
		return info, err
	}
	info.NegotiatedSerializer = listcache.Wrap(info.NegotiatedSerializer, l.cache)
	return info, nil
}

// listCachingWithHook keeps the post-start hook of a provider that has one
// (upstream's installer looks for it by type assertion).
type listCachingWithHook struct {
	listCaching
	hooks genericapiserver.PostStartHookProvider
}

func (l listCachingWithHook) PostStartHook() (string, genericapiserver.PostStartHookFunc, error) {
	return l.hooks.PostStartHook()
}
