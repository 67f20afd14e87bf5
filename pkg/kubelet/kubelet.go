// Package kubelet simulates the kubelets of a cluster: it registers nodes
// with realistic status and keeps their leases, and runs the pods bound to
// them through the lifecycle a kubelet reports through pods/status:
// Pending with containers waiting in ContainerCreating, then Running with
// every container started and ready (after its readiness probe's initial
// delay), pod IPs, and the conditions PodReadyToStartContainers, Initialized,
// ContainersReady, Ready; the events Pulling, Pulled, Created, Started.
// Pods that are not always restarted run to completion. Deleted pods'
// containers are stopped, then the pods removed. The kubelets' HTTP API
// (logs, exec, attach, port-forward, stats) is served in process. Nothing
// runs containers.
package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	kubecontainer "k8s.io/kubernetes/pkg/kubelet/container"
	"k8s.io/kubernetes/pkg/util/parsers"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/noderegistration"
	"github.com/mockernetes/mockernetes/pkg/pipe"
	"github.com/mockernetes/mockernetes/pkg/settle"
)

// Config is the simulated cluster's nodes.
type Config struct {
	Nodes []clusterconfig.NodeSpec
	// KubeletVersion is reported in each node's status (v1.37.2).
	KubeletVersion string
	// Logs receives what the containers print (served as pods/log).
	Logs *Logs
	// Rules choose pod behaviours (annotations override them).
	Rules []clusterconfig.Rule
	// Tracker, if set, sees the kubelet's work for settle.
	Tracker *settle.Tracker
	// TimeScale multiplies every simulated duration (sleeps, start and
	// ready delays, back-offs, exit-after, honored grace periods); 0 or 1
	// leaves them as given.
	TimeScale float64
	// Dial connects to the addresses port-forward rules name (through the
	// server's egress gate, which refuses the simulation's own).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// AllowLocalExec lets exec rules run local commands.
	AllowLocalExec bool
	// Binding, if set, says whether the in-process scheduler is still in
	// a pod's binding cycle. The kubelet takes the pod up after it, as a
	// real kubelet, a watch and a pod sandbox behind, always does: the
	// scheduler's Scheduled event comes before the kubelet's first.
	Binding func(types.UID) bool
}

// bindingPoll is how soon the kubelet looks again at a pod that the
// scheduler is still binding (the rest of its binding cycle takes
// microseconds).
const bindingPoll = time.Millisecond

// Kubelet runs the simulated nodes.
type Kubelet struct {
	config  Config
	version string
	client  kubernetes.Interface
	// registrar registers the nodes and renews their leases.
	registrar *noderegistration.Registrar
	pods      corelisters.PodLister
	// configMaps and secrets are what pods' volumes and environment name;
	// waiting, the pods waiting for one.
	configMaps corelisters.ConfigMapLister
	secrets    corelisters.SecretLister
	waiting    waiters
	// services give the containers' service variables.
	services corelisters.ServiceLister
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	// events are the broadcasters of the nodes' events, one per node.
	events *nodeEvents
	// written follows the events until they are written (for settle).
	written *settle.Events
	// set is the simulated nodes in force (replaced by SetNodes).
	set atomic.Pointer[nodeSet]

	// timeScale is the time scale in force (float64 bits; 0: 1).
	timeScale atomic.Uint64
	// rules are the pod behaviour rules in force (replaced at run time
	// through the admin API).
	rules atomic.Pointer[[]clusterconfig.Rule]

	// ips are the pods' addresses.
	ips *ipam
	// scratch is what containers wrote.
	scratch *scratch
	// sessions are attached sessions that ended their container.
	sessions sessions
	// listener takes the in-process connections to the kubelets' port.
	listener *pipe.Listener

	mu sync.Mutex
	// since holds exact times of what the status records to the second:
	// when a pod was accepted ("<uid>") and a container run started
	// ("<uid>/<container>/<run>"), so that sub-second delays hold.
	// Keyed by pod UID, then by the rest of the key: a pod's times go
	// with it at once.
	since map[types.UID]map[string]time.Time
	ready atomic.Bool
}

// behaviourOf is container c's behaviour under the rules in force, its
// durations scaled by the time scale. A command parseCommand does not know
// is played by the simulated shell (program), unless the container reads
// its stdin (a session drives it then).
func (k *Kubelet) behaviourOf(ctx context.Context, pod *corev1.Pod, c corev1.Container) behaviour {
	p, ok := parseCommand(c)
	if !ok && !c.Stdin {
		p, ok = k.program(ctx, pod, &c)
	}
	return behaviourWith(pod, c, k.Rules(), p, ok).scaled(k.TimeScale())
}

