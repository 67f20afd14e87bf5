// Package controllers runs kube-controller-manager's own controllers
// (k8s.io/kubernetes/cmd/kube-controller-manager/app) in the server's
// process, against the server through its loopback client: the same
// descriptors, controller context and start sequence as
// kube-controller-manager's Run, without leader election, serving or cloud
// providers. This file is the one place that starts them.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/server/healthz"
	cacheddiscovery "k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"
	"k8s.io/controller-manager/pkg/clientbuilder"
	"k8s.io/controller-manager/pkg/informerfactory"
	"k8s.io/klog/v2"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmconfig "k8s.io/kubernetes/cmd/kube-controller-manager/app/config"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
	"k8s.io/kubernetes/pkg/controller/apis/config"
	"k8s.io/kubernetes/pkg/controller/garbagecollector"
	gcconfig "k8s.io/kubernetes/pkg/controller/garbagecollector/config"

	"github.com/mockernetes/mockernetes/pkg/settle"
)

// Config says which controllers run and how they reach the server.
type Config struct {
	// Kubeconfig is the server's loopback client configuration.
	Kubeconfig *restclient.Config
	// UserAgent is the base of the controllers' user agents, to which each
	// appends its name, as kube-controller-manager's do (its first word is
	// the field manager of their writes). Empty: client-go's default.
	UserAgent string
	Selection Selection
	// RootCAFile is the cluster CA published in every namespace as the
	// kube-root-ca.crt ConfigMap.
	RootCAFile string
	// Tracker, if set, sees the work of the controllers written here
	// (namespace deletion, the provisioner) for settle.
	Tracker *settle.Tracker
	// Informers, if set, is the typed informer factory the controllers
	// share with other components (the simulated kubelets): it must drop
	// managed fields as kube-controller-manager's does, and its owner
	// shuts it down. Nil: the controllers make their own.
	Informers informers.SharedInformerFactory
}

// Manager runs the selected controllers.
type Manager struct {
	config    Config
	component config.KubeControllerManagerConfiguration
	synced    atomic.Bool
}

// New prepares kube-controller-manager's default component configuration,
// tuned for tests: controllers start at once (no start interval), react to
// events as upstream does, and never resync on a timer of their own.
func New(c Config) (*Manager, error) {
	component, err := kcmoptions.NewDefaultComponentConfig()
	if err != nil {
		return nil, err
	}
	component.Generic.Controllers = c.Selection.Names()
	component.Generic.ControllerStartInterval.Duration = 0
	component.Generic.LeaderElection.LeaderElect = false
	component.SAController.RootCAFile = c.RootCAFile
	component.KubeCloudShared.UseServiceAccountCredentials = false
	// The garbage collector leaves Events alone, as kube-controller-manager's
	// options set it (the component config's defaults do not): they go by
	// their TTL, and a cluster's many Events would all be in its graph.
	for r := range garbagecollector.DefaultIgnoredResources() {
		component.GarbageCollectorController.GCIgnoredResources = append(component.GarbageCollectorController.GCIgnoredResources,
			gcconfig.GroupResource{Group: r.Group, Resource: r.Resource})
	}
	return &Manager{config: c, component: component}, nil
}

// Synced reports whether every selected controller is running with its
// informers synced.
func (m *Manager) Synced() bool { return m.synced.Load() }

// HealthChecker is a readyz check that passes once Synced.
func (m *Manager) HealthChecker() healthz.HealthChecker { return syncedCheck{m} }

type syncedCheck struct{ m *Manager }

func (syncedCheck) Name() string { return "mockernetes-controllers" }
func (c syncedCheck) Check(*http.Request) error {
	if c.m.Synced() {
		return nil
	}
	return errors.New("controllers not started or informers not synced")
}

