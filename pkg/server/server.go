// Package server is the Mockernetes API server: k8s.io/apiserver's generic
// server carrying every built-in Kubernetes API group from the upstream
// registries (pkg/registry) on the in-memory store (pkg/storage), with
// kube-apiserver's authentication, admission chain and bootstrap objects.
// It follows k8s.io/sample-apiserver: Options (Complete, Validate) →
// Config → CompletedConfig → New → Run. Nothing here is process-global, so
// several servers can run in one process.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/notfoundhandler"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorapiserver "k8s.io/kube-aggregator/pkg/apiserver"
	controlplaneapiserver "k8s.io/kubernetes/pkg/controlplane/apiserver"

	"github.com/mockernetes/mockernetes/pkg/kubelet"
	"github.com/mockernetes/mockernetes/pkg/registry"
)

// Server is one running (or runnable) Mockernetes API server.
type Server struct {
	// GenericAPIServer is the outermost server of the chain, the
	// aggregator's: it serves the listener and runs every hook.
	GenericAPIServer *genericapiserver.GenericAPIServer
	// kube is the built-in API server behind the aggregator.
	kube       *genericapiserver.GenericAPIServer
	aggregator *aggregatorapiserver.APIAggregator
	config     *Config
	client     kubernetes.Interface
	// controlClient is the test-control API's own: its requests are part
	// of a reset or restore, not work of the components settle waits for.
	controlClient kubernetes.Interface
	// openAPI is the built-in server's OpenAPI documents, built in the
	// background.
	openAPI *openAPI
	// crdsInstalled is closed once the preloaded CRDs are served.
	crdsInstalled <-chan struct{}
	// nodes are the simulated nodes (nil: none).
	nodes *nodes
	// health is what componentstatuses reports.
	health *components
	// baseline is what a reset returns to, taken when the server became
	// ready (nil before).
	baseline atomic.Pointer[baseline]
	// resetMu keeps two resets from interleaving.
	resetMu sync.Mutex
	// components is the context of the components goComponent runs;
	// stopComponents ends it, and componentsRunning counts them.
	components        context.Context
	stopComponents    context.CancelFunc
	componentsRunning sync.WaitGroup
	// failed is why the server cannot become ready (the --load manifests
	// did not apply), nil while nothing failed.
	failed atomic.Pointer[error]
}

