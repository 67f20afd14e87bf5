package server

import (
	"errors"
	"net/http"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"

	"github.com/mockernetes/mockernetes/pkg/controllers"
)

// addControllers runs the selected kube-controller-manager controllers in
// this process once the preloaded CRDs are served (so that the garbage
// collector's first discovery includes them). Readiness waits for their
// informers, and, with the serviceaccount controller, for the `default`
// ServiceAccount of the system namespaces: ServiceAccount admission rejects
// pods in a namespace until it exists.
func (s *Server) addControllers() error {
	m, err := controllers.New(s.config.Controllers)
	if err != nil {
		return err
	}
	if err := s.GenericAPIServer.AddReadyzChecks(m.HealthChecker()); err != nil {
		return err
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
	return s.GenericAPIServer.AddPostStartHook("mockernetes-start-controllers", func(ctx genericapiserver.PostStartHookContext) error {
		go func() {
			select {
			case <-s.crdsInstalled:
			case <-ctx.Done():
				return
			}
			if err := m.Run(ctx); err != nil {
				klog.ErrorS(err, "controllers stopped")
			}
		}()
		return nil
	})
}