// TimeScale is the time scale in force (1: durations as given).
func (k *Kubelet) TimeScale() float64 {
	if s := math.Float64frombits(k.timeScale.Load()); s > 0 {
		return s
	}
	return 1
}

// SetTimeScale changes the time scale (a value out of (0, MaxTimeScale]
// is ignored); pods take it at their next step.
func (k *Kubelet) SetTimeScale(scale float64) {
	if scale > 0 && scale <= clusterconfig.MaxTimeScale {
		k.timeScale.Store(math.Float64bits(scale))
	}
}

// scale is d under the time scale.
func (k *Kubelet) scale(d time.Duration) time.Duration { return scaled(d, k.TimeScale()) }

// workers is how many pods are synced at once: a status write waits for
// the API server, and each real node syncs its pods on its own.
const workers = 16

// New registers the kubelet's informers on factory (start it afterwards).
func New(c Config, client kubernetes.Interface, factory informers.SharedInformerFactory) (*Kubelet, error) {
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	k := &Kubelet{
		config:    c,
		version:   c.KubeletVersion,
		client:    client,
		registrar: noderegistration.New(client, c.KubeletVersion),
		pods:      factory.Core().V1().Pods().Lister(),
		// What pods' volumes and environment name (kube-controller-
		// manager's informers have them already).
		configMaps: factory.Core().V1().ConfigMaps().Lister(),
		secrets:    factory.Core().V1().Secrets().Lister(),
		services:   factory.Core().V1().Services().Lister(),
		synced:     factory.Core().V1().Pods().Informer().HasSynced,
		written:    c.Tracker.Events("kubelet"),
		queue: settle.Queue(c.Tracker, "kubelet", workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "kubelet"})),
		events:   newNodeEvents(),
		ips:      newIPAM(),
		scratch:  newScratch(),
		sessions: sessions{ended: map[types.UID]map[string]int32{}},
		listener: pipe.NewListener(kubeletAddr{}),
		since:    map[types.UID]map[string]time.Time{},
		waiting:  waiters{byNS: map[string]map[string]int{}},
	}
	if err := k.checkLocalExec(c.Rules); err != nil {
		return nil, err
	}
	rules := append([]clusterconfig.Rule(nil), c.Rules...)
	k.rules.Store(&rules)
	k.SetTimeScale(c.TimeScale)
	k.set.Store(k.newNodeSet(c.Nodes))
	enqueue := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && k.owns(p) {
			k.holdIP(p)
			if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
				k.queue.Add(key)
			}
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		// However a pod goes (removed here, or force-deleted by a client),
		// its logs and times go with it.
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				k.config.Logs.Forget(p.UID)
				k.forget(p.UID)
				k.ips.release(p.UID)
				k.forgetSessions(p.UID)
				k.scratch.forget(p.UID)
				k.waiting.done(p.Namespace, p.Name)
				// A static pod's mirror pod is created again by its
				// node's kubelet.
				if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror && k.owns(p) {
					k.queue.Add(mirrorPodsKey + p.Spec.NodeName)
				}
			}
		},
	}); err != nil {
		return nil, err
	}
	// A ConfigMap or Secret created or changed wakes the pods of its
	// namespace that wait for one.
	wake := func(obj any) {
		if m, err := meta.Accessor(obj); err == nil {
			for _, key := range k.waiting.keys(m.GetNamespace()) {
				k.queue.Add(key)
			}
		}
	}
	for _, informer := range []cache.SharedIndexInformer{factory.Core().V1().ConfigMaps().Informer(), factory.Core().V1().Secrets().Informer()} {
		if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: wake, UpdateFunc: func(_, obj any) { wake(obj) }}); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// holdIP keeps the address book in step with what a pod reports: a pod
// that completed frees its address (its sandbox is gone), one that reports
// an address the kubelet did not give out (restored, or run before a
// restart) holds it.
func (k *Kubelet) holdIP(p *corev1.Pod) {
	switch {
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		k.ips.release(p.UID)
	case p.Status.PodIP != "" && !p.Spec.HostNetwork:
		k.ips.reserve(p.Spec.NodeName, k.nodes().index[p.Spec.NodeName], p)
	}
}

func (k *Kubelet) owns(p *corev1.Pod) bool {
	_, ok := k.nodes().index[p.Spec.NodeName]
	return ok
}

