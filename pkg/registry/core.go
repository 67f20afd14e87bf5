package registry

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	api "k8s.io/kubernetes/pkg/apis/core"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/registry/core/componentstatus"
	endpointsstore "k8s.io/kubernetes/pkg/registry/core/endpoint/storage"
	limitrangestore "k8s.io/kubernetes/pkg/registry/core/limitrange/storage"
	nodestore "k8s.io/kubernetes/pkg/registry/core/node/storage"
	pvstore "k8s.io/kubernetes/pkg/registry/core/persistentvolume/storage"
	pvcstore "k8s.io/kubernetes/pkg/registry/core/persistentvolumeclaim/storage"
	podstore "k8s.io/kubernetes/pkg/registry/core/pod/storage"
	podtemplatestore "k8s.io/kubernetes/pkg/registry/core/podtemplate/storage"
	controllerstore "k8s.io/kubernetes/pkg/registry/core/replicationcontroller/storage"
	corerest "k8s.io/kubernetes/pkg/registry/core/rest"
	"k8s.io/kubernetes/pkg/registry/core/service/ipallocator"
	ipallocatorcontroller "k8s.io/kubernetes/pkg/registry/core/service/ipallocator/controller"
	"k8s.io/kubernetes/pkg/registry/core/service/portallocator"
	servicestore "k8s.io/kubernetes/pkg/registry/core/service/storage"
	serviceaccountstore "k8s.io/kubernetes/pkg/registry/core/serviceaccount/storage"
	netutils "k8s.io/utils/net"
)

// coreProvider is kube-apiserver's legacy ("core", /api/v1) provider,
// pkg/registry/core/rest.legacyProvider, rebuilt with the same upstream
// storages except for one thing: NodePorts come from an in-memory allocator
// (upstream keeps that bitmap in etcd). ClusterIPs use upstream's allocator
// as it is, which keeps IPAddress objects through the API. Component
// statuses are left out: they probe etcd, the scheduler and the controller
// manager on fixed local ports, none of which exist here.
type coreProvider struct {
	Config
	generic       corerest.GenericConfig
	clusterIPs    ipallocator.Interface
	nodePorts     *portallocator.PortAllocator
	clusterIPRepr func(onFirstSuccess func(), stopCh chan struct{})
}

var _ genericapiserver.PostStartHookProvider = &coreProvider{}

