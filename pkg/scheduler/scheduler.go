// Package scheduler runs kube-scheduler in this process: upstream's
// scheduler (k8s.io/kubernetes/pkg/scheduler) with its default profile and
// plugins, or the profiles of a KubeSchedulerConfiguration file, built as
// cmd/kube-scheduler builds it, on the server's loopback client. Placement,
// preemption, conditions, events and messages are kube-scheduler's own.
//
// What is ours is how settle sees it: kube-scheduler's queue is not a
// workqueue, so a check looks at its active and backoff queues, the pods
// in a scheduling cycle, the failures being recorded, and (through a
// Reserve/PostBind plugin added to every profile) the binding cycles, which
// run on goroutines of their own and may wait for volumes or devices.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	upstream "k8s.io/kubernetes/pkg/scheduler"
	schedulerapi "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/latest"
	schedulerscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/validation"
	internalqueue "k8s.io/kubernetes/pkg/scheduler/backend/queue"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"github.com/mockernetes/mockernetes/pkg/settle"
)

// podMaxInUnschedulablePods is kube-scheduler's default for its deprecated
// --pod-max-in-unschedulable-pods-duration.
const podMaxInUnschedulablePods = 5 * time.Minute

// Config is what the scheduler runs on.
type Config struct {
	// Client is kube-scheduler's (its user agent names the field manager
	// of its writes); KubeConfig is the configuration it was made from.
	Client     kubernetes.Interface
	KubeConfig *restclient.Config
	// Configuration is a KubeSchedulerConfiguration (LoadFile); nil for
	// kube-scheduler's defaults.
	Configuration *schedulerapi.KubeSchedulerConfiguration
	// Tracker, if set, sees the scheduler's work for settle.
	Tracker *settle.Tracker
	// Informers, if set, is a factory shared with other in-process
	// components, which its owner starts (and settle follows): the
	// scheduler registers its informers there, sees its pods without the
	// finished ones (withoutFinishedPods), and waits for the start.
	// Otherwise it has a factory of its own, as kube-scheduler has.
	Informers informers.SharedInformerFactory
}

