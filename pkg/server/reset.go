package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/klog/v2"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/crds"
	"github.com/mockernetes/mockernetes/pkg/load"
	"github.com/mockernetes/mockernetes/pkg/storage"
)

// baseline is the cluster right after the server became ready, which a
// reset returns to: the store's key space, the simulated nodes and the pod
// behaviour rules.
type baseline struct {
	state *storage.State
	nodes []clusterconfig.NodeSpec
	rules []clusterconfig.Rule
}

// baselineCheck is the readiness check that passes once the baseline is
// taken. (Not a post-start hook: those hold /healthz too, which the
// controllers wait for.)
const baselineCheck = "mockernetes-baseline"

// addBaseline applies the --load manifests and takes the baseline once
// every other readiness check passes and the cluster has settled (default ServiceAccounts, root CA ConfigMaps,
// node leases written), so that a reset returns to a cluster as ready as a
// fresh one.
func (s *Server) addBaseline() error {
	if err := s.GenericAPIServer.AddReadyzChecks(healthz.NamedCheck(baselineCheck, func(*http.Request) error {
		if s.baseline.Load() == nil {
			return errors.New("the reset baseline is not taken yet")
		}
		return nil
	})); err != nil {
		return err
	}
	return s.GenericAPIServer.AddPostStartHook("mockernetes-start-baseline", func(ctx genericapiserver.PostStartHookContext) error {
		go func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				var code int
				s.client.CoreV1().RESTClient().Get().AbsPath("/readyz").Param("exclude", baselineCheck).Do(ctx).StatusCode(&code)
				if code == http.StatusOK {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
			if err := s.config.Load.Apply(ctx, s.config.LoopbackClientConfig()); err != nil {
				s.failed.Store(&err)
				return
			}
			if err := s.Settle(ctx, 30*time.Second); err != nil {
				klog.FromContext(ctx).Info("Taking the reset baseline of a cluster that did not settle", "err", err)
			}
			s.takeBaseline()
		}()
		return nil
	})
}

// TakeBaseline makes the cluster as it is now, once settled, what a reset
// returns to (nodes and pod behaviour rules included): for a caller that
// installs its own objects after the server was ready, as the Go library
// installs a suite's CRDs and webhooks.
func (s *Server) TakeBaseline(ctx context.Context, timeout time.Duration) error {
	if s.baseline.Load() == nil {
		return apierrors.NewServiceUnavailable("the server is not ready yet")
	}
	s.resetMu.Lock()
	defer s.resetMu.Unlock()
	if err := s.Settle(ctx, timeout); err != nil {
		return err
	}
	s.takeBaseline()
	return nil
}

func (s *Server) takeBaseline() {
	b := &baseline{state: s.config.Backend.State()}
	if s.nodes != nil {
		b.nodes, b.rules = s.nodes.kubelet.Nodes(), s.nodes.kubelet.Rules()
	}
	s.baseline.Store(b)
}

// restore makes the store st, settling first (a controller's write in
// flight would land after it), and the NodePort allocations, kept in memory
// beside the store, those of the Services restored (when the restore
// changed a Service: otherwise they already are). The caller holds
// resetMu.
//
// The components take in a restore one watch event at a time, each
// informer at its own pace, so a controller can act on a state that was
// never stored: a ReplicaSet scaled back from 4 to 2 seen before two of
// its pods are gone makes the ReplicaSet controller delete two pods the
// state keeps. So once they settled, if they wrote anything, the state is
// restored again, until they write nothing or a restore finds nothing to
// change. What other clients write meanwhile (a test's own controller
// taking in the reset) stands, as it did before. That holds for a state the
// components had settled on (the reset baseline: strict, an error if they
// keep changing it); a snapshot may hold work in progress, which they
// rightly carry on with: after restoreRounds its restore leaves them be.
func (s *Server) restore(ctx context.Context, st *storage.State, timeout time.Duration, strict bool) error {
	_ = s.Settle(ctx, timeout)
	tracker := s.config.control.tracker
	var writes int64
	for round := 0; ; round++ {
		if round > 0 && tracker.Writes() == writes {
			return nil
		}
		writes = tracker.Writes()
		rev, changed := s.config.Backend.Restore(st, restoreFirst...)
		if changed == 0 {
			return nil
		}
		if round == restoreRounds {
			if !strict {
				return nil
			}
			return apierrors.NewInternalError(fmt.Errorf("the cluster's components kept changing it: %d objects differed from the baseline after %d restores", changed, round))
		}
		if s.config.Backend.LastRevision(schema.GroupResource{Resource: "services"}) == rev {
			if err := s.resyncNodePorts(ctx); err != nil {
				return apierrors.NewInternalError(fmt.Errorf("NodePort allocations: %w", err))
			}
		}
		if err := settleError(tracker.SettleRestored(ctx, timeout)); err != nil {
			return err
		}
	}
}

