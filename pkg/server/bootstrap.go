package server

import (
	"context"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controlplane/controller/clusterauthenticationtrust"
	"k8s.io/kubernetes/pkg/controlplane/controller/defaultservicecidr"
	"k8s.io/kubernetes/pkg/controlplane/controller/kubernetesservice"
	"k8s.io/kubernetes/pkg/controlplane/controller/systemnamespaces"
	"k8s.io/kubernetes/pkg/controlplane/reconcilers"
)

// systemNamespaces are the namespaces of a fresh cluster.
var systemNamespaces = []string{metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease, metav1.NamespaceDefault}

// kubernetesServiceInterval is how often the `kubernetes` Service and its
// endpoints are reconciled (kube-apiserver: 10s).
const kubernetesServiceInterval = 10 * time.Second

// addBootstrap installs the controllers that make a fresh cluster's objects,
// each upstream's (pkg/controlplane/controller): system namespaces, the
// default ServiceCIDR, the `kubernetes` Service with its endpoints, and the
// extension-apiserver-authentication ConfigMap. The last hook holds
// readiness until the namespaces and the Service exist, so a client that saw
// /readyz succeed never finds `default` missing.
func (s *Server) addBootstrap() error {
	c := s.config
	informers := c.Informer
	namespaces := systemnamespaces.NewController(systemNamespaces, s.client, informers.Core().V1().Namespaces())
	if err := s.GenericAPIServer.AddPostStartHook("start-system-namespaces-controller", func(ctx genericapiserver.PostStartHookContext) error {
		go namespaces.Run(ctx.Done())
		return nil
	}); err != nil {
		return err
	}

	// Upstream's Start blocks until the default ServiceCIDR exists, at least
	// one 100 ms informer poll; mockernetes-bootstrap creates that object at
	// once and waits for a ClusterIP from it, so the controller (which then
	// only sets its Ready condition) runs aside, once the object exists:
	// started before, it would create the object too, find it already there
	// and report an empty ServiceCIDR as inconsistent in a Warning event.
	serviceCIDRCreated := make(chan struct{})
	if err := s.GenericAPIServer.AddPostStartHook("start-kubernetes-service-cidr-controller", func(ctx genericapiserver.PostStartHookContext) error {
		go func() {
			select {
			case <-serviceCIDRCreated:
			case <-ctx.Done():
				return
			}
			defaultservicecidr.NewController(c.Registry.ServiceClusterIPRange, net.IPNet{}, s.client).Start(ctx)
		}()
		return nil
	}); err != nil {
		return err
	}

	if err := s.GenericAPIServer.AddPostStartHook("start-cluster-authentication-info-controller", func(ctx genericapiserver.PostStartHookContext) error {
		// As kube-apiserver's hook: the CA files are followed for changes,
		// and the published ConfigMap follows them.
		trust := clusterauthenticationtrust.NewClusterAuthenticationTrustController(c.AuthTrust, s.client)
		for name, ca := range map[string]dynamiccertificates.CAContentProvider{"client CA": c.AuthTrust.ClientCA, "request-header CA": c.AuthTrust.RequestHeaderCA} {
			if ca == nil {
				continue
			}
			ca.AddListener(trust)
			if runner, ok := ca.(dynamiccertificates.ControllerRunner); ok {
				if err := runner.RunOnce(ctx); err != nil {
					klog.ErrorS(err, name)
				}
				go runner.Run(ctx, 1)
			}
		}
		go trust.Run(ctx, 1)
		return nil
	}); err != nil {
		return err
	}

	if err := s.GenericAPIServer.AddPostStartHook("mockernetes-bootstrap-policy", s.bootstrapPolicy); err != nil {
		return err
	}

	_, publicPort, err := c.Generic.SecureServing.HostPort()
	if err != nil {
		return fmt.Errorf("listener address: %w", err)
	}
	endpoints := reconcilers.NewEndpointsAdapter(s.client.CoreV1(), s.client.DiscoveryV1())
	services := informers.Core().V1().Services()
	kubernetesService := kubernetesservice.New(kubernetesservice.Config{
		PublicIP:           c.AdvertiseAddress,
		EndpointReconciler: reconcilers.NewMasterCountEndpointReconciler(1, endpoints),
		EndpointInterval:   kubernetesServiceInterval,
		ServiceIP:          c.ServiceIP,
		ServicePort:        443,
		PublicServicePort:  publicPort,
	}, s.client, services)
	namespaceSynced := informers.Core().V1().Namespaces().Informer().HasSynced
	serviceSynced := services.Informer().HasSynced

	// kube-apiserver's controller creates the Service only after /readyz
	// succeeds (polling every 100 ms); here the same reconcile runs before,
	// and readiness waits for it.
	return s.GenericAPIServer.AddPostStartHook("mockernetes-bootstrap", func(ctx genericapiserver.PostStartHookContext) error {
		if !cache.WaitForCacheSync(ctx.Done(), namespaceSynced, serviceSynced) {
			return fmt.Errorf("bootstrap: informers did not sync")
		}
		poll := func(cond wait.ConditionWithContextFunc) error {
			return wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, time.Minute, true, cond)
		}
		// The namespaces the system namespaces controller creates, made at
		// once instead of after its informer's first 100 ms poll.
		for _, ns := range systemNamespaces {
			if err := poll(func(ctx context.Context) (bool, error) {
				_, err := s.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
				return err == nil || apierrors.IsAlreadyExists(err), nil
			}); err != nil {
				return fmt.Errorf("bootstrap: namespace %s: %w", ns, err)
			}
		}
		var last error
		if err := poll(func(ctx context.Context) (bool, error) {
			// The object upstream's default ServiceCIDR controller creates.
			_, last = s.client.NetworkingV1().ServiceCIDRs().Create(ctx, &networkingv1.ServiceCIDR{
				ObjectMeta: metav1.ObjectMeta{Name: defaultservicecidr.DefaultServiceCIDRName},
				Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{c.Registry.ServiceClusterIPRange.String()}},
			}, metav1.CreateOptions{})
			return last == nil || apierrors.IsAlreadyExists(last), nil
		}); err != nil {
			return fmt.Errorf("bootstrap: default ServiceCIDR: %v (last error: %v)", err, last)
		}
		close(serviceCIDRCreated)
		if err := poll(func(context.Context) (bool, error) {
			last = kubernetesService.UpdateKubernetesService(true)
			return last == nil, nil
		}); err != nil {
			return fmt.Errorf("bootstrap: kubernetes service: %v (last error: %v)", err, last)
		}
		go wait.NonSlidingUntil(func() {
			if err := kubernetesService.UpdateKubernetesService(false); err != nil {
				klog.ErrorS(err, "unable to sync kubernetes service")
			}
		}, kubernetesServiceInterval, ctx.Done())
		return nil
	})
}