// Rules returns the pod behaviour rules in force.
func (k *Kubelet) Rules() []clusterconfig.Rule { return *k.rules.Load() }

// SetRules replaces the pod behaviour rules; pods already running keep
// what they did until their next step.
func (k *Kubelet) SetRules(rules []clusterconfig.Rule) error {
	if err := (clusterconfig.File{PodBehaviours: rules}).Validate(); err != nil {
		return err
	}
	if err := k.checkLocalExec(rules); err != nil {
		return err
	}
	rules = append([]clusterconfig.Rule(nil), rules...)
	k.rules.Store(&rules)
	return nil
}

// checkLocalExec refuses rules that run local commands unless allowed.
func (k *Kubelet) checkLocalExec(rules []clusterconfig.Rule) error {
	if where, ok := clusterconfig.LocalExec(rules); ok && !k.config.AllowLocalExec {
		return fmt.Errorf("%s: running local commands needs a server started with --allow-local-exec", where)
	}
	return nil
}

// Ready reports whether the nodes are registered and pods are being run.
func (k *Kubelet) Ready() bool { return k.ready.Load() }

// Run registers the nodes and runs their pods until ctx ends.
func (k *Kubelet) Run(ctx context.Context) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer k.queue.ShutDown()
	go func() {
		if err := k.serve(ctx); err != nil {
			utilruntime.HandleErrorWithContext(ctx, err, "The kubelets' server stopped")
		}
	}()
	sink := k.written.Sink(&typedcorev1.EventSinkImpl{Interface: k.client.CoreV1().Events("")})
	k.events.start(sink)
	defer k.events.stop()
	// Registration waits for the kube-node-lease namespace, which the
	// server creates as it starts.
	var last error
	if err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		last = k.registrar.Register(ctx, k.Nodes())
		return last == nil, nil
	}); err != nil {
		return last
	}
	go k.registrar.Heartbeat(ctx, k.Nodes)
	// The pods' informer may be the controllers' (started once they are
	// built): polled every 5 ms, not client-go's 100 ms, so that readiness
	// follows its sync at once.
	if err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(context.Context) (bool, error) {
		return k.synced(), nil
	}); err != nil {
		return nil // ctx ended
	}
	for range workers {
		go func() {
			for k.next(ctx) {
			}
		}()
	}
	k.ready.Store(true)
	<-ctx.Done()
	return nil
}

func (k *Kubelet) next(ctx context.Context) bool {
	key, quit := k.queue.Get()
	if quit {
		return false
	}
	defer k.queue.Done(key)
	again, err := k.sync(ctx, key)
	switch {
	case err != nil:
		if !apierrors.IsConflict(err) {
			klog.FromContext(ctx).V(2).Info("Pod sync failed, retrying", "pod", key, "err", err)
		}
		k.queue.AddRateLimited(key)
	case again > 0:
		k.queue.Forget(key)
		k.queue.AddAfter(key, again)
	default:
		k.queue.Forget(key)
	}
	return true
}

// mirrorPodsKey, followed by a node's name, is the work of creating that
// node's missing mirror pods (no pod's key starts with a space).
const mirrorPodsKey = " mirror pods of "

// sync moves a pod one step through its lifecycle and says when to look
// again (0: when it changes).
func (k *Kubelet) sync(ctx context.Context, key string) (time.Duration, error) {
	if node, ok := strings.CutPrefix(key, mirrorPodsKey); ok {
		set := k.nodes()
		if i, ok := set.index[node]; ok {
			return 0, k.registrar.MirrorPods(ctx, set.specs[i])
		}
		return 0, nil // the node went
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := k.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !k.owns(pod)) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	switch {
	case pod.DeletionTimestamp != nil:
		var exitCode int32 // heeded SIGTERM
		if honorsGracePeriod(pod, k.Rules()) {
			// From when the deletion was seen: deletionTimestamp is
			// recorded to the second.
			grace := k.scale(time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, 0)) * time.Second)
			seen, _ := k.first(string(pod.UID) + "/deleting")
			if wait := time.Until(seen.Add(grace)); wait > 0 {
				return wait, nil
			}
			if grace > 0 {
				exitCode = 137 // killed when the grace period ended
			}
		}
		return 0, k.kill(ctx, pod, exitCode)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return 0, nil
	case pod.Status.StartTime == nil:
		if k.config.Binding != nil && k.config.Binding(pod.UID) {
			return bindingPoll, nil
		}
		return 0, k.accept(ctx, pod)
	default:
		return k.step(ctx, pod)
	}
}