// Run starts the controllers once the server answers /healthz, and runs
// them until ctx ends. It follows kube-controller-manager's Run:
// CreateControllerContext, BuildControllers, start the informer factories,
// close InformersStarted, RunControllers.
func (m *Manager) Run(ctx context.Context) error {
	if m.config.Selection.None() {
		m.synced.Store(true)
		<-ctx.Done()
		return nil
	}
	logger := klog.FromContext(ctx)
	kubeconfig := restclient.CopyConfig(m.config.Kubeconfig)
	// No client-side throttling: the defaults (20 QPS) slow garbage
	// collection and namespace deletion to a crawl.
	kubeconfig.QPS, kubeconfig.Burst = -1, 0
	root := clientBuilder{config: kubeconfig, userAgent: m.config.UserAgent}
	if root.userAgent == "" {
		root.userAgent = restclient.DefaultKubernetesUserAgent()
	}

	// Upstream's CreateControllerContext polls /healthz once a second;
	// polling here first lets its first poll succeed.
	client, err := root.Client("mockernetes-controllers")
	if err != nil {
		return err
	}
	if err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var code int
		client.Discovery().RESTClient().Get().AbsPath("/healthz").Do(ctx).StatusCode(&code)
		return code == http.StatusOK, nil
	}); err != nil {
		return nil // ctx ended
	}

	controllerCtx, err := m.controllerContext(ctx, root)
	if err != nil {
		return fmt.Errorf("controller context: %w", err)
	}
	selected := descriptors()
	delete(selected, names.NamespaceController) // see namespace.go
	controllers, err := kcm.BuildControllers(ctx, controllerCtx, selected, nil, noHealthChecks{})
	if err != nil {
		return fmt.Errorf("building controllers: %w", err)
	}
	if m.config.Selection.Enabled(names.PersistentVolumeBinderController) {
		// The binder comes with the stand-in provisioner of the default
		// StorageClass, which exists before the binder starts.
		p, err := newProvisioner(client, controllerCtx.InformerFactory, m.config.Tracker)
		if err != nil {
			return fmt.Errorf("provisioner: %w", err)
		}
		if err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			return p.ensureStorageClass(ctx) == nil, nil
		}); err != nil {
			return nil
		}
		controllers = append(controllers, p)
	}
	if m.config.Selection.Enabled(names.NamespaceController) {
		ns, err := newNamespaceController(ctx, kubeconfig, controllerCtx.InformerFactory.Core().V1().Namespaces(), m.config.Tracker)
		if err != nil {
			return fmt.Errorf("namespace controller: %w", err)
		}
		controllers = append(controllers, ns)
	}
	if m.config.Selection.Enabled(names.JobController) {
		m.config.Tracker.Check(jobsBusy(controllerCtx.InformerFactory.Batch().V1().Jobs().Lister(), controllerCtx.InformerFactory.Core().V1().Pods().Lister()))
	}
	controllerCtx.InformerFactory.Start(ctx.Done())
	if m.config.Informers == nil {
		defer controllerCtx.InformerFactory.Shutdown()
	}
	controllerCtx.ObjectOrMetadataInformerFactory.Start(ctx.Done())
	close(controllerCtx.InformersStarted)
	// Upstream's controllers wait for their informers by polling every
	// 100 ms. Started once the informers have synced, they pass their first
	// check and run their workers at once; started before, a write in the
	// gap would sit in a queue no worker reads yet, which settle cannot
	// see.
	for _, synced := range controllerCtx.InformerFactory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return nil // ctx ended
		}
	}

	go func() {
		if err := m.config.Tracker.Factory("kube-controller-manager", controllerCtx.InformerFactory, ctx.Done()); err != nil {
			logger.Error(err, "Following the controllers' informers for settle")
		}
		// The garbage collector watches every resource, custom ones too,
		// through metadata informers of its own; ready means it sees them.
		if gb := controllerCtx.GraphBuilder; gb != nil {
			if err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(context.Context) (bool, error) {
				return gb.IsSynced(logger), nil
			}); err != nil {
				return
			}
		}
		logger.V(1).Info("Controllers running", "controllers", len(controllers))
		m.synced.Store(true)
	}()
	kcm.RunControllers(ctx, controllerCtx, controllers, 0, 10*time.Second)
	return nil
}

// TrimManagedFields is kube-controller-manager's informers' transform:
// the controllers never read managed fields, so their copies leave them out.
// The server's other in-process informers use it too.
func TrimManagedFields(obj any) (any, error) {
	if accessor, err := meta.Accessor(obj); err == nil && accessor.GetManagedFields() != nil {
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}

// controllerContext is kube-controller-manager's CreateControllerContext
// except for one thing: upstream names its informer factory
// "kube-controller-manager" in client-go's process-wide registry of informer
// names, which refuses a second factory of that name, so two servers could
// not run controllers in one process. Its wait for /healthz is done by Run.
func (m *Manager) controllerContext(ctx context.Context, root clientbuilder.ControllerClientBuilder) (kcm.ControllerContext, error) {
	cfg := (&kcmconfig.Config{ComponentConfig: m.component}).Complete()
	resync := kcm.ResyncPeriod(cfg)
	shared := m.config.Informers
	if shared == nil {
		client, err := root.Client("shared-informers")
		if err != nil {
			return kcm.ControllerContext{}, err
		}
		shared = informers.NewSharedInformerFactoryWithOptions(client, resync(), informers.WithTransform(TrimManagedFields))
	}
	metadataConfig, err := root.Config("metadata-informers")
	if err != nil {
		return kcm.ControllerContext{}, err
	}
	metadataClient, err := metadata.NewForConfig(metadataConfig)
	if err != nil {
		return kcm.ControllerContext{}, err
	}
	metadataInformers := metadatainformer.NewSharedInformerFactoryWithOptions(metadataClient, resync(), metadatainformer.WithTransform(TrimManagedFields))
	discoveryClient, err := root.DiscoveryClient("controller-discovery")
	if err != nil {
		return kcm.ControllerContext{}, err
	}
	restMapper := restmapper.NewDeferredDiscoveryRESTMapper(cacheddiscovery.NewMemCacheClient(discoveryClient))
	go wait.Until(restMapper.Reset, 30*time.Second, ctx.Done())

	c := kcm.ControllerContext{
		ClientBuilder:                   root,
		InformerFactory:                 shared,
		ObjectOrMetadataInformerFactory: informerfactory.NewInformerFactory(shared, metadataInformers),
		ComponentConfig:                 m.component,
		RESTMapper:                      restMapper,
		InformersStarted:                make(chan struct{}),
		ResyncPeriod:                    resync,
		ControllerManagerMetrics:        controllersmetrics.NewControllerManagerMetrics("kube-controller-manager"),
	}
	if m.component.GarbageCollectorController.EnableGarbageCollector && m.config.Selection.Enabled(names.GarbageCollectorController) {
		ignored := map[schema.GroupResource]struct{}{}
		for _, r := range m.component.GarbageCollectorController.GCIgnoredResources {
			ignored[schema.GroupResource{Group: r.Group, Resource: r.Resource}] = struct{}{}
		}
		c.GraphBuilder = garbagecollector.NewDependencyGraphBuilder(ctx, metadataClient, restMapper, ignored, c.ObjectOrMetadataInformerFactory, c.InformersStarted)
	}
	controllersmetrics.Register()
	return c, nil
}

type noHealthChecks struct{}

func (noHealthChecks) AddHealthChecker(...healthz.HealthChecker) {}
