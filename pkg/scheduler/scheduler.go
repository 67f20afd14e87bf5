// Package scheduler binds pods to nodes as kube-scheduler does for the cases
// tests meet: node selectors, required node affinity, taints and
// tolerations, unschedulable nodes, and resource requests against
// allocatable. It binds through the pods/binding subresource; a pod that fits
// nowhere gets kube-scheduler's PodScheduled=False/Unschedulable condition
// and FailedScheduling event, worded as kube-scheduler words them.
package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	resourcehelper "k8s.io/component-helpers/resource"
	schedulinghelper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"

	"github.com/mockernetes/mockernetes/pkg/settle"
)

// Name is the scheduler name pods ask for by default.
const Name = corev1.DefaultSchedulerName

// Scheduler binds pending pods.
type Scheduler struct {
	client   kubernetes.Interface
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	events   record.EventBroadcaster
	// written follows the events until they are written (for settle).
	written *settle.Events
}

// New registers the scheduler's informers on factory (start it afterwards);
// tracker (may be nil) sees its work for settle.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, tracker *settle.Tracker) (*Scheduler, error) {
	broadcaster := record.NewBroadcaster()
	s := &Scheduler{
		client: client,
		pods:   factory.Core().V1().Pods().Lister(),
		nodes:  factory.Core().V1().Nodes().Lister(),
		synced: []cache.InformerSynced{factory.Core().V1().Pods().Informer().HasSynced, factory.Core().V1().Nodes().Informer().HasSynced},
		queue: settle.Queue(tracker, "scheduler", workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](10*time.Millisecond, time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "scheduler"})),
		events:  broadcaster,
		written: tracker.Events("scheduler"),
	}
	s.recorder = s.written.Recorder(broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Name}))
	enqueue := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && pending(p) {
			if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
				s.queue.Add(key)
			}
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		// A pod going frees room for the pending ones.
		DeleteFunc: func(any) { s.requeuePending() },
	}); err != nil {
		return nil, err
	}
	if _, err := factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.requeuePending() },
		UpdateFunc: func(any, any) { s.requeuePending() },
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// pending is a pod for this scheduler that no node has yet.
func pending(p *corev1.Pod) bool {
	return p.Spec.NodeName == "" && p.Spec.SchedulerName == Name && p.DeletionTimestamp == nil &&
		len(p.Spec.SchedulingGates) == 0 && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func (s *Scheduler) requeuePending() {
	pods, err := s.pods.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if pending(p) {
			if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
				s.queue.Add(key)
			}
		}
	}
}

// Run schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer s.queue.ShutDown()
	s.events.StartRecordingToSink(s.written.Sink(&typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")}))
	defer s.events.Shutdown()
	if !cache.WaitForNamedCacheSyncWithContext(ctx, s.synced...) {
		return
	}
	// One worker: decisions see each other's bindings in order, as
	// kube-scheduler's single scheduling cycle does.
	go func() {
		for s.next(ctx) {
		}
	}()
	<-ctx.Done()
}

func (s *Scheduler) next(ctx context.Context) bool {
	key, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(key)
	if err := s.schedule(ctx, key); err != nil {
		klog.FromContext(ctx).V(2).Info("Scheduling failed, retrying", "pod", key, "err", err)
		s.queue.AddRateLimited(key)
		return true
	}
	s.queue.Forget(key)
	return true
}

func (s *Scheduler) schedule(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !pending(pod)) {
		return nil
	}
	if err != nil {
		return err
	}
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	all, err := s.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	node, reasons := s.pick(ctx, pod, nodes, all)
	if node == "" {
		return s.unschedulable(ctx, pod, len(nodes), reasons)
	}
	err = s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or bound meanwhile
	}
	if err != nil {
		return err
	}
	s.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
	return nil
}