func newCoreProvider(c Config) (*coreProvider, error) {
	if c.ServiceClusterIPRange.IP == nil {
		return nil, errors.New("service cluster IP range is missing")
	}
	client, err := kubernetes.NewForConfig(c.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	clusterIPs, err := ipallocator.NewMetaAllocator(
		client.NetworkingV1(),
		c.Informers.Networking().V1().ServiceCIDRs(),
		c.Informers.Networking().V1().IPAddresses(),
		netutils.IsIPv6CIDR(&c.ServiceClusterIPRange),
		nil, // no bitmap: DisableAllocatorDualWrite is locked on in 1.37
	)
	if err != nil {
		return nil, fmt.Errorf("cluster IP allocator: %w", err)
	}
	if c.NodePorts == nil {
		return nil, errors.New("node port allocator is missing")
	}
	return &coreProvider{
		Config: c,
		generic: corerest.GenericConfig{
			StorageFactory:              c.StorageFactory,
			EventTTL:                    c.EventTTL,
			ServiceAccountIssuer:        c.ServiceAccountIssuer,
			ServiceAccountMaxExpiration: c.ServiceAccountMaxExpiration,
			APIAudiences:                c.APIAudiences,
			LoopbackClientConfig:        c.LoopbackClientConfig,
			Informers:                   c.Informers,
		},
		clusterIPs: clusterIPs,
		nodePorts:  c.NodePorts,
		clusterIPRepr: func(onFirstSuccess func(), stopCh chan struct{}) {
			ipallocatorcontroller.NewRepairIPAddress(
				time.Minute, client,
				c.Informers.Core().V1().Services(),
				c.Informers.Networking().V1().ServiceCIDRs(),
				liveIPAddresses{IPAddressInformer: c.Informers.Networking().V1().IPAddresses(), client: client},
			).RunUntil(onFirstSuccess, stopCh)
		},
	}, nil
}

func (p *coreProvider) GroupName() string { return api.GroupName }

// NewRESTStorage follows legacyProvider.NewRESTStorage resource by resource.
func (p *coreProvider) NewRESTStorage(resources serverstorage.APIResourceConfigSource, getter generic.RESTOptionsGetter) (genericapiserver.APIGroupInfo, error) {
	info, err := p.generic.NewRESTStorage(resources, getter)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}
	client, err := kubernetes.NewForConfig(p.LoopbackClientConfig)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}

	podTemplates, err := podtemplatestore.NewREST(getter)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}
	limitRanges, err := limitrangestore.NewREST(getter)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}
	pvs, pvStatus, err := pvstore.NewREST(getter)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}
	pvcs, pvcStatus, err := pvcstore.NewREST(getter)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}
	endpoints, err := endpointsstore.NewREST(getter)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}
	nodes, err := nodestore.NewStorage(getter, p.KubeletClientConfig, p.ProxyTransport)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}
	pods, err := podstore.NewStorage(getter, nodes.KubeletConnectionInfo, p.ProxyTransport, client.PolicyV1(), p.Authorizer)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}
	services, serviceStatus, serviceProxy, err := servicestore.NewREST(getter,
		p.clusterIPs.IPFamily(),
		map[api.IPFamily]ipallocator.Interface{p.clusterIPs.IPFamily(): p.clusterIPs},
		p.nodePorts, p.EndpointSliceGetter, pods.Pod, p.ProxyTransport)
	if err != nil {
		return genericapiserver.APIGroupInfo{}, err
	}

	// The PVC and Service registries default fields of what they read in
	// place; listed items are shared with the store (see
	// storage.Options.ReadOnlyLists), so they decorate a copy of a list.
	pvcs.Store.Decorator = decorateListCopy(pvcs.Store.Decorator)
	services.Store.Decorator = decorateListCopy(services.Store.Decorator)

	storage := info.VersionedResourcesStorageMap["v1"]
	if storage == nil {
		storage = map[string]rest.Storage{}
	}
	enabled := func(resource string) bool {
		return resources.ResourceEnabled(corev1.SchemeGroupVersion.WithResource(resource))
	}

	// Service accounts with token requests bound to pods, secrets and nodes.
	var serviceAccounts *serviceaccountstore.REST
	if p.ServiceAccountIssuer != nil {
		var nodeGetter rest.Getter
		if utilfeature.DefaultFeatureGate.Enabled(features.ServiceAccountTokenNodeBinding) ||
			utilfeature.DefaultFeatureGate.Enabled(features.ServiceAccountTokenPodNodeInfo) {
			nodeGetter = nodes.Node.Store
		}
		serviceAccounts, err = serviceaccountstore.NewREST(getter, p.ServiceAccountIssuer, p.APIAudiences, p.Authorizer,
			p.ServiceAccountMaxExpiration, pods.Pod.Store, storage["secrets"].(rest.Getter), nodeGetter,
			client.AdmissionregistrationV1().ValidatingWebhookConfigurations(),
			client.AdmissionregistrationV1().MutatingWebhookConfigurations(), false, 0)
		if err != nil {
			return genericapiserver.APIGroupInfo{}, err
		}
	}

	if enabled("pods") {
		storage["pods"] = pods.Pod
		storage["pods/attach"] = pods.Attach
		storage["pods/status"] = pods.Status
		storage["pods/log"] = pods.Log
		storage["pods/exec"] = pods.Exec
		storage["pods/portforward"] = pods.PortForward
		storage["pods/proxy"] = pods.Proxy
		storage["pods/binding"] = pods.Binding
		if pods.Eviction != nil {
			storage["pods/eviction"] = pods.Eviction
		}
		storage["pods/ephemeralcontainers"] = pods.EphemeralContainers
		if utilfeature.DefaultFeatureGate.Enabled(features.InPlacePodVerticalScaling) {
			storage["pods/resize"] = pods.Resize
		}
		if p.PodLogs != nil {
			storage["pods/log"] = &LogREST{Pods: pods.Pod.Store, Logs: p.PodLogs}
		}
	}
	if enabled("bindings") {
		storage["bindings"] = pods.LegacyBinding
	}
	if enabled("podtemplates") {
		storage["podtemplates"] = podTemplates
	}
	if enabled("replicationcontrollers") {
		rcs, err := controllerstore.NewStorage(getter)
		if err != nil {
			return genericapiserver.APIGroupInfo{}, err
		}
		storage["replicationcontrollers"] = rcs.Controller
		storage["replicationcontrollers/status"] = rcs.Status
		if legacyscheme.Scheme.IsVersionRegistered(schema.GroupVersion{Group: "autoscaling", Version: "v1"}) {
			storage["replicationcontrollers/scale"] = rcs.Scale
		}
	}
	if serviceAccounts != nil && enabled("serviceaccounts") {
		storage["serviceaccounts"].Destroy()
		if storage["serviceaccounts/token"] != nil {
			storage["serviceaccounts/token"].Destroy()
		}
		storage["serviceaccounts"] = serviceAccounts
		if serviceAccounts.Token != nil {
			storage["serviceaccounts/token"] = serviceAccounts.Token
		}
	}
	if enabled("services") {
		storage["services"] = services
		storage["services/proxy"] = serviceProxy
		storage["services/status"] = serviceStatus
	}
	if enabled("endpoints") {
		storage["endpoints"] = endpoints
	}
	if enabled("nodes") {
		storage["nodes"] = nodes.Node
		storage["nodes/proxy"] = &NodeProxyREST{Store: nodes.Node.Store, Kubelets: p.Kubelets}
		storage["nodes/status"] = nodes.Status
	}
	if enabled("limitranges") {
		storage["limitranges"] = limitRanges
	}
	if enabled("persistentvolumes") {
		storage["persistentvolumes"] = pvs
		storage["persistentvolumes/status"] = pvStatus
	}
	if enabled("persistentvolumeclaims") {
		storage["persistentvolumeclaims"] = pvcs
		storage["persistentvolumeclaims/status"] = pvcStatus
	}
	if enabled("componentstatuses") && p.ComponentStatuses != nil {
		storage["componentstatuses"] = componentstatus.NewStorage(p.ComponentStatuses)
	}
	if len(storage) > 0 {
		info.VersionedResourcesStorageMap["v1"] = storage
	}
	return info, nil
}