// LoadFile reads a KubeSchedulerConfiguration as kube-scheduler's --config
// does (any served version, defaulted) and validates it.
func LoadFile(path string) (*schedulerapi.KubeSchedulerConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj, gvk, err := schedulerscheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg, ok := obj.(*schedulerapi.KubeSchedulerConfiguration)
	if !ok {
		return nil, fmt.Errorf("%s: a %s, not a KubeSchedulerConfiguration", path, gvk.Kind)
	}
	cfg.TypeMeta.APIVersion = gvk.GroupVersion().String()
	if err := validation.ValidateKubeSchedulerConfiguration(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Scheduler is kube-scheduler, built and not yet running.
type Scheduler struct {
	sched   *upstream.Scheduler
	queue   *internalqueue.PriorityQueue
	factory informers.SharedInformerFactory
	events  events.EventBroadcaster
	// stop ends what upstream's New started (its metrics recorder, the
	// device tracker): the scheduler's life, beyond Run's.
	stop context.CancelFunc
	// failing counts failures being handled (the event and the pod's
	// condition are written after the pod is back in its queue).
	failing atomic.Int64
	binding *bindings
	tracker *settle.Tracker
	// shared: factory is Config.Informers' view, started by its owner.
	shared bool
}

// New builds the scheduler and registers its informers (on Config's
// Informers, or on a factory of its own). Close releases it if it never
// runs.
func New(c Config) (*Scheduler, error) {
	cfg := c.Configuration
	if cfg == nil {
		var err error
		if cfg, err = latest.Default(); err != nil {
			return nil, err
		}
	} else {
		cfg = cfg.DeepCopy()
	}
	binding := &bindings{uids: map[types.UID]struct{}{}}
	for i := range cfg.Profiles {
		p := &cfg.Profiles[i]
		if p.Plugins == nil {
			p.Plugins = &schedulerapi.Plugins{}
		}
		p.Plugins.Reserve.Enabled = append(p.Plugins.Reserve.Enabled, schedulerapi.Plugin{Name: settlePlugin})
		p.Plugins.PostBind.Enabled = append(p.Plugins.PostBind.Enabled, schedulerapi.Plugin{Name: settlePlugin})
	}
	written := c.Tracker.EventsWithGrace("scheduler", settle.SeriesGrace)
	broadcaster := events.NewBroadcaster(written.EventsSink(&events.EventSinkImpl{Interface: c.Client.EventsV1()}))
	recorders := func(name string) events.EventRecorderLogger {
		return written.EventsRecorder(broadcaster.NewRecorder(scheme.Scheme, name))
	}
	factory := c.Informers
	if factory != nil {
		factory = withoutFinishedPods(factory)
	} else {
		factory = upstream.NewInformerFactory(c.Client, 0, nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sched, err := upstream.New(ctx, c.Client, factory, nil, recorders,
		upstream.WithComponentConfigVersion(cfg.TypeMeta.APIVersion),
		upstream.WithKubeConfig(c.KubeConfig),
		upstream.WithProfiles(cfg.Profiles...),
		upstream.WithPercentageOfNodesToScore(cfg.PercentageOfNodesToScore),
		upstream.WithFrameworkOutOfTreeRegistry(frameworkruntime.Registry{
			settlePlugin: func(context.Context, runtime.Object, fwk.Handle) (fwk.Plugin, error) { return binding, nil },
		}),
		upstream.WithPodMaxBackoffSeconds(cfg.PodMaxBackoffSeconds),
		upstream.WithPodInitialBackoffSeconds(cfg.PodInitialBackoffSeconds),
		upstream.WithPodMaxInUnschedulablePodsDuration(podMaxInUnschedulablePods),
		upstream.WithExtenders(cfg.Extenders...),
		upstream.WithParallelism(cfg.Parallelism),
	)
	if err != nil {
		cancel()
		broadcaster.Shutdown()
		return nil, fmt.Errorf("kube-scheduler: %w", err)
	}
	queue, ok := sched.SchedulingQueue.(*internalqueue.PriorityQueue)
	if !ok {
		cancel()
		broadcaster.Shutdown()
		return nil, errors.New("kube-scheduler: its queue is not a PriorityQueue")
	}
	s := &Scheduler{sched: sched, queue: queue, factory: factory, events: broadcaster, stop: cancel, binding: binding, tracker: c.Tracker, shared: c.Informers != nil}
	failed := sched.FailureHandler
	sched.FailureHandler = func(ctx context.Context, f framework.Framework, p *framework.QueuedPodInfo, status *fwk.Status, n *fwk.NominatingInfo, start time.Time) {
		s.failing.Add(1)
		defer s.failing.Add(-1)
		failed(ctx, f, p, status, n, start)
	}
	c.Tracker.Check(s.busy)
	return s, nil
}

// busy says what the scheduler is doing, "" if nothing: pods waiting in
// its active or backoff queue, in a scheduling cycle, failing, or being
// bound. Pods it found unschedulable wait for a change in the cluster and
// are not work.
func (s *Scheduler) busy() string {
	active, backoff := len(s.queue.PodsInActiveQ()), len(s.queue.PodsInBackoffQ())
	scheduling, failing, binding := len(s.queue.InFlightPods()), s.failing.Load(), s.binding.len()
	if active+backoff+scheduling+int(failing)+binding == 0 {
		return ""
	}
	return fmt.Sprintf("scheduler: %d pod(s) queued, %d backing off, %d being scheduled, %d failing, %d being bound",
		active, backoff, scheduling, failing, binding)
}

// Run starts the informers and schedules until ctx ends, then releases
// the scheduler.
func (s *Scheduler) Run(ctx context.Context) {
	defer s.Close()
	s.events.StartRecordingToSink(ctx.Done())
	if s.shared {
		// Its owner starts the factory; polled every 5 ms, not client-go's
		// 100 ms. Once the pods synced, everything registered with them
		// was started too.
		pods := s.factory.Core().V1().Pods().Informer()
		if err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(context.Context) (bool, error) {
			return pods.HasSynced(), nil
		}); err != nil {
			return
		}
	} else {
		s.factory.Start(ctx.Done())
		defer s.factory.Shutdown()
		// Its pod informer leaves finished pods out: it does not see every
		// write of pods (the kubelet's does), so settle does not wait for it.
		go func() {
			if err := s.tracker.Factory("kube-scheduler", s.factory, ctx.Done(), &corev1.Pod{}); err != nil {
				klog.FromContext(ctx).Error(err, "Following kube-scheduler's informers for settle")
			}
		}()
	}
	for typ, synced := range s.factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			klog.FromContext(ctx).Info("kube-scheduler stopped before its informers synced", "type", typ)
			return
		}
	}
	s.sched.Run(ctx)
}

// Close releases a scheduler that is not running (Run does it itself).
func (s *Scheduler) Close() {
	s.stop()
	s.events.Shutdown()
}

// settlePlugin is the Reserve/PostBind plugin that follows binding cycles.
const settlePlugin = "MockernetesSettle"

// bindings are the pods between Reserve and the end of their binding
// cycle (PostBind or Unreserve). A set, not a counter: Unreserve is called
// on every Reserve plugin, also on those whose Reserve did not run.
type bindings struct {
	mu   sync.Mutex
	uids map[types.UID]struct{}
}

var (
	_ fwk.ReservePlugin  = &bindings{}
	_ fwk.PostBindPlugin = &bindings{}
)

func (b *bindings) Name() string { return settlePlugin }

func (b *bindings) Reserve(_ context.Context, _ fwk.CycleState, p *corev1.Pod, _ string) *fwk.Status {
	b.mu.Lock()
	b.uids[p.UID] = struct{}{}
	b.mu.Unlock()
	return nil
}

func (b *bindings) Unreserve(_ context.Context, _ fwk.CycleState, p *corev1.Pod, _ string) { b.done(p) }

func (b *bindings) PostBind(_ context.Context, _ fwk.CycleState, p *corev1.Pod, _ string) { b.done(p) }

func (b *bindings) done(p *corev1.Pod) {
	b.mu.Lock()
	delete(b.uids, p.UID)
	b.mu.Unlock()
}

// Binding says whether the pod is in a binding cycle: bound, perhaps, but
// its Scheduled event not yet recorded.
func (s *Scheduler) Binding(uid types.UID) bool { return s.binding.has(uid) }

func (b *bindings) has(uid types.UID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.uids[uid]
	return ok
}

func (b *bindings) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.uids)
}
