package scheduler_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/envtest"
)

// These tests run kube-scheduler in a real in-process server (127.0.0.1,
// a free port) with simulated nodes and no other controller, and check its
// choices and its words against upstream's, k8s.io/kubernetes@v1.37.2
// pkg/scheduler: FitError.Error (framework/types.go:1470-1521), the
// preemption PostFilter (framework/plugins/defaultpreemption/
// default_preemption.go:160, framework/preemption/preemption.go:129-148),
// handleSchedulingFailure and the Scheduled event (schedule_one.go:1138,
// 1150-1262).

const (
	interval = 10 * time.Millisecond
	timeout  = 30 * time.Second
)

// cluster starts a server running kube-scheduler and the simulated
// kubelets of nodes, stopped when t ends.
func cluster(t *testing.T, nodes ...clusterconfig.NodeSpec) kubernetes.Interface {
	t.Helper()
	te := &envtest.Environment{Controllers: []string{"scheduler"}, Nodes: nodes}
	te.ControlPlane.GetAPIServer().Address = "127.0.0.1"
	config, err := te.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := te.Stop(); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
	})
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	// The scheduler places pods only on nodes it knows: wait until they
	// are all registered (the server is ready once they are, but say so).
	poll(t, "the nodes", func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == len(nodes), err
	})
	return client
}

func poll(t *testing.T, what string, done wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), interval, timeout, true, done); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// capacity is a node's capacity of cpu CPUs.
func capacity(cpu string) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
}

var infraTaint = corev1.Taint{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}

// pod is a pod of one container requesting cpu (none if empty).
func pod(name, cpu string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
	if cpu != "" {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	}
	return p
}

