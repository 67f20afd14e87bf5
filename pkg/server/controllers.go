package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"

	"github.com/mockernetes/mockernetes/pkg/controllers"
	"github.com/mockernetes/mockernetes/pkg/kubelet"
	"github.com/mockernetes/mockernetes/pkg/scheduler"
	"github.com/mockernetes/mockernetes/pkg/settle"
)

// addControllers runs the selected kube-controller-manager controllers in
// this process once the preloaded CRDs are served (so that the garbage
// collector's first discovery includes them). Readiness waits for their
// informers, and, with the serviceaccount controller, for the `default`
// ServiceAccount of the system namespaces: ServiceAccount admission rejects
// pods in a namespace until it exists.
func (s *Server) addControllers(simulated *nodes) error {
	config := s.config.Controllers
	if simulated != nil && simulated.sharedWithControllers {
		config.Informers = simulated.factory
	}
	m, err := controllers.New(config)
	if err != nil {
		return err
	}
	if err := s.GenericAPIServer.AddReadyzChecks(m.HealthChecker()); err != nil {
		return err
	}
	if !s.config.Controllers.Selection.None() {
		s.health.controllers = func() error { return m.HealthChecker().Check(nil) }
	}
	if s.config.Controllers.Selection.Enabled(names.ServiceAccountController) {
		lister := s.config.Informer.Core().V1().ServiceAccounts().Lister()
		if err := s.GenericAPIServer.AddReadyzChecks(healthz.NamedCheck("mockernetes-default-serviceaccounts", func(*http.Request) error {
			for _, ns := range systemNamespaces {
				if _, err := lister.ServiceAccounts(ns).Get("default"); err != nil {
					return errors.New("no default ServiceAccount in " + ns + " yet")
				}
			}
			return nil
		})); err != nil {
			return err
		}
	}
	runNodes, err := s.addNodes(simulated)
	if err != nil {
		return err
	}
	return s.GenericAPIServer.AddPostStartHook("mockernetes-start-controllers", func(ctx genericapiserver.PostStartHookContext) error {
		s.goComponent(ctx, runNodes)
		s.goComponent(ctx, func(ctx context.Context) {
			select {
			case <-s.crdsInstalled:
			case <-ctx.Done():
				return
			}
			if err := m.Run(ctx); err != nil {
				klog.ErrorS(err, "controllers stopped")
			}
		})
		return nil
	})
}

// goComponent runs fn, a component that writes through the API
// (controllers, scheduler, kubelets), until the server stops. Run stops
// the components and waits for them before the HTTP server shuts down, so
// that none of them meets a closing server halfway through its work.
func (s *Server) goComponent(hookCtx context.Context, fn func(context.Context)) {
	ctx, cancel := context.WithCancel(s.components)
	stop := context.AfterFunc(hookCtx, cancel)
	s.componentsRunning.Add(1)
	go func() {
		defer s.componentsRunning.Done()
		defer cancel()
		defer stop()
		fn(ctx)
	}()
}

// nodes are the simulated nodes: their kubelets on the informer factory
// they share with the controllers, and kube-scheduler (nil if --controllers
// leaves it out) on its own (it watches only the pods not finished, which
// upstream builds into its factory).
type nodes struct {
	kubelet   *kubelet.Kubelet
	scheduler *scheduler.Scheduler
	factory   informers.SharedInformerFactory
	// sharedWithControllers: the controllers use factory too, and start
	// it once they are built. Upstream's controllers register their
	// handlers before they set what the handlers use (the disruption
	// controller its PDB lister), as kube-controller-manager starts its
	// informers only after building them all: an informer already running
	// would call them half built.
	sharedWithControllers bool
	tracker               *settle.Tracker
}