// restoreRounds bounds how often restore puts the state back after the
// components changed it.
const restoreRounds = 5

// restoreFirst are the workloads whose changes a restore makes before the
// rest: their controllers then see an owner go or change before its pods
// do, rather than replacing pods of an owner that is going too.
var restoreFirst = []schema.GroupResource{
	{Group: "apps", Resource: "deployments"}, {Group: "apps", Resource: "statefulsets"},
	{Group: "apps", Resource: "daemonsets"}, {Group: "batch", Resource: "cronjobs"}, {Group: "batch", Resource: "jobs"},
	{Group: "apps", Resource: "replicasets"}, {Resource: "replicationcontrollers"},
}

// resyncNodePorts makes the NodePort allocations those of the Services in
// the store.
func (s *Server) resyncNodePorts(ctx context.Context) error {
	services, err := s.controlClient.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	alloc := s.config.Registry.NodePorts
	var allocated []int
	alloc.ForEach(func(p int) { allocated = append(allocated, p) })
	for _, p := range allocated {
		_ = alloc.Release(p)
	}
	for _, svc := range services.Items {
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				_ = alloc.Allocate(int(p.NodePort))
			}
		}
		if svc.Spec.HealthCheckNodePort != 0 {
			_ = alloc.Allocate(int(svc.Spec.HealthCheckNodePort))
		}
	}
	return nil
}

// Settle returns once the cluster is quiet (see pkg/settle), or a 504
// Timeout Status naming what is still busy.
func (s *Server) Settle(ctx context.Context, timeout time.Duration) error {
	return settleError(s.config.control.tracker.Settle(ctx, timeout))
}

// Reset brings the cluster back to its baseline: every object as it was
// when the server became ready (one new revision; open watches see the
// changes, older resourceVersions are 410 Gone), NodePort allocations,
// simulated nodes and pod behaviour rules (or those of req), no faults and
// an empty request history; then it applies req's manifests, if any. It returns once the
// components have caught up (settled within timeout).
func (s *Server) Reset(ctx context.Context, req ResetRequest, timeout time.Duration) error {
	b := s.baseline.Load()
	if b == nil {
		return apierrors.NewServiceUnavailable("the server is not ready yet: nothing to reset to")
	}
	nodes, rules := b.nodes, b.rules
	if req.PodBehaviours != nil || len(req.Nodes) > 0 {
		if s.nodes == nil {
			return apierrors.NewBadRequest("nodes and podBehaviours: no nodes are simulated (--nodes 0 or --controllers none)")
		}
		f := clusterconfig.File{Nodes: req.Nodes}
		if req.PodBehaviours != nil {
			f.PodBehaviours = *req.PodBehaviours
		}
		if err := f.Validate(); err != nil {
			return apierrors.NewBadRequest(err.Error())
		}
		if req.PodBehaviours != nil {
			rules = *req.PodBehaviours
		}
		if len(req.Nodes) > 0 {
			nodes = req.Nodes
			if cp := s.config.controlPlane; cp != nil {
				nodes = append(slices.Clip(nodes), *cp)
			}
		}
	}
	var manifests *load.Manifests
	if req.Manifests != "" {
		var err error
		if manifests, err = load.Parse([]crds.Source{{Name: "manifests", Data: []byte(req.Manifests)}}); err != nil {
			return apierrors.NewBadRequest(err.Error())
		}
	}
	s.resetMu.Lock()
	defer s.resetMu.Unlock()
	if s.nodes != nil {
		// The restored pods run by the rules they are restored with.
		if err := s.nodes.kubelet.SetRules(rules); err != nil {
			return apierrors.NewInternalError(err)
		}
	}
	if err := s.restore(ctx, b.state, timeout, true); err != nil {
		return err
	}
	// The baseline's nodes are back in the store; other nodes are
	// registered, the baseline's not asked for deleted.
	nodesChanged := s.nodes != nil && !equality.Semantic.DeepEqual(nodes, s.nodes.kubelet.Nodes())
	if nodesChanged {
		if err := s.nodes.kubelet.SetNodes(ctx, nodes); err != nil {
			return apierrors.NewInternalError(err)
		}
	}
	s.config.control.faults.Clear()
	s.config.control.history.Clear()
	if manifests != nil {
		if err := s.Settle(ctx, timeout); err != nil {
			return err
		}
		if err := manifests.Apply(ctx, s.config.LoopbackClientConfig()); err != nil {
			return apierrors.NewBadRequest("manifests: " + err.Error())
		}
		return s.Settle(ctx, timeout)
	}
	if nodesChanged {
		return s.Settle(ctx, timeout)
	}
	// restore left the cluster settled, and nothing was written since.
	return nil
}