func create(t *testing.T, client kubernetes.Interface, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	created, err := client.CoreV1().Pods(p.Namespace).Create(t.Context(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

func scheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// unschedulable waits until kube-scheduler reports the pod unschedulable
// and returns the pod then.
func unschedulable(t *testing.T, client kubernetes.Interface, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	poll(t, "PodScheduled False on "+p.Name, func(ctx context.Context) (bool, error) {
		var err error
		if got, err = client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		c := scheduledCondition(got)
		return c != nil && c.Status == corev1.ConditionFalse, nil
	})
	return got
}

// scheduled waits until the pod is bound and returns its node.
func scheduled(t *testing.T, client kubernetes.Interface, p *corev1.Pod) string {
	t.Helper()
	var node string
	poll(t, p.Name+" to be scheduled", func(ctx context.Context) (bool, error) {
		got, err := client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = got.Spec.NodeName
		return node != "", nil
	})
	return node
}

// checkUnschedulable checks what kube-scheduler wrote on an unschedulable
// pod: PodScheduled False, reason Unschedulable, message (schedule_one.go:
// 1254-1260), no node, phase Pending.
func checkUnschedulable(t *testing.T, p *corev1.Pod, message string) {
	t.Helper()
	c := scheduledCondition(p)
	if c.Reason != corev1.PodReasonUnschedulable {
		t.Errorf("PodScheduled reason %q, want Unschedulable", c.Reason)
	}
	if c.Message != message {
		t.Errorf("PodScheduled message\n got: %s\nwant: %s", c.Message, message)
	}
	if c.ObservedGeneration != p.Generation {
		t.Errorf("PodScheduled observedGeneration %d, want %d", c.ObservedGeneration, p.Generation)
	}
	if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
		t.Errorf("node %q phase %s, want no node, Pending", p.Spec.NodeName, p.Status.Phase)
	}
}

// event waits for the events.k8s.io event of reason about p.
func event(t *testing.T, client kubernetes.Interface, p *corev1.Pod, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	selector := fields.Set{"regarding.name": p.Name, "reason": reason}.AsSelector().String()
	poll(t, reason+" event of "+p.Name, func(ctx context.Context) (bool, error) {
		list, err := client.EventsV1().Events(p.Namespace).List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.Regarding.UID == p.UID {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// checkEvent checks an event kube-scheduler wrote about p, through both
// event APIs.
func checkEvent(t *testing.T, client kubernetes.Interface, e eventsv1.Event, p *corev1.Pod, typ, action, note string) {
	t.Helper()
	if e.ReportingController != "default-scheduler" || e.Type != typ || e.Action != action {
		t.Errorf("%s event from %q, type %q, action %q; want default-scheduler, %s, %s", e.Reason, e.ReportingController, e.Type, e.Action, typ, action)
	}
	if e.Regarding.Kind != "Pod" || e.Regarding.Name != p.Name || e.Regarding.Namespace != p.Namespace {
		t.Errorf("%s event regarding %+v", e.Reason, e.Regarding)
	}
	if e.Note != note {
		t.Errorf("%s event note\n got: %s\nwant: %s", e.Reason, e.Note, note)
	}
	core, err := client.CoreV1().Events(p.Namespace).Get(t.Context(), e.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if core.ReportingController != "default-scheduler" || core.Reason != e.Reason || core.Message != note || core.Type != typ || core.InvolvedObject.UID != p.UID {
		t.Errorf("core/v1 view: reportingComponent %q reason %q message %q type %q involving %s",
			core.ReportingController, core.Reason, core.Message, core.Type, core.InvolvedObject.UID)
	}
}

// A pod asking for more CPU than any node has stays Pending; kube-scheduler
// says why on the pod and in a FailedScheduling event. A request above a
// node's allocatable is unresolvable (noderesources/fit.go:736-740), so
// preemption is not tried on any node (preemption.go:145).
func TestInsufficientCPU(t *testing.T) {
	t.Parallel()
	client := cluster(t,
		clusterconfig.NodeSpec{Name: "node-1", Capacity: capacity("4")},
		clusterconfig.NodeSpec{Name: "node-2", Capacity: capacity("4")},
	)
	const message = "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."

	big := create(t, client, pod("big", "5"))
	got := unschedulable(t, client, big)
	checkUnschedulable(t, got, message)

	failed := event(t, client, big, "FailedScheduling")
	checkEvent(t, client, failed, big, corev1.EventTypeWarning, "Scheduling", message)

	// A pod that fits is scheduled beside it.
	fits := create(t, client, pod("fits", "4"))
	if node := scheduled(t, client, fits); node != "node-1" && node != "node-2" {
		t.Errorf("fits on %q", node)
	}
	// With both nodes' CPU partly taken, the reason is the same.
	again := create(t, client, pod("again", "4500m"))
	checkUnschedulable(t, unschedulable(t, client, again), message)
}

// A nodeSelector places pods on the labelled node, and kube-scheduler
// records Scheduled events saying so (schedule_one.go:1138).
func TestNodeSelector(t *testing.T) {
	t.Parallel()
	client := cluster(t,
		clusterconfig.NodeSpec{Name: "node-1", Capacity: capacity("4")},
		clusterconfig.NodeSpec{Name: "node-2", Capacity: capacity("4"), Labels: map[string]string{"disktype": "ssd"}},
		clusterconfig.NodeSpec{Name: "node-3", Capacity: capacity("4"), Labels: map[string]string{"disktype": "hdd"}},
	)
	// Four pods, which kube-scheduler's scoring would spread over the
	// nodes without the selector.
	var pods []*corev1.Pod
	for _, name := range []string{"ssd-1", "ssd-2", "ssd-3", "ssd-4"} {
		p := pod(name, "500m")
		p.Spec.NodeSelector = map[string]string{"disktype": "ssd"}
		pods = append(pods, create(t, client, p))
	}
	for _, p := range pods {
		if node := scheduled(t, client, p); node != "node-2" {
			t.Errorf("%s scheduled on %s, want node-2 (disktype=ssd)", p.Name, node)
		}
	}
	got, err := client.CoreV1().Pods(metav1.NamespaceDefault).Get(t.Context(), "ssd-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := scheduledCondition(got); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("PodScheduled %+v, want True", c)
	}
	e := event(t, client, pods[0], "Scheduled")
	checkEvent(t, client, e, pods[0], corev1.EventTypeNormal, "Binding", "Successfully assigned default/ssd-1 to node-2")

	// A selector no node matches.
	nvme := pod("nvme", "")
	nvme.Spec.NodeSelector = map[string]string{"disktype": "nvme"}
	nvme = create(t, client, nvme)
	checkUnschedulable(t, unschedulable(t, client, nvme),
		"0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "+
			"preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
	failed := event(t, client, nvme, "FailedScheduling")
	if failed.ReportingController != "default-scheduler" || failed.Type != corev1.EventTypeWarning {
		t.Errorf("FailedScheduling from %q, type %q", failed.ReportingController, failed.Type)
	}
}

// A pod without a toleration is kept off a node with a NoSchedule taint.
func TestTaintAvoided(t *testing.T) {
	t.Parallel()
	client := cluster(t,
		clusterconfig.NodeSpec{Name: "node-1", Capacity: capacity("4"), Taints: []corev1.Taint{infraTaint}},
		clusterconfig.NodeSpec{Name: "node-2", Capacity: capacity("4")},
	)
	for _, name := range []string{"plain-1", "plain-2", "plain-3", "plain-4"} {
		if node := scheduled(t, client, create(t, client, pod(name, "500m"))); node != "node-2" {
			t.Errorf("%s scheduled on %s, want node-2 (node-1 is tainted)", name, node)
		}
	}
}

// When the tainted node is the only one, kube-scheduler says the pod does
// not tolerate its taint; a pod that tolerates it lands there.
//
// Upstream v1.37.2 does not name the taint: TaintToleration's Filter says
// "node(s) had untolerated taint(s)" (framework/plugins/tainttoleration/
// taint_toleration.go:133), where earlier releases wrote
// "node(s) had untolerated taint {dedicated: infra}".
func TestTaintOnlyNode(t *testing.T) {
	t.Parallel()
	client := cluster(t, clusterconfig.NodeSpec{Name: "node-1", Capacity: capacity("4"), Taints: []corev1.Taint{infraTaint}})

	plain := create(t, client, pod("plain", ""))
	const message = "0/1 nodes are available: 1 node(s) had untolerated taint(s). " +
		"preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
	checkUnschedulable(t, unschedulable(t, client, plain), message)
	checkEvent(t, client, event(t, client, plain, "FailedScheduling"), plain, corev1.EventTypeWarning, "Scheduling", message)

	tolerant := pod("tolerant", "")
	tolerant.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "infra", Effect: corev1.TaintEffectNoSchedule}}
	tolerant = create(t, client, tolerant)
	if node := scheduled(t, client, tolerant); node != "node-1" {
		t.Errorf("tolerant pod on %q, want node-1", node)
	}
	checkEvent(t, client, event(t, client, tolerant, "Scheduled"), tolerant, corev1.EventTypeNormal, "Binding", "Successfully assigned default/tolerant to node-1")

	// A toleration of another value does not tolerate it.
	other := pod("other", "")
	other.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	other = create(t, client, other)
	checkUnschedulable(t, unschedulable(t, client, other), message)
}

// The simulated kubelet takes a pod up after kube-scheduler's binding
// cycle, as a real kubelet, behind it by a watch and a sandbox, does: the
// Scheduled event is each pod's first. Events are named after when they
// were made (<pod>.<hex nanoseconds>), so a list of one pod's events is in
// that order whichever was written first.
func TestScheduledEventFirst(t *testing.T) {
	t.Parallel()
	client := cluster(t, clusterconfig.NodeSpec{Name: "node-1", Capacity: capacity("8")}, clusterconfig.NodeSpec{Name: "node-2", Capacity: capacity("8")})
	const pods = 20
	for i := range pods {
		create(t, client, pod(fmt.Sprintf("p%d", i), ""))
	}
	for i := range pods {
		name := fmt.Sprintf("p%d", i)
		var reasons []string
		poll(t, "the events of "+name, func(ctx context.Context) (bool, error) {
			list, err := client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String()})
			if err != nil {
				return false, err
			}
			reasons = reasons[:0]
			for _, e := range list.Items {
				reasons = append(reasons, e.Reason)
			}
			return slices.Contains(reasons, "Scheduled") && slices.Contains(reasons, "Started"), nil
		})
		if reasons[0] != "Scheduled" {
			t.Errorf("%s: events %q, want Scheduled first", name, reasons)
		}
	}
}
