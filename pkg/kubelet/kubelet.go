// Package kubelet simulates the kubelets of a cluster: it registers nodes
// with realistic status and keeps their leases, and runs the pods bound to
// them through the lifecycle a kubelet reports through pods/status:
// Pending with containers waiting in ContainerCreating, then Running with
// every container started and ready (after its readiness probe's initial
// delay), pod IPs, and the conditions PodReadyToStartContainers, Initialized,
// ContainersReady, Ready; the events Pulling, Pulled, Created, Started. Pods
// of Jobs run to completion. Deleted pods are removed at once. Nothing runs
// containers.
package kubelet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// Config is the simulated cluster's nodes.
type Config struct {
	Nodes []NodeSpec
	// KubeletVersion is reported in each node's status (v1.37.2).
	KubeletVersion string
	// Logs receives what the containers print (served as pods/log).
	Logs *Logs
}

// Kubelet runs the simulated nodes.
type Kubelet struct {
	config  Config
	version string
	client  kubernetes.Interface
	pods    corelisters.PodLister
	synced  cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
	nodes   map[string]int // name → index
	events  record.EventBroadcaster
	// recorders are per node: events carry the node as their source host.
	recorders map[string]record.EventRecorder

	mu     sync.Mutex
	nextIP map[string]int
	ready  atomic.Bool
}

// New registers the kubelet's informers on factory (start it afterwards).
func New(c Config, client kubernetes.Interface, factory informers.SharedInformerFactory) (*Kubelet, error) {
	broadcaster := record.NewBroadcaster()
	k := &Kubelet{
		config:  c,
		version: c.KubeletVersion,
		client:  client,
		pods:    factory.Core().V1().Pods().Lister(),
		synced:  factory.Core().V1().Pods().Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "kubelet"}),
		nodes:     map[string]int{},
		events:    broadcaster,
		recorders: map[string]record.EventRecorder{},
		nextIP:    map[string]int{},
	}
	for i, n := range c.Nodes {
		k.nodes[n.Name] = i
		k.recorders[n.Name] = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: n.Name})
	}
	enqueue := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && k.owns(p) {
			if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
				k.queue.Add(key)
			}
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Kubelet) owns(p *corev1.Pod) bool {
	_, ok := k.nodes[p.Spec.NodeName]
	return ok
}

// Ready reports whether the nodes are registered and pods are being run.
func (k *Kubelet) Ready() bool { return k.ready.Load() }

// Run registers the nodes and runs their pods until ctx ends.
func (k *Kubelet) Run(ctx context.Context) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer k.queue.ShutDown()
	k.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.client.CoreV1().Events("")})
	defer k.events.Shutdown()
	// Registration waits for the kube-node-lease namespace, which the
	// server creates as it starts.
	var last error
	if err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		last = k.registerNodes(ctx)
		return last == nil, nil
	}); err != nil {
		return last
	}
	go k.heartbeat(ctx)
	if !cache.WaitForNamedCacheSyncWithContext(ctx, k.synced) {
		return nil
	}
	for range 4 {
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

// sync moves a pod one step through its lifecycle and says when to look
// again (0: when it changes).
func (k *Kubelet) sync(ctx context.Context, key string) (time.Duration, error) {
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
		return 0, k.kill(ctx, pod)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return 0, nil
	case pod.Status.StartTime == nil:
		return 0, k.accept(ctx, pod)
	case pod.Status.Phase == corev1.PodPending:
		return k.start(ctx, pod)
	default:
		return k.running(ctx, pod)
	}
}

// kill ends a deleted pod's containers and removes it, as the kubelet does
// once they stopped (the grace period is not waited for).
func (k *Kubelet) kill(ctx context.Context, pod *corev1.Pod) error {
	if pod.Status.Phase == corev1.PodRunning {
		for _, c := range pod.Spec.Containers {
			k.recorders[pod.Spec.NodeName].Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.Name)
		}
	}
	for _, c := range pod.Spec.Containers {
		k.config.Logs.End(pod.UID, c.Name, 0)
	}
	err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		k.config.Logs.Forget(pod.UID)
		return nil
	}
	if err == nil {
		k.config.Logs.Forget(pod.UID)
	}
	return err
}