// pick returns the least loaded feasible node, or the reasons, per node
// count, why none fits (kube-scheduler's filter plugin messages).
func (s *Scheduler) pick(ctx context.Context, pod *corev1.Pod, nodes []*corev1.Node, all []*corev1.Pod) (string, map[string]int) {
	logger := klog.FromContext(ctx)
	usage := map[string]corev1.ResourceList{}
	count := map[string]int{}
	for _, p := range all {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		count[p.Spec.NodeName]++
		used := usage[p.Spec.NodeName]
		if used == nil {
			used = corev1.ResourceList{}
		}
		for name, q := range resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}) {
			sum := used[name]
			sum.Add(q)
			used[name] = sum
		}
		usage[p.Spec.NodeName] = used
	}
	requests := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	affinity := nodeaffinity.GetRequiredNodeAffinity(pod)
	reasons := map[string]int{}
	best, bestCount := "", 0
	for _, node := range nodes {
		reason := ""
		if node.Spec.Unschedulable && !schedulinghelper.TolerationsTolerateTaint(logger, pod.Spec.Tolerations, &unschedulableTaint, false) {
			reason = "node(s) were unschedulable"
		} else if ok, _ := affinity.Match(node); !ok {
			reason = "node(s) didn't match Pod's node affinity/selector"
		} else if taint, untolerated := schedulinghelper.FindMatchingUntoleratedTaint(logger, node.Spec.Taints, pod.Spec.Tolerations, func(t *corev1.Taint) bool {
			return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
		}, false); untolerated {
			reason = fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.Key, taint.Value)
		} else {
			reason = insufficient(node, usage[node.Name], count[node.Name], requests)
		}
		if reason != "" {
			reasons[reason]++
			continue
		}
		if best == "" || count[node.Name] < bestCount {
			best, bestCount = node.Name, count[node.Name]
		}
	}
	return best, reasons
}

// unschedulableTaint is the taint kube-scheduler's NodeUnschedulable
// plugin lets a pod tolerate to land on a cordoned node.
var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// insufficient is NodeResourcesFit's reason, if the pod does not fit.
func insufficient(node *corev1.Node, used corev1.ResourceList, pods int, requests corev1.ResourceList) string {
	if max, ok := node.Status.Allocatable[corev1.ResourcePods]; ok && int64(pods+1) > max.Value() {
		return "Too many pods"
	}
	var short []string
	for name, want := range requests {
		allocatable, ok := node.Status.Allocatable[name]
		if !ok {
			if !want.IsZero() {
				short = append(short, "Insufficient "+string(name))
			}
			continue
		}
		sum := used[name].DeepCopy()
		sum.Add(want)
		if sum.Cmp(allocatable) > 0 {
			short = append(short, "Insufficient "+string(name))
		}
	}
	sort.Strings(short)
	return strings.Join(short, ", ")
}

// unschedulable records what kube-scheduler records for a pod that fits no
// node: the PodScheduled condition and a FailedScheduling event.
func (s *Scheduler) unschedulable(ctx context.Context, pod *corev1.Pod, nodes int, reasons map[string]int) error {
	var parts []string
	resources := false
	for reason, n := range reasons {
		parts = append(parts, fmt.Sprintf("%d %s", n, reason))
		if strings.HasPrefix(reason, "Insufficient") || reason == "Too many pods" {
			resources = true
		}
	}
	sort.Strings(parts)
	preemption := fmt.Sprintf("preemption: 0/%d nodes are available: %d Preemption is not helpful for scheduling.", nodes, nodes)
	if resources {
		preemption = fmt.Sprintf("preemption: 0/%d nodes are available: %d No preemption victims found for incoming pod.", nodes, nodes)
	}
	message := fmt.Sprintf("0/%d nodes are available: %s. %s", nodes, strings.Join(parts, ", "), preemption)
	if nodes == 0 {
		message = "no nodes available to schedule pods"
	}
	updated := pod.DeepCopy()
	if !podutil.UpdatePodCondition(&updated.Status, &corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: message}) {
		return nil // said already
	}
	if _, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	s.recorder.Event(pod, corev1.EventTypeWarning, "FailedScheduling", message)
	return nil
}