// kill ends a deleted pod's containers and removes it, as the kubelet
// does: the running containers stop first (Killing, then terminated with
// exitCode: 0 for a container that heeded SIGTERM, 137 for one killed when
// its grace period ended), the pod reports them and Ready False, and only
// then is it removed (grace 0).
func (k *Kubelet) kill(ctx context.Context, pod *corev1.Pod, exitCode int32) error {
	p := pod.DeepCopy()
	now := metav1.Now()
	stopped := false
	// The containers first, then the sidecars and ephemeral containers, as
	// the kubelet stops them.
	all := make([]*corev1.ContainerStatus, 0, len(p.Status.ContainerStatuses)+len(p.Status.InitContainerStatuses)+len(p.Status.EphemeralContainerStatuses))
	for i := range p.Status.ContainerStatuses {
		all = append(all, &p.Status.ContainerStatuses[i])
	}
	for i := range p.Status.InitContainerStatuses {
		all = append(all, &p.Status.InitContainerStatuses[i])
	}
	for i := range p.Status.EphemeralContainerStatuses {
		all = append(all, &p.Status.EphemeralContainerStatuses[i])
	}
	for _, s := range all {
		if s.State.Running == nil {
			continue
		}
		var about runtime.Object = pod
		if c := containerSpec(pod, s.Name); c != nil {
			if ref, err := kubecontainer.GenerateContainerRef(pod, c); err == nil {
				about = ref
			}
		}
		k.recorder(pod.Spec.NodeName).Eventf(about, corev1.EventTypeNormal, "Killing", "Stopping container %s", s.Name)
		stop(s, exitCode, now)
		stopped = true
	}
	for _, s := range all {
		k.config.Logs.End(pod.UID, s.Name, s.RestartCount)
	}
	if stopped {
		if err := k.derivePodStatus(pod, p); err != nil {
			return err
		}
		_, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// accept is the kubelet's first status: host IP, start time, containers
// waiting in ContainerCreating (PodInitializing, all of them, in a pod with
// init containers).
func (k *Kubelet) accept(ctx context.Context, pod *corev1.Pod) error {
	p := pod.DeepCopy()
	now := metav1.Now()
	ip := clusterconfig.HostIP(k.nodes().index[pod.Spec.NodeName])
	p.Status.Phase = corev1.PodPending
	p.Status.StartTime = &now
	p.Status.HostIP = ip
	p.Status.HostIPs = []corev1.HostIP{{IP: ip}}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	p.Status.InitContainerStatuses = statuses(pod.Spec.InitContainers, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}})
	if len(pod.Spec.InitContainers) > 0 {
		waiting.Waiting.Reason = "PodInitializing"
	}
	p.Status.ContainerStatuses = statuses(pod.Spec.Containers, waiting)
	if err := k.derivePodStatus(pod, p); err != nil {
		return err
	}
	if _, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return err
	}
	k.mark(string(pod.UID), time.Now())
	return nil
}

func (k *Kubelet) forget(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.since, uid)
}

// sinceKey splits a key ("<uid>" or "<uid>/<what>") for since.
func sinceKey(key string) (types.UID, string) {
	uid, rest, _ := strings.Cut(key, "/")
	return types.UID(uid), rest
}

// reported is false the first time key is asked for, true after.
func (k *Kubelet) reported(key string) bool {
	_, before := k.first(key)
	return before
}