// New builds the server from a completed config. Nothing listens until
// Run. When Run starts serving, the start-up sequence is:
//
//  1. Upstream's post-start hooks: the generic server's (informers
//     started) and the registries' (RBAC bootstrap policy, priority
//     classes, flow-control defaults, IP repair).
//  2. OpenAPI and the aggregator: the built-in server's documents are
//     built in the background (requests for them wait until then) and the
//     CRD OpenAPI controllers start after that; the aggregator merges them
//     (v3 requests wait until its index lists the built-in groups). Its
//     controllers register an APIService for every local and CRD group
//     version; readiness waits until the local ones are Available.
//  3. CRDs: mockernetes-install-crds installs the preloaded CRDs and waits
//     until they are served; crdsInstalled closes then (at once with none).
//  4. Nodes and controllers: mockernetes-start-controllers starts the
//     simulated kubelets and scheduler at once, and the
//     kube-controller-manager controllers once crdsInstalled is closed, so
//     the garbage collector's first discovery sees the CRDs. Readiness
//     waits for their informers, the nodes and the default ServiceAccounts.
//  5. Bootstrap objects: system namespaces, the default ServiceCIDR, the
//     `kubernetes` Service and its endpoints, the
//     extension-apiserver-authentication ConfigMap; readiness waits for
//     them.
//  6. Baseline: once every other readiness check passes, the --load
//     manifests are applied, the cluster settles and the reset baseline is
//     taken. /readyz answers 200 from then on.
//  7. Shutdown: the components (controllers, scheduler, kubelets) stop
//     and are waited for; then a pre-shutdown hook ends every watch so
//     that the HTTP server drains at once, the connections left are
//     closed, and Run releases the store and the state directory.
func (c CompletedConfig) New() (_ *Server, err error) {
	// The handler chain kube-apiserver builds: aggregator → built-in APIs
	// → CustomResourceDefinitions → not found.
	notFound := notfoundhandler.New(c.generic.Serializer, genericapifilters.NoMuxAndDiscoveryIncompleteKey)
	apiext, err := c.apiExtensions.New(genericapiserver.NewEmptyDelegateWithCustomHandler(notFound))
	if err != nil {
		return nil, err
	}
	g, err := c.generic.New("kube-apiserver", apiext.GenericAPIServer)
	if err != nil {
		return nil, err
	}
	// The simulated nodes come before the API groups: nodes/proxy and pod
	// logs are answered by their kubelets.
	simulated, err := newNodes(c.Config)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			simulated.close()
		}
	}()
	registryConfig := c.Registry
	health := &components{}
	registryConfig.ComponentStatuses = health.servers
	if simulated != nil {
		registryConfig.Kubelets = simulated.kubelet
	}
	providers, err := registry.Providers(registryConfig)
	if err != nil {
		return nil, err
	}
	// 1. Upstream's installer: per-group storage, dropping kinds not served
	// at this version, and the providers' post-start hooks.
	cp := &controlplaneapiserver.Server{
		GenericAPIServer:        g,
		APIResourceConfigSource: c.Generic.MergedResourceConfig,
		RESTOptionsGetter:       c.Generic.RESTOptionsGetter,
	}
	if err := cp.InstallAPIs(providers...); err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(c.Generic.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	controlConfig := restclient.CopyConfig(c.Generic.LoopbackClientConfig)
	controlConfig.UserAgent = controlUserAgent
	controlClient, err := kubernetes.NewForConfig(controlConfig)
	if err != nil {
		return nil, err
	}
	// 2. OpenAPI of the built-in and CRD servers, built in the background.
	docs := installOpenAPI(c.completedConfig, g, apiext.GenericAPIServer)
	c.control.openAPI.Store(docs)
	// 3. The aggregator in front, last in the chain: it takes over the
	// built-in server's hooks and health checks, so every later hook and
	// readiness check is added to it.
	aggregator, err := newAggregator(*c.completedConfig, g, apiext)
	if err != nil {
		return nil, err
	}
	s := &Server{GenericAPIServer: aggregator.GenericAPIServer, kube: g, aggregator: aggregator, openAPI: docs,
		config: c.Config, client: client, controlClient: controlClient, nodes: simulated, health: health}
	s.components, s.stopComponents = context.WithCancel(context.Background())
	// Settle follows the informers of the CRD and APIService controllers
	// (CRD registration, autoregistration, availability, discovery).
	tracker := c.control.tracker
	if err := tracker.Informer("apiextensions-apiserver", apiextensionsv1.Resource("customresourcedefinitions"),
		apiext.Informers.Apiextensions().V1().CustomResourceDefinitions().Informer()); err != nil {
		return nil, err
	}
	if err := tracker.Informer("kube-aggregator", apiregistrationv1.Resource("apiservices"),
		aggregator.APIRegistrationInformers.Apiregistration().V1().APIServices().Informer()); err != nil {
		return nil, err
	}
	// The CRD server's OpenAPI, and the preloaded CRDs.
	if err := s.addAPIExtensions(apiext); err != nil {
		return nil, err
	}
	// 4. Nodes and controllers.
	if err := s.addControllers(simulated); err != nil {
		return nil, err
	}
	// The admin API (/mockernetes/v1): test control and pod behaviours.
	var k *kubelet.Kubelet
	if simulated != nil {
		k = simulated.kubelet
	}
	s.installAdmin(k)
	// 5. Bootstrap objects.
	if err := s.addBootstrap(); err != nil {
		return nil, err
	}
	// 6. --load and the reset baseline.
	if err := s.addBaseline(); err != nil {
		return nil, err
	}
	// 7. Ending every watch when shutdown starts lets the HTTP server drain
	// at once: otherwise an open watch holds it until ShutdownTimeout
	// (60 s). Reads and writes keep working on a closed backend.
	if err := g.AddPreShutdownHook("mockernetes-end-watches", func() error {
		c.Backend.Close()
		return nil
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// NewServer is Config, Complete and New in one: the server of options
// that Complete and Validate went through. What Config made is released if
// New fails.
func (o *Options) NewServer() (*Server, error) {
	cfg, err := o.Config()
	if err != nil {
		return nil, err
	}
	srv, err := cfg.Complete().New()
	if err != nil {
		cfg.Close()
		return nil, err
	}
	return srv, nil
}

// Start runs the server in the background until ctx ends and returns once
// it is ready, with the channel that receives Run's result. An error means
// it did not get ready within timeout, or failed, or stopped: unless the
// channel already holds Run's result, the server still runs until ctx ends.
func (s *Server) Start(ctx context.Context, timeout time.Duration) (<-chan error, error) {
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	readyCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- s.WaitReady(readyCtx) }()
	select {
	case err := <-ran:
		if err == nil {
			err = errors.New("server stopped before it was ready")
		}
		stopped := make(chan error, 1)
		stopped <- err
		return stopped, err
	case err := <-ready:
		return ran, err
	}
}

// URL is the https address of the server.
func (s *Server) URL() string { return s.config.URL }

// State is the files of this run: CA, admin credentials, kubeconfig.
func (s *Server) State() State { return s.config.State }

// Run serves until ctx ends, then shuts down and releases the store and
// (if temporary) the state directory.
func (s *Server) Run(ctx context.Context) error {
	defer s.config.Close()
	// The components stop first, then the HTTP server (see goComponent).
	serving, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			s.stopComponents()
			s.waitComponents(componentsStopTimeout)
			stopServing()
		case <-done:
		}
	}()
	go func() {
		select {
		case <-s.config.Generic.DrainedNotify():
			s.config.conns.closeAll()
			s.config.loopback.close()
		case <-done:
		}
	}()
	go func() {
		if err := s.config.loopback.serve(s.aggregator.GenericAPIServer.Handler); err != nil {
			klog.ErrorS(err, "In-process connections stopped")
		}
	}()
	s.openAPI.preparing.Store(true)
	prepared, err := s.aggregator.PrepareRun()
	s.openAPI.preparing.Store(false)
	if err == nil {
		go s.openAPI.awaitV3Merged(serving, s.GenericAPIServer.Handler.NonGoRestfulMux)
		err = prepared.Run(serving)
	}
	s.stopComponents()
	s.waitComponents(componentsStopTimeout)
	return err
}

// componentsStopTimeout bounds the wait for the components to stop
// (kube-controller-manager's controllers get 10 s).
const componentsStopTimeout = 15 * time.Second

func (s *Server) waitComponents(timeout time.Duration) {
	stopped := make(chan struct{})
	go func() {
		s.componentsRunning.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(timeout):
		klog.InfoS("Components still running after the server stopped", "timeout", timeout)
	}
}

// Close releases the store and the temporary state directory without
// waiting for Run to return: for a process that exits once requests have
// drained. Run does the same when it returns.
func (s *Server) Close() { s.config.release() }

// WaitReady blocks until /readyz answers 200 (every post-start hook done:
// bootstrap objects created, informers synced, --load applied, the reset
// baseline taken), ctx ends, or the CRDs or --load manifests failed to
// apply.
func (s *Server) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var code int
		res := s.client.CoreV1().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code)
		if err := s.failed.Load(); err != nil {
			return *err
		}
		if code == http.StatusOK && res.Error() == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if err := res.Error(); err != nil {
				return fmt.Errorf("server not ready: %w (last /readyz: %v)", ctx.Err(), err)
			}
			return errors.New("server not ready: " + ctx.Err().Error())
		case <-tick.C:
		}
	}
}
