package server

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	schedulingapiv1 "k8s.io/kubernetes/pkg/apis/scheduling/v1"
	rbacrest "k8s.io/kubernetes/pkg/registry/rbac/rest"
	schedulingrest "k8s.io/kubernetes/pkg/registry/scheduling/rest"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"
)

// replacedPostStartHooks are upstream hooks whose work bootstrapPolicy does:
// both wait a fixed second (wait.Poll) before their first attempt, which
// would be most of this server's start-up time.
var replacedPostStartHooks = []string{rbacrest.PostStartHookName, schedulingrest.PostStartHookName}

// bootstrapPolicy creates what those hooks create in a fresh cluster, from
// the same upstream data: the system PriorityClasses and the RBAC bootstrap
// policy (cluster roles and bindings, controller roles and bindings, the
// namespaced roles of kube-system and kube-public). Upstream reconciles
// against existing objects; the store here always starts empty, where
// reconciling is creating.
func (s *Server) bootstrapPolicy(ctx genericapiserver.PostStartHookContext) error {
	type create func(context.Context) error
	var creates []create
	for _, pc := range schedulingapiv1.SystemPriorityClasses() {
		creates = append(creates, func(ctx context.Context) error {
			_, err := s.client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{})
			return err
		})
	}
	for _, role := range append(bootstrappolicy.ClusterRoles(), bootstrappolicy.ControllerRoles()...) {
		creates = append(creates, func(ctx context.Context) error {
			_, err := s.client.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{})
			return err
		})
	}
	for _, binding := range append(bootstrappolicy.ClusterRoleBindings(), bootstrappolicy.ControllerRoleBindings()...) {
		creates = append(creates, func(ctx context.Context) error {
			_, err := s.client.RbacV1().ClusterRoleBindings().Create(ctx, &binding, metav1.CreateOptions{})
			return err
		})
	}
	for ns, roles := range bootstrappolicy.NamespaceRoles() {
		for _, role := range roles {
			creates = append(creates, func(ctx context.Context) error {
				_, err := s.client.RbacV1().Roles(ns).Create(ctx, &role, metav1.CreateOptions{})
				return err
			})
		}
	}
	for ns, bindings := range bootstrappolicy.NamespaceRoleBindings() {
		for _, binding := range bindings {
			creates = append(creates, func(ctx context.Context) error {
				_, err := s.client.RbacV1().RoleBindings(ns).Create(ctx, &binding, metav1.CreateOptions{})
				return err
			})
		}
	}

	// A few at a time; each retried until it exists (the namespaced roles
	// wait for kube-system and kube-public to appear).
	const workers = 8
	errs := make(chan error, len(creates))
	work := make(chan create)
	for range workers {
		go func() {
			for c := range work {
				var last error
				err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
					last = c(ctx)
					return last == nil || apierrors.IsAlreadyExists(last), nil
				})
				if err != nil {
					err = fmt.Errorf("%w (last error: %v)", err, last)
				}
				errs <- err
			}
		}()
	}
	for _, c := range creates {
		work <- c
	}
	close(work)
	for range creates {
		if err := <-errs; err != nil {
			return fmt.Errorf("bootstrap policy: %w", err)
		}
	}
	return nil
}