// first returns when key was first asked for, and whether before now.
func (k *Kubelet) first(key string) (time.Time, bool) {
	uid, rest := sinceKey(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	t, ok := k.since[uid][rest]
	if !ok {
		t = time.Now()
		k.setSince(uid, rest, t)
	}
	return t, ok
}

// probeFailure is how the kubelet words a failed probe of each kind.
func probeFailure(p *corev1.Probe) string {
	switch {
	case p.HTTPGet != nil:
		return "HTTP probe failed with statuscode: 503"
	case p.TCPSocket != nil:
		return fmt.Sprintf("dial tcp: connect: connection refused (port %s)", p.TCPSocket.Port.String())
	case p.Exec != nil:
		return "command exited with non-zero status 1"
	default:
		return "probe failed"
	}
}

// mark and when keep the exact times behind the status's seconds.
func (k *Kubelet) mark(key string, t time.Time) {
	uid, rest := sinceKey(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.setSince(uid, rest, t)
}

// setSince records a time; k.mu is held.
func (k *Kubelet) setSince(uid types.UID, rest string, t time.Time) {
	times := k.since[uid]
	if times == nil {
		times = map[string]time.Time{}
		k.since[uid] = times
	}
	times[rest] = t
}

func (k *Kubelet) when(key string, recorded time.Time) time.Time {
	uid, rest := sinceKey(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	if t, ok := k.since[uid][rest]; ok {
		return t
	}
	return recorded
}

// step moves every container one step along its behaviour (start, become
// ready, exit, back off, restart; fail to pull) and derives the pod's phase
// and conditions, as the kubelet's sync loop does; it says when the next
// step is due.
func (k *Kubelet) step(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	p := pod.DeepCopy()
	now := time.Now()
	recorder := k.recorder(pod.Spec.NodeName)
	var events []func()
	// Each about one container, as the kubelet's: the reference names
	// it (spec.containers{app}), so that alike events of two containers
	// stay two.
	var event eventFunc = func(c corev1.Container, kind, reason, format string, args ...any) {
		var about runtime.Object = pod
		if ref, err := kubecontainer.GenerateContainerRef(pod, &c); err == nil {
			about = ref
		}
		events = append(events, func() { recorder.Eventf(about, kind, reason, format, args...) })
	}
	pull := func(c corev1.Container) {
		if k.pulls(pod.Spec.NodeName, c) {
			event(c, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
			event(c, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in 0s (0s including waiting). Image size: 0 bytes.", c.Image)
		} else {
			event(c, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine and can be accessed by the pod", c.Image)
		}
	}
	var next time.Duration
	due := func(at time.Time) {
		if d := at.Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}

	// Until its volumes are set up the kubelet makes no sandbox and starts
	// no container: it says why, about the pod, and tries again.
	refs := k.newRefs(ctx, pod.Namespace)
	var retry time.Duration // while it waits for a ConfigMap or Secret
	waits := func() time.Duration {
		if retry == 0 {
			retry = max(k.scale(k.waiting.wait(pod.Namespace, pod.Name)), time.Millisecond)
		}
		return retry
	}
	defer func() {
		if retry == 0 {
			k.waiting.done(pod.Namespace, pod.Name)
		}
	}()
	if !sandboxed(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		volume, failure, err := k.mountFailure(refs, pod)
		if err != nil {
			return 0, err
		}
		if failure != nil {
			recorder.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed for volume %q : %v", volume, failure)
			return waits(), nil
		}
		if err := sandboxFailure(pod); err != nil {
			recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			return waits(), nil
		}
		// The sandbox is made now, with its DNS configuration: the
		// configurer warns of what the resolver's limits leave out.
		k.podDNS(ctx, pod, recorder)
	}
	// startable pulls c's image and makes its config: a container whose
	// config cannot be made (its environment names what is not there)
	// waits, and is tried again.
	startable := func(c corev1.Container, s *corev1.ContainerStatus) (bool, error) {
		pull(c)
		failure, err := k.configFailure(refs, pod, &c)
		if err != nil || failure == nil {
			return err == nil, err
		}
		event(c, corev1.EventTypeWarning, "Failed", "Error: %v", failure)
		s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: failure.Error()}}
		due(now.Add(waits()))
		return false, nil
	}
	// crashed: c exited as term and is to be started again after its
	// back-off (CrashLoopBackOff).
	crashed := func(c corev1.Container, s *corev1.ContainerStatus, b behaviour, term *corev1.ContainerStateTerminated) {
		backoff := b.backoffFor(s.RestartCount)
		k.mark(fmt.Sprintf("%s/%s/%d/ended", pod.UID, c.Name, s.RestartCount), now)
		s.LastTerminationState = corev1.ContainerState{Terminated: term}
		s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: backoffMessage(backoff, c.Name, pod)}}
		event(c, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
		due(now.Add(backoff))
	}
	// restarts: c's back-off has ended, and it is started again now (its
	// image pulled again if its policy says so, its config made again:
	// what it names may be gone since).
	restarts := func(c corev1.Container, s *corev1.ContainerStatus, b behaviour) (bool, error) {
		if last := s.LastTerminationState.Terminated; last != nil {
			ended := k.when(fmt.Sprintf("%s/%s/%d/ended", pod.UID, c.Name, s.RestartCount), last.FinishedAt.Time)
			if restartAt := ended.Add(b.backoffFor(s.RestartCount)); now.Before(restartAt) {
				due(restartAt)
				return false, nil
			}
		}
		return startable(c, s)
	}
	// starts: c, waiting in its turn (which came at since), starts now:
	// its image pulled, its start delay over and its config made. An
	// image that cannot be pulled leaves it in ErrImagePull, then in
	// ImagePullBackOff.
	starts := func(c corev1.Container, s *corev1.ContainerStatus, b behaviour, since time.Time) (bool, error) {
		switch w := s.State.Waiting; {
		case w == nil || w.Reason == "ImagePullBackOff":
			return false, nil
		case w.Reason == "ErrImagePull":
			s.State = backOffPull(c, event)
			return false, nil
		case b.pullFails:
			s.State = failPull(c, event)
			due(now.Add(b.backoff))
			return false, nil
		}
		if start := since.Add(b.startDelay); b.startDelay > 0 && now.Before(start) {
			due(start)
			return false, nil
		}
		return startable(c, s)
	}
	// runs moves running container c along: it exits when its behaviour
	// says (then is started again after a back-off if its restart policy
	// says so, or stays terminated), and becomes ready after its ready
	// delay unless it never does.
	runs := func(c corev1.Container, s *corev1.ContainerStatus, b behaviour) {
		startedAt := k.when(fmt.Sprintf("%s/%s/%d", pod.UID, c.Name, s.RestartCount), s.State.Running.StartedAt.Time)
		if b.exits {
			if exitAt := startedAt.Add(b.exitAfter); now.Before(exitAt) {
				due(exitAt)
			} else {
				term := &corev1.ContainerStateTerminated{ExitCode: b.exitCode, Reason: b.terminatedReason(),
					StartedAt: s.State.Running.StartedAt, FinishedAt: metav1.NewTime(now), ContainerID: s.ContainerID}
				k.config.Logs.End(pod.UID, c.Name, s.RestartCount)
				s.Ready, s.Started = false, ptr.To(false)
				if podutil.ContainerShouldRestart(c, pod.Spec, b.exitCode) {
					crashed(c, s, b, term)
				} else {
					s.State = corev1.ContainerState{Terminated: term}
				}
				return
			}
		}
		if b.neverReady && c.ReadinessProbe != nil && now.Sub(startedAt) < time.Second && s.RestartCount == 0 && !k.reported(fmt.Sprintf("%s/%s/unhealthy", pod.UID, c.Name)) {
			event(c, corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: %s", probeFailure(c.ReadinessProbe))
		}
		if !s.Ready && !b.neverReady {
			if readyAt := startedAt.Add(b.readyDelay); now.Before(readyAt) {
				due(readyAt)
			} else {
				s.Ready = true
			}
		}
	}

	// Init containers run one after the other, each to its end (at once
	// unless its command or behaviour says otherwise), each pulled and
	// started in its turn as the containers are (its start delay counts
	// from its turn); sidecars (restartable init containers) start in
	// their turn and run beside the containers until the pod ends, ready
	// after their ready delay, and are started again after a back-off
	// whenever they exit. One that fails is started again after a
	// back-off (Init:CrashLoopBackOff) unless the pod is never restarted:
	// the pod has failed then. The containers wait for them all.
	for i, c := range pod.Spec.InitContainers {
		s := &p.Status.InitContainerStatuses[i]
		sidecar := podutil.IsRestartableInitContainer(&c)
		if !sidecar && initDone(c, *s) {
			continue // it ran
		}
		if s.State.Terminated != nil {
			break // it failed, not to be restarted: so has the pod (or the pod ended)
		}
		b := k.behaviourOf(ctx, pod, c)
		if w := s.State.Waiting; w != nil {
			if w.Reason == "CrashLoopBackOff" {
				ok, err := restarts(c, s, b)
				if err != nil {
					return 0, err
				}
				if !ok {
					if sidecar {
						continue // it started once: the ones after it went on
					}
					break
				}
			} else {
				turn, _ := k.first(fmt.Sprintf("%s/%s/turn", pod.UID, c.Name))
				ok, err := starts(c, s, b, turn)
				if err != nil {
					return 0, err
				}
				if !ok {
					break // the next ones wait for it
				}
			}
			k.begin(pod, c, s, now, b.logs, event)
			s.Started = ptr.To(true)
		}
		if sidecar && s.State.Running != nil {
			runs(c, s, b) // if it exits, it backs off; the ones after it went on
			continue
		}
		if s.State.Running == nil || b.forever || b.interactive {
			break // it runs until stopped; the rest wait
		}
		startedAt := k.when(fmt.Sprintf("%s/%s/%d", pod.UID, c.Name, s.RestartCount), s.State.Running.StartedAt.Time)
		if exitAt := startedAt.Add(b.exitAfter); now.Before(exitAt) {
			due(exitAt)
			break
		}
		term := &corev1.ContainerStateTerminated{ExitCode: b.exitCode, Reason: b.terminatedReason(),
			StartedAt: s.State.Running.StartedAt, FinishedAt: metav1.NewTime(now), ContainerID: s.ContainerID}
		k.config.Logs.End(pod.UID, c.Name, s.RestartCount)
		s.Started = ptr.To(false)
		if b.exitCode == 0 {
			s.State, s.Ready = corev1.ContainerState{Terminated: term}, true
			continue
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			s.State = corev1.ContainerState{Terminated: term}
			break
		}
		crashed(c, s, b, term)
		break
	}

	// The containers start once every init container has run (every
	// sidecar has started once: one restarting does not hold them back).
	initializing := false
	for i, c := range pod.Spec.InitContainers {
		initializing = initializing || !initDone(c, p.Status.InitContainerStatuses[i])
	}
	for i, c := range pod.Spec.Containers {
		b := k.behaviourOf(ctx, pod, c)
		s := &p.Status.ContainerStatuses[i]
		if code, ended := k.endedWith(pod.UID, c.Name, s.RestartCount); b.interactive && ended {
			b.exits, b.exitCode, b.exitAfter = true, code, 0 // its attached session ended it
		}
		if runsToCompletion(pod) && !b.exits && !b.forever && !b.interactive {
			b.exits = true // run to completion, exit 0, unless told otherwise
		}
		run := func() {
			k.begin(pod, c, s, now, b.logs, event)
			s.Started = ptr.To(true)
		}
		switch {
		case s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff":
			if ok, err := restarts(c, s, b); err != nil {
				return 0, err
			} else if ok {
				run()
			}
		case s.State.Waiting != nil && !initializing:
			if ok, err := starts(c, s, b, k.when(string(pod.UID), p.Status.StartTime.Time)); err != nil {
				return 0, err
			} else if ok {
				run()
			}
		}
		if s.State.Running != nil {
			runs(c, s, b)
		}
	}

	k.stepEphemeral(ctx, pod, p, now, pull, event, due)

	// Once every container of a pod that is not restarted has ended, the
	// kubelet stops its sidecars and ephemeral containers (SIGTERM, which
	// they heed).
	if runsToCompletion(pod) && allTerminated(p.Status.ContainerStatuses) {
		for i, c := range pod.Spec.InitContainers {
			if s := &p.Status.InitContainerStatuses[i]; s.State.Running != nil {
				event(c, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.Name)
				k.config.Logs.End(pod.UID, c.Name, s.RestartCount)
				stop(s, 0, metav1.NewTime(now))
			}
		}
		for i := range p.Status.EphemeralContainerStatuses {
			if s := &p.Status.EphemeralContainerStatuses[i]; s.State.Running != nil {
				if c := containerSpec(pod, s.Name); c != nil {
					event(*c, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.Name)
				}
				k.config.Logs.End(pod.UID, s.Name, 0)
				stop(s, 0, metav1.NewTime(now))
			}
		}
	}

	if err := k.derivePodStatus(pod, p); err != nil {
		return 0, err
	}
	if !apiequality.Semantic.DeepEqual(pod.Status, p.Status) {
		if _, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			return 0, err
		}
		for _, e := range events {
			e()
		}
	}
	return next, nil
}

// initDone: init container c ran to success, or (a sidecar) has started
// to run beside the containers.
func initDone(c corev1.Container, s corev1.ContainerStatus) bool {
	if podutil.IsRestartableInitContainer(&c) {
		return s.State.Running != nil || s.RestartCount > 0
	}
	return s.State.Terminated != nil && s.State.Terminated.ExitCode == 0
}

func boolCondition(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

// stop reports a running container stopped at at with exitCode: 0 for
// one that heeded SIGTERM, 137 for one killed.
func stop(s *corev1.ContainerStatus, exitCode int32, at metav1.Time) {
	reason := "Completed"
	if exitCode != 0 {
		reason = "Error"
	}
	s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: exitCode, Reason: reason, StartedAt: s.State.Running.StartedAt, FinishedAt: at, ContainerID: s.ContainerID,
	}}
	s.Ready, s.Started = false, ptr.To(false)
}

// allTerminated: every container in statuses has ended.
func allTerminated(statuses []corev1.ContainerStatus) bool {
	for _, s := range statuses {
		if s.State.Terminated == nil {
			return false
		}
	}
	return len(statuses) > 0
}

// statuses are the containers' first statuses, every one in state.
func statuses(containers []corev1.Container, state corev1.ContainerState) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, c := range containers {
		// Not created yet: the spec's image, as the kubelet reports it until
		// the runtime names the one it pulled.
		out = append(out, corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: *state.DeepCopy(), Started: ptr.To(false)})
	}
	return out
}