// accept is the kubelet's first status: host IP, start time, containers
// waiting in ContainerCreating.
func (k *Kubelet) accept(ctx context.Context, pod *corev1.Pod) error {
	p := pod.DeepCopy()
	now := metav1.Now()
	hostIP := fmt.Sprintf("172.18.0.%d", k.nodes[pod.Spec.NodeName]+3)
	p.Status.Phase = corev1.PodPending
	p.Status.StartTime = &now
	p.Status.HostIP = hostIP
	p.Status.HostIPs = []corev1.HostIP{{IP: hostIP}}
	initialized := corev1.ConditionTrue
	initReason := ""
	if len(pod.Spec.InitContainers) > 0 {
		initialized, initReason = corev1.ConditionFalse, "ContainersNotInitialized"
	}
	setCondition(p, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", "")
	setCondition(p, corev1.PodInitialized, initialized, initReason, notReadyMessage("containers with incomplete status", pod.Spec.InitContainers, initialized))
	setCondition(p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", notReadyMessage("containers with unready status", pod.Spec.Containers, corev1.ConditionFalse))
	setCondition(p, corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", notReadyMessage("containers with unready status", pod.Spec.Containers, corev1.ConditionFalse))
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	p.Status.InitContainerStatuses = statuses(pod.Spec.InitContainers, func(corev1.Container) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
	})
	p.Status.ContainerStatuses = statuses(pod.Spec.Containers, func(corev1.Container) corev1.ContainerState { return waiting })
	_, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// start runs the init containers to completion and starts the containers.
func (k *Kubelet) start(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	p := pod.DeepCopy()
	now := metav1.Now()
	recorder := k.recorders[pod.Spec.NodeName]
	started := func(c corev1.Container) {
		recorder.Eventf(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
		recorder.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in 0s (0s including waiting). Image size: 0 bytes.", c.Image)
		recorder.Eventf(pod, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
		recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		started(c)
		k.config.Logs.Write(pod.UID, c.Name, 0, defaultLines(pod, c)...)
		k.config.Logs.End(pod.UID, c.Name, 0)
	}
	p.Status.InitContainerStatuses = statuses(pod.Spec.InitContainers, func(corev1.Container) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}
	})
	for i := range p.Status.InitContainerStatuses {
		p.Status.InitContainerStatuses[i].Ready = true
	}
	for _, c := range pod.Spec.Containers {
		started(c)
		k.config.Logs.Write(pod.UID, c.Name, 0, defaultLines(pod, c)...)
	}
	p.Status.ContainerStatuses = statuses(pod.Spec.Containers, func(corev1.Container) corev1.ContainerState {
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	})
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].Started = ptr.To(true)
	}
	if p.Status.PodIP == "" && !pod.Spec.HostNetwork {
		ip := k.allocateIP(pod.Spec.NodeName)
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	} else if pod.Spec.HostNetwork {
		p.Status.PodIP, p.Status.PodIPs = p.Status.HostIP, []corev1.PodIP{{IP: p.Status.HostIP}}
	}
	p.Status.Phase = corev1.PodRunning
	setCondition(p, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", "")
	setCondition(p, corev1.PodInitialized, corev1.ConditionTrue, "", "")
	wait := markReady(p, now.Time)
	if _, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return 0, err
	}
	return wait, nil
}

// running makes containers ready when their readiness delay has passed and
// completes the pods of Jobs.
func (k *Kubelet) running(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	p := pod.DeepCopy()
	if runsToCompletion(pod) {
		now := metav1.Now()
		for i := range p.Status.ContainerStatuses {
			s := &p.Status.ContainerStatuses[i]
			startedAt := now
			if s.State.Running != nil {
				startedAt = s.State.Running.StartedAt
			}
			s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: startedAt, FinishedAt: now}}
			s.Ready, s.Started = false, ptr.To(false)
		}
		for _, c := range pod.Spec.Containers {
			k.config.Logs.End(pod.UID, c.Name, 0)
		}
		p.Status.Phase = corev1.PodSucceeded
		setCondition(p, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", "")
		setCondition(p, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", "")
		setCondition(p, corev1.ContainersReady, corev1.ConditionFalse, "PodCompleted", "")
		_, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return 0, err
	}
	before := readyCount(p)
	wait := markReady(p, time.Now())
	if readyCount(p) == before {
		return wait, nil
	}
	if _, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return 0, err
	}
	return wait, nil
}