// newNodes prepares the simulated nodes (nil if there are none). They are
// built before the API groups: nodes/proxy is answered by their kubelets.
// close releases them if the server is never run.
func newNodes(c *Config) (*nodes, error) {
	if len(c.Kubelet.Nodes) == 0 {
		return nil, nil
	}
	// Each with its component's user agent: the field manager of its writes.
	configFor := func(component string) *restclient.Config {
		loopback := restclient.CopyConfig(c.Generic.LoopbackClientConfig)
		loopback.QPS, loopback.Burst = -1, 0
		loopback.UserAgent = userAgent(component)
		return loopback
	}
	kubeletClient, err := kubernetes.NewForConfig(configFor("kubelet"))
	if err != nil {
		return nil, err
	}
	// One informer factory for the kubelets, the controllers and
	// kube-scheduler (which sees it without finished pods, as its own
	// filtered pod informer would): one copy of every pod in memory, one
	// watch to decode, where each had its own (at fleet size the copies
	// were a fifth of the heap). Its reads carry
	// kube-controller-manager's shared informers' user agent, or the
	// kubelet's without the controllers. Without managed fields, as
	// kube-controller-manager's and kube-scheduler's informers keep them.
	informerConfig := configFor("kubelet")
	shared := !c.Controllers.Selection.None()
	if shared {
		informerConfig.UserAgent = c.Controllers.UserAgent + "/shared-informers"
	}
	informerClient, err := kubernetes.NewForConfig(informerConfig)
	if err != nil {
		return nil, err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(informerClient, 0, informers.WithTransform(controllers.TrimManagedFields))
	n := &nodes{factory: factory, sharedWithControllers: shared, tracker: c.control.tracker}
	kubeletConfig := c.Kubelet
	if c.Controllers.Selection.Scheduler() {
		config := configFor("kube-scheduler")
		client, err := kubernetes.NewForConfig(config)
		if err != nil {
			return nil, err
		}
		if n.scheduler, err = scheduler.New(scheduler.Config{Client: client, KubeConfig: config, Configuration: c.Scheduler, Tracker: c.control.tracker, Informers: factory}); err != nil {
			return nil, err
		}
		kubeletConfig.Binding = n.scheduler.Binding
	}
	if n.kubelet, err = kubelet.New(kubeletConfig, kubeletClient, factory); err != nil {
		n.close()
		return nil, err
	}
	c.inProcess.kubelet.Store(n.kubelet)
	return n, nil
}

// close releases what newNodes built, for a server that never runs.
func (n *nodes) close() {
	if n != nil && n.scheduler != nil {
		n.scheduler.Close()
	}
}

// addNodes holds readiness until the nodes are registered. The returned
// function runs them.
func (s *Server) addNodes(n *nodes) (func(context.Context), error) {
	if n == nil {
		return func(context.Context) {}, nil
	}
	if err := s.GenericAPIServer.AddReadyzChecks(healthz.NamedCheck("mockernetes-nodes", func(*http.Request) error {
		if !n.kubelet.Ready() {
			return errors.New("nodes not registered yet")
		}
		return nil
	})); err != nil {
		return nil, err
	}
	var scheduling atomic.Bool
	if n.scheduler != nil {
		s.health.scheduler = func() error {
			if !scheduling.Load() {
				return errors.New("the scheduler is not running")
			}
			return nil
		}
	}
	return func(ctx context.Context) {
		if !n.sharedWithControllers { // else the controllers start and follow it
			n.factory.Start(ctx.Done())
			go func() {
				if err := n.tracker.Factory("kubelet", n.factory, ctx.Done()); err != nil {
					klog.ErrorS(err, "Following the kubelet's informers for settle")
				}
			}()
		}
		var scheduler sync.WaitGroup
		if n.scheduler != nil {
			scheduler.Go(func() {
				scheduling.Store(true)
				defer scheduling.Store(false)
				n.scheduler.Run(ctx)
			})
		}
		if err := n.kubelet.Run(ctx); err != nil {
			klog.ErrorS(err, "simulated kubelet stopped")
		}
		scheduler.Wait()
	}, nil
}