// imageRef is the image as the container runtime reports it, normalized
// as the kubelet normalizes image names ("nginx" → docker.io/library/nginx:latest).
func imageRef(image string) string {
	repo, tag, digest, err := parsers.ParseImageName(image)
	switch {
	case err != nil:
		return image
	case digest != "":
		return repo + "@" + digest
	default:
		return repo + ":" + tag
	}
}

// imageID is the image's digest reference as the container runtime
// reports it: the digest the image was named by, or one made up from its
// name (the same for every pull of one name, as a registry's would be for
// one tag at one time).
func imageID(image string) string {
	repo, _, digest, err := parsers.ParseImageName(image)
	switch {
	case err != nil:
		return ""
	case digest != "":
		return repo + "@" + digest
	default:
		sum := sha256.Sum256([]byte(imageRef(image)))
		return repo + "@sha256:" + hex.EncodeToString(sum[:])
	}
}

// containerID is the runtime's ID of a container instance (one per
// restart), as the kubelet reports it: runtime://64 hex digits.
func containerID(pod types.UID, name string, restart int32) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", pod, name, restart))
	return "containerd://" + hex.EncodeToString(sum[:])
}

// setCondition sets a pod condition with upstream's transition-time rules.
func setCondition(p *corev1.Pod, t corev1.PodConditionType, status corev1.ConditionStatus, reason, message string) {
	podutil.UpdatePodCondition(&p.Status, &corev1.PodCondition{
		Type: t, Status: status, Reason: reason, Message: message, ObservedGeneration: p.Generation,
	})
}