// runsToCompletion: pods of Jobs (restartPolicy Never or OnFailure) exit 0.
func runsToCompletion(pod *corev1.Pod) bool {
	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
		return false
	}
	for _, o := range pod.OwnerReferences {
		if o.Kind == "Job" && ptr.Deref(o.Controller, false) {
			return true
		}
	}
	return false
}

// markReady marks the running containers ready whose readiness probe's
// initial delay has passed (at once without a probe), sets the Ready and
// ContainersReady conditions, and returns how long until the next one is due.
func markReady(p *corev1.Pod, now time.Time) time.Duration {
	var next time.Duration
	var unready []string
	for i, c := range p.Spec.Containers {
		s := &p.Status.ContainerStatuses[i]
		if s.State.Running == nil {
			unready = append(unready, c.Name)
			continue
		}
		if !s.Ready {
			delay := time.Duration(0)
			if c.ReadinessProbe != nil {
				delay = time.Duration(c.ReadinessProbe.InitialDelaySeconds) * time.Second
			}
			if due := s.State.Running.StartedAt.Add(delay).Sub(now); due > 0 {
				if next == 0 || due < next {
					next = due
				}
				unready = append(unready, c.Name)
				continue
			}
			s.Ready = true
		}
	}
	if len(unready) == 0 {
		setCondition(p, corev1.ContainersReady, corev1.ConditionTrue, "", "")
		setCondition(p, corev1.PodReady, corev1.ConditionTrue, "", "")
	} else {
		msg := fmt.Sprintf("containers with unready status: %v", unready)
		setCondition(p, corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", msg)
		setCondition(p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", msg)
	}
	return next
}

func readyCount(p *corev1.Pod) int {
	n := 0
	for _, s := range p.Status.ContainerStatuses {
		if s.Ready {
			n++
		}
	}
	return n
}

func statuses(containers []corev1.Container, state func(corev1.Container) corev1.ContainerState) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, c := range containers {
		out = append(out, corev1.ContainerStatus{
			Name: c.Name, Image: imageRef(c.Image), ImageID: "", State: state(c), Started: ptr.To(false),
		})
	}
	return out
}

// imageRef is the image as the container runtime reports it, with the
// registry and tag defaults filled in ("nginx" → docker.io/library/nginx:latest).
func imageRef(image string) string {
	if strings.Contains(image, "@") {
		return image
	}
	name, tag := image, ":latest"
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		name, tag = image[:i], image[i:]
	}
	first, _, hasSlash := strings.Cut(name, "/")
	switch {
	case !hasSlash:
		name = "docker.io/library/" + name
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		name = "docker.io/" + name
	}
	return name + tag
}

func notReadyMessage(prefix string, containers []corev1.Container, status corev1.ConditionStatus) string {
	if status == corev1.ConditionTrue || len(containers) == 0 {
		return ""
	}
	var names []string
	for _, c := range containers {
		names = append(names, c.Name)
	}
	return fmt.Sprintf("%s: %v", prefix, names)
}

func setCondition(p *corev1.Pod, t corev1.PodConditionType, status corev1.ConditionStatus, reason, message string) {
	now := metav1.Now()
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		if c.Type == t {
			if c.Status != status {
				c.LastTransitionTime = now
			}
			c.Status, c.Reason, c.Message = status, reason, message
			c.ObservedGeneration = p.Generation
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
		Type: t, Status: status, Reason: reason, Message: message, LastTransitionTime: now, ObservedGeneration: p.Generation,
	})
}

// allocateIP hands out the node's pod IPs in order (10.244.<node>.2 on).
func (k *Kubelet) allocateIP(node string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.nextIP[node]
	k.nextIP[node] = n + 1
	return fmt.Sprintf("10.244.%d.%d", k.nodes[node], 2+n%250)
}