// PostStartHook runs upstream's ClusterIP repair loop, which keeps the
// IPAddress objects and the services' ClusterIPs consistent, and holds
// readiness until its first pass as kube-apiserver does.
func (p *coreProvider) PostStartHook() (string, genericapiserver.PostStartHookFunc, error) {
	return "start-service-ip-repair-controllers", func(ctx genericapiserver.PostStartHookContext) error {
		stop := make(chan struct{})
		first := make(chan struct{})
		// Its first pass gives up when the Service informer shows a
		// ClusterIP before the IPAddress informer shows its IPAddress
		// (two watches; the repair then finds the address taken): a
		// kube-apiserver failing its readiness for that is restarted, so
		// the pass runs again, with a fresh repair controller.
		go func() {
			for {
				p.clusterIPRepr(func() { close(first) }, stop) // returns when stopped or failed
				select {
				case <-first:
					return
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		go func() {
			<-ctx.Done()
			close(stop)
		}()
		select {
		case <-first:
			return nil
		case <-ctx.Done():
			return errors.New("unable to perform initial IP allocation check (context cancelled)")
		case <-time.After(time.Minute):
			return errors.New("unable to perform initial IP allocation check (timeout)")
		}
	}, nil
}

// decorateListCopy wraps a registry's read decorator so that it runs on a
// deep copy of a list, put in the list's place, and never writes to the
// listed objects it was given.
func decorateListCopy(decorate func(runtime.Object)) func(runtime.Object) {
	if decorate == nil {
		return nil
	}
	return func(obj runtime.Object) {
		if meta.IsListType(obj) {
			v := reflect.ValueOf(obj)
			if v.Kind() == reflect.Pointer && !v.IsNil() {
				v.Elem().Set(reflect.ValueOf(obj.DeepCopyObject()).Elem())
			}
		}
		decorate(obj)
	}
}