// runsToCompletion: containers of pods that are not restarted always (a
// Job's, a `kubectl run --restart=Never`, a helm test hook) run to
// completion and exit 0 unless told otherwise; a container that reads its
// stdin runs until its attached session ends.
func runsToCompletion(pod *corev1.Pod) bool {
	return pod.Spec.RestartPolicy != corev1.RestartPolicyAlways
}

// containerSpec is pod's container or init container named name, nil if
// there is none.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			c := corev1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
			return &c
		}
	}
	return nil
}

// eventFunc records an event about a container of the pod being synced.
type eventFunc func(c corev1.Container, kind, reason, format string, args ...any)

// failPull records a pull of c's image that fails (the image is not
// there), as the kubelet's image manager reports it, and returns the
// container's state then.
func failPull(c corev1.Container, event eventFunc) corev1.ContainerState {
	event(c, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	msg := fmt.Sprintf("failed to pull and unpack image %q: %s: not found", imageRef(c.Image), imageRef(c.Image))
	event(c, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %s", c.Image, msg)
	event(c, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: msg}}
}

// backOffPull is c's state once the kubelet backs off pulling its image
// again (ImagePullBackOff).
func backOffPull(c corev1.Container, event eventFunc) corev1.ContainerState {
	event(c, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
	event(c, corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff")
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q", c.Image)}}
}

// begin starts the next run of container c (status s) now: running, with
// the image and container the runtime reports, its log, and the Created
// and Started events. s.RestartCount counts the runs that ended before it.
func (k *Kubelet) begin(pod *corev1.Pod, c corev1.Container, s *corev1.ContainerStatus, now time.Time, logs []printed, event eventFunc) {
	if last := s.LastTerminationState.Terminated; last != nil && last.ContainerID == containerID(pod.UID, c.Name, s.RestartCount) {
		s.RestartCount++ // a new run after the one that ended, on a fresh file system
		k.scratch.restarted(pod.UID, c.Name)
	}
	k.mark(fmt.Sprintf("%s/%s/%d", pod.UID, c.Name, s.RestartCount), now)
	s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now)}}
	s.Image, s.ImageID, s.ContainerID = imageRef(c.Image), imageID(c.Image), containerID(pod.UID, c.Name, s.RestartCount)
	k.config.Logs.Start(pod.UID, c.Name, s.RestartCount, now, logs...)
	event(c, corev1.EventTypeNormal, "Created", "Container created")
	event(c, corev1.EventTypeNormal, "Started", "Container started")
}
