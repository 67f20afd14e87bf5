package kubelet

import (
	"io"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
)

// The expectations of these tests are upstream's kubelet's, v1.37.2
// (k8s.io/kubernetes/pkg/kubelet): getPhase and generateAPIPodStatus in
// kubelet_pods.go, the conditions in status/generate.go, the transition
// times in status/status_manager.go.

// hourAgo is when the conditions of the test pods last changed.
var hourAgo = metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))

// newStatusKubelet is a kubelet of node-1 and node-2 on a fake client
// holding objects.
func newStatusKubelet(t testing.TB, objects ...runtime.Object) (*Kubelet, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset(objects...)
	k, err := New(Config{Nodes: clusterconfig.DefaultNodes(2), KubeletVersion: "v1.37.2", Logs: NewLogs()}, client, informers.NewSharedInformerFactory(client, 0))
	if err != nil {
		t.Fatal(err)
	}
	return k, client
}

// statusPod is pod name in default, bound to node-2 (172.18.0.4) by the
// scheduler an hour ago, at generation 3, with containers of these names.
func statusPod(name string, policy corev1.RestartPolicy, containers ...string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Generation: 3},
		Spec:       corev1.PodSpec{NodeName: "node-2", RestartPolicy: policy, DNSPolicy: corev1.DNSClusterFirst},
		Status: corev1.PodStatus{
			HostIP: clusterconfig.HostIP(1), HostIPs: []corev1.HostIP{{IP: clusterconfig.HostIP(1)}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: hourAgo, ObservedGeneration: 3}},
		},
	}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "nginx:1.27"})
	}
	return pod
}

func stateCreating() corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
}

func stateInitializing() corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
}

func stateRunning() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: hourAgo}}
}

func stateExited(code int32) corev1.ContainerState {
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: hourAgo, FinishedAt: hourAgo}}
}

// containerStatus is a container's status in state.
func containerStatus(name string, state corev1.ContainerState, ready bool) corev1.ContainerStatus {
	started := state.Running != nil
	return corev1.ContainerStatus{Name: name, Image: "docker.io/library/nginx:1.27", State: state, Ready: ready, Started: &started}
}

// crashLooping is a container that exited with code and waits to be
// restarted, as the kubelet reports it.
func crashLooping(name string, code int32) corev1.ContainerStatus {
	s := containerStatus(name, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container"}}, false)
	s.LastTerminationState = stateExited(code)
	s.RestartCount = 1
	return s
}

// deriveStatus runs derivePodStatus on a copy of pod with these container
// statuses.
func deriveStatus(t *testing.T, k *Kubelet, pod *corev1.Pod, containers, inits []corev1.ContainerStatus) *corev1.Pod {
	t.Helper()
	p := pod.DeepCopy()
	p.Status.ContainerStatuses, p.Status.InitContainerStatuses = containers, inits
	if err := k.derivePodStatus(pod, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func findCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// The phase from the containers' states: getPhase (kubelet_pods.go:1672),
// ContainerRestartRules on as in v1.37.
func TestStatusPhase(t *testing.T) {
	k, _ := newStatusKubelet(t)
	for _, tc := range []struct {
		name       string
		policy     corev1.RestartPolicy
		containers []corev1.ContainerStatus
		want       corev1.PodPhase
	}{
		{name: "all waiting", policy: corev1.RestartPolicyAlways,
			containers: []corev1.ContainerStatus{containerStatus("app", stateCreating(), false), containerStatus("sidecar", stateCreating(), false)}, want: corev1.PodPending},
		{name: "the one container running", policy: corev1.RestartPolicyAlways,
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), false)}, want: corev1.PodRunning},
		{name: "all running", policy: corev1.RestartPolicyAlways,
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true), containerStatus("sidecar", stateRunning(), false)}, want: corev1.PodRunning},
		{name: "one running, one still waiting", policy: corev1.RestartPolicyAlways,
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true), containerStatus("sidecar", stateCreating(), false)}, want: corev1.PodPending},
		{name: "all exited 0, restartPolicy Never", policy: corev1.RestartPolicyNever,
			containers: []corev1.ContainerStatus{containerStatus("app", stateExited(0), false), containerStatus("sidecar", stateExited(0), false)}, want: corev1.PodSucceeded},
		{name: "all exited 0, restartPolicy OnFailure", policy: corev1.RestartPolicyOnFailure,
			containers: []corev1.ContainerStatus{containerStatus("app", stateExited(0), false)}, want: corev1.PodSucceeded},
		{name: "one exited non-zero, restartPolicy Never", policy: corev1.RestartPolicyNever,
			containers: []corev1.ContainerStatus{containerStatus("app", stateExited(0), false), containerStatus("sidecar", stateExited(2), false)}, want: corev1.PodFailed},
		{name: "the one container exited non-zero, restartPolicy Never", policy: corev1.RestartPolicyNever,
			containers: []corev1.ContainerStatus{containerStatus("app", stateExited(137), false)}, want: corev1.PodFailed},
		{name: "crash looping, restartPolicy Always", policy: corev1.RestartPolicyAlways,
			containers: []corev1.ContainerStatus{crashLooping("app", 1)}, want: corev1.PodRunning},
		{name: "crash looping next to a running container", policy: corev1.RestartPolicyAlways,
			containers: []corev1.ContainerStatus{crashLooping("app", 1), containerStatus("sidecar", stateRunning(), true)}, want: corev1.PodRunning},
		{name: "crash looping, restartPolicy OnFailure", policy: corev1.RestartPolicyOnFailure,
			containers: []corev1.ContainerStatus{crashLooping("app", 3)}, want: corev1.PodRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			for _, c := range tc.containers {
				names = append(names, c.Name)
			}
			pod := statusPod("phase", tc.policy, names...)
			if p := deriveStatus(t, k, pod, tc.containers, nil); p.Status.Phase != tc.want {
				t.Errorf("phase %s, want %s", p.Status.Phase, tc.want)
			}
		})
	}
}

// A pod whose init container has not run is Pending, and not initialized.
func TestStatusPhaseInitializing(t *testing.T) {
	k, _ := newStatusKubelet(t)
	pod := statusPod("init", corev1.RestartPolicyAlways, "app")
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1.36"}}
	p := deriveStatus(t, k, pod, []corev1.ContainerStatus{containerStatus("app", stateCreating(), false)}, []corev1.ContainerStatus{containerStatus("setup", stateInitializing(), false)})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}
	if c := findCondition(p, corev1.PodInitialized); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotInitialized" ||
		c.Message != "containers with incomplete status: [setup]" {
		t.Errorf("Initialized %+v", c)
	}
}

// wantCondition is one condition as upstream's kubelet reports it.
type wantCondition struct {
	typ             corev1.PodConditionType
	status          corev1.ConditionStatus
	reason, message string
}

// The kubelet's conditions, their status, reason and message
// (status/generate.go), and PodScheduled, which the kubelet writes True
// itself (kubelet_pods.go:2014-2018).
func TestStatusConditions(t *testing.T) {
	k, _ := newStatusKubelet(t)
	unready := func(names string) []wantCondition {
		msg := "containers with unready status: " + names
		return []wantCondition{
			{typ: corev1.ContainersReady, status: corev1.ConditionFalse, reason: "ContainersNotReady", message: msg},
			{typ: corev1.PodReady, status: corev1.ConditionFalse, reason: "ContainersNotReady", message: msg},
		}
	}
	ready := []wantCondition{
		{typ: corev1.ContainersReady, status: corev1.ConditionTrue},
		{typ: corev1.PodReady, status: corev1.ConditionTrue},
	}
	scheduled := wantCondition{typ: corev1.PodScheduled, status: corev1.ConditionTrue}
	initialized := wantCondition{typ: corev1.PodInitialized, status: corev1.ConditionTrue}
	sandbox := wantCondition{typ: corev1.PodReadyToStartContainers, status: corev1.ConditionTrue}
	noSandboxYet := wantCondition{typ: corev1.PodReadyToStartContainers, status: corev1.ConditionFalse,
		reason: "PodSandboxNotReady", message: "no pod sandbox exists"}
	sandboxStopped := wantCondition{typ: corev1.PodReadyToStartContainers, status: corev1.ConditionFalse,
		reason: "PodSandboxNotReady", message: "pod sandbox is not ready"}

	for _, tc := range []struct {
		name       string
		pod        func() *corev1.Pod
		containers []corev1.ContainerStatus
		inits      []corev1.ContainerStatus
		want       []wantCondition
	}{
		{
			name:       "containers creating",
			pod:        func() *corev1.Pod { return statusPod("creating", corev1.RestartPolicyAlways, "app", "sidecar") },
			containers: []corev1.ContainerStatus{containerStatus("app", stateCreating(), false), containerStatus("sidecar", stateCreating(), false)},
			want:       append([]wantCondition{noSandboxYet, initialized, scheduled}, unready("[app sidecar]")...),
		},
		{
			name:       "running, not ready",
			pod:        func() *corev1.Pod { return statusPod("unready", corev1.RestartPolicyAlways, "app") },
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), false)},
			want:       append([]wantCondition{sandbox, initialized, scheduled}, unready("[app]")...),
		},
		{
			name:       "running, one of two ready",
			pod:        func() *corev1.Pod { return statusPod("half", corev1.RestartPolicyAlways, "app", "sidecar") },
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true), containerStatus("sidecar", stateRunning(), false)},
			want:       append([]wantCondition{sandbox, initialized, scheduled}, unready("[sidecar]")...),
		},
		{
			name:       "running and ready",
			pod:        func() *corev1.Pod { return statusPod("ready", corev1.RestartPolicyAlways, "app", "sidecar") },
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true), containerStatus("sidecar", stateRunning(), true)},
			want:       append([]wantCondition{sandbox, initialized, scheduled}, ready...),
		},
		{
			name:       "crash looping",
			pod:        func() *corev1.Pod { return statusPod("crash", corev1.RestartPolicyAlways, "app") },
			containers: []corev1.ContainerStatus{crashLooping("app", 1)},
			want:       append([]wantCondition{sandbox, initialized, scheduled}, unready("[app]")...),
		},
		{
			name: "init container not run",
			pod: func() *corev1.Pod {
				p := statusPod("init", corev1.RestartPolicyAlways, "app")
				p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1.36"}}
				return p
			},
			containers: []corev1.ContainerStatus{containerStatus("app", stateCreating(), false)},
			inits:      []corev1.ContainerStatus{containerStatus("setup", stateInitializing(), false)},
			want: append([]wantCondition{noSandboxYet, scheduled, {typ: corev1.PodInitialized, status: corev1.ConditionFalse,
				reason: "ContainersNotInitialized", message: "containers with incomplete status: [setup]"}}, unready("[app]")...),
		},
		{
			name: "init container completed",
			pod: func() *corev1.Pod {
				p := statusPod("initdone", corev1.RestartPolicyAlways, "app")
				p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1.36"}}
				return p
			},
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true)},
			inits:      []corev1.ContainerStatus{containerStatus("setup", stateExited(0), true)},
			want:       append([]wantCondition{sandbox, initialized, scheduled}, ready...),
		},
		{
			name:       "succeeded",
			pod:        func() *corev1.Pod { return statusPod("succeeded", corev1.RestartPolicyNever, "app") },
			containers: []corev1.ContainerStatus{containerStatus("app", stateExited(0), false)},
			want: []wantCondition{sandboxStopped, scheduled,
				{typ: corev1.PodInitialized, status: corev1.ConditionTrue, reason: "PodCompleted"},
				{typ: corev1.ContainersReady, status: corev1.ConditionFalse, reason: "PodCompleted"},
				{typ: corev1.PodReady, status: corev1.ConditionFalse, reason: "PodCompleted"},
			},
		},
		{
			name:       "failed",
			pod:        func() *corev1.Pod { return statusPod("failed", corev1.RestartPolicyNever, "app") },
			containers: []corev1.ContainerStatus{containerStatus("app", stateExited(1), false)},
			want: []wantCondition{sandboxStopped, scheduled, initialized,
				{typ: corev1.ContainersReady, status: corev1.ConditionFalse, reason: "PodFailed"},
				{typ: corev1.PodReady, status: corev1.ConditionFalse, reason: "PodFailed"},
			},
		},
		{
			name: "readiness gate without its condition",
			pod: func() *corev1.Pod {
				p := statusPod("gate", corev1.RestartPolicyAlways, "app")
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/load-balancer"}}
				return p
			},
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true)},
			want: []wantCondition{sandbox, initialized, scheduled,
				{typ: corev1.ContainersReady, status: corev1.ConditionTrue},
				{typ: corev1.PodReady, status: corev1.ConditionFalse, reason: "ReadinessGatesNotReady",
					message: `corresponding condition of pod readiness gate "example.com/load-balancer" does not exist.`},
			},
		},
		{
			name: "readiness gate False",
			pod: func() *corev1.Pod {
				p := statusPod("gatefalse", corev1.RestartPolicyAlways, "app")
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/load-balancer"}}
				p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: "example.com/load-balancer", Status: corev1.ConditionFalse})
				return p
			},
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true)},
			want: []wantCondition{sandbox, initialized, scheduled,
				{typ: corev1.ContainersReady, status: corev1.ConditionTrue},
				{typ: corev1.PodReady, status: corev1.ConditionFalse, reason: "ReadinessGatesNotReady",
					message: `the status of pod readiness gate "example.com/load-balancer" is not "True", but False`},
				{typ: "example.com/load-balancer", status: corev1.ConditionFalse},
			},
		},
		{
			name: "readiness gate True",
			pod: func() *corev1.Pod {
				p := statusPod("gatetrue", corev1.RestartPolicyAlways, "app")
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/load-balancer"}}
				p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: "example.com/load-balancer", Status: corev1.ConditionTrue})
				return p
			},
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true)},
			// The gate's condition is not the kubelet's: it is kept as it was.
			want: append([]wantCondition{sandbox, initialized, scheduled, {typ: "example.com/load-balancer", status: corev1.ConditionTrue}}, ready...),
		},
		{
			name: "sidecar (restartable init container) not ready",
			pod: func() *corev1.Pod {
				p := statusPod("sidecar", corev1.RestartPolicyAlways, "app")
				p.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "envoy:v1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
				return p
			},
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true)},
			inits:      []corev1.ContainerStatus{containerStatus("proxy", stateRunning(), false)},
			want: []wantCondition{sandbox, scheduled,
				{typ: corev1.PodInitialized, status: corev1.ConditionTrue},
				{typ: corev1.ContainersReady, status: corev1.ConditionFalse, reason: "ContainersNotReady", message: "containers with unready status: [proxy]"},
				{typ: corev1.PodReady, status: corev1.ConditionFalse, reason: "ContainersNotReady", message: "containers with unready status: [proxy]"},
			},
		},
		{
			name: "created with spec.nodeName (never scheduled)",
			pod: func() *corev1.Pod {
				p := statusPod("direct", corev1.RestartPolicyAlways, "app")
				p.Status.Conditions = nil
				return p
			},
			containers: []corev1.ContainerStatus{containerStatus("app", stateRunning(), true)},
			want: append([]wantCondition{sandbox, initialized,
				{typ: corev1.PodScheduled, status: corev1.ConditionTrue}}, ready...),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod()
			p := deriveStatus(t, k, pod, tc.containers, tc.inits)
			for _, w := range tc.want {
				t.Run(string(w.typ), func(t *testing.T) {
					c := findCondition(p, w.typ)
					if c == nil {
						t.Fatalf("no %s condition in %+v", w.typ, p.Status.Conditions)
					}
					if c.Status != w.status {
						t.Errorf("status %s, want %s (%+v)", c.Status, w.status, c)
					}
					// The kubelet's conditions observe the pod's generation
					// (PodObservedGenerationTracking is GA).
					if (w.typ == corev1.PodReady || w.typ == corev1.ContainersReady || w.typ == corev1.PodInitialized ||
						w.typ == corev1.PodReadyToStartContainers || w.typ == corev1.PodScheduled) && c.ObservedGeneration != 3 {
						t.Errorf("observedGeneration %d, want 3", c.ObservedGeneration)
					}
					if c.Reason != w.reason || c.Message != w.message {
						t.Errorf("reason %q message %q, want %q %q", c.Reason, c.Message, w.reason, w.message)
					}
				})
			}
		})
	}
}

// A condition keeps its lastTransitionTime while its status stays (also
// when its message changes), and takes the time of the change when the
// status changes: updateLastTransitionTime, status/status_manager.go:1116-1128.
func TestStatusTransitionTimes(t *testing.T) {
	k, _ := newStatusKubelet(t)
	pod := statusPod("times", corev1.RestartPolicyAlways, "app", "sidecar")
	cond := func(typ corev1.PodConditionType, s corev1.ConditionStatus, reason, msg string) corev1.PodCondition {
		return corev1.PodCondition{Type: typ, Status: s, Reason: reason, Message: msg, LastTransitionTime: hourAgo, ObservedGeneration: 3}
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP, pod.Status.PodIPs = "10.244.1.9", []corev1.PodIP{{IP: "10.244.1.9"}}
	pod.Status.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", ""),
		cond(corev1.PodInitialized, corev1.ConditionTrue, "", ""),
		cond(corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app sidecar]"),
		cond(corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app sidecar]"),
		cond(corev1.PodScheduled, corev1.ConditionTrue, "", ""),
	}

	// app becomes ready: nothing changes status, Ready's message does.
	p := deriveStatus(t, k, pod, []corev1.ContainerStatus{containerStatus("app", stateRunning(), true), containerStatus("sidecar", stateRunning(), false)}, nil)
	for _, typ := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled} {
		if c := findCondition(p, typ); c == nil || !c.LastTransitionTime.Equal(&hourAgo) {
			t.Errorf("%s: %+v, want its lastTransitionTime kept (%s)", typ, c, hourAgo)
		}
	}
	if c := findCondition(p, corev1.PodReady); c.Message != "containers with unready status: [sidecar]" {
		t.Errorf("Ready's message %q", c.Message)
	}
	if len(p.Status.Conditions) != 5 {
		t.Errorf("conditions %+v, want the five, each once", p.Status.Conditions)
	}

	// Both ready: ContainersReady and Ready turn True now; the others stay.
	before := time.Now()
	q := deriveStatus(t, k, p, []corev1.ContainerStatus{containerStatus("app", stateRunning(), true), containerStatus("sidecar", stateRunning(), true)}, nil)
	after := time.Now()
	for _, typ := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
		c := findCondition(q, typ)
		if c == nil || c.Status != corev1.ConditionTrue || c.LastTransitionTime.Before(&metav1.Time{Time: before}) || c.LastTransitionTime.After(after) {
			t.Errorf("%s: %+v, want True since between %s and %s", typ, c, before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
		}
	}
	for _, typ := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodScheduled} {
		if c := findCondition(q, typ); c == nil || !c.LastTransitionTime.Equal(&hourAgo) {
			t.Errorf("%s: %+v, want its lastTransitionTime kept (%s)", typ, c, hourAgo)
		}
	}

	// And the pod completes: the sandbox condition turns False now.
	q.Spec.RestartPolicy = corev1.RestartPolicyNever
	before = time.Now()
	r := deriveStatus(t, k, q, []corev1.ContainerStatus{containerStatus("app", stateExited(0), false), containerStatus("sidecar", stateExited(0), false)}, nil)
	if c := findCondition(r, corev1.PodReadyToStartContainers); c == nil || c.Status != corev1.ConditionFalse || c.LastTransitionTime.Before(&metav1.Time{Time: before}) {
		t.Errorf("PodReadyToStartContainers: %+v, want False since %s", c, before.Format(time.RFC3339Nano))
	}
	if c := findCondition(r, corev1.PodInitialized); c == nil || !c.LastTransitionTime.Equal(&hourAgo) {
		t.Errorf("Initialized: %+v, want its lastTransitionTime kept", c)
	}
}

// Pod IPs: none before the sandbox, one from the node's pod CIDR
// (10.244.<index>.0/24) once it runs, kept once reported; host-network pods
// have the node's address (kubelet_pods.go:2043-2058).
func TestStatusPodIPs(t *testing.T) {
	k, _ := newStatusKubelet(t)
	hostIP := clusterconfig.HostIP(1)
	runningApp := []corev1.ContainerStatus{containerStatus("app", stateRunning(), true)}

	pending := deriveStatus(t, k, statusPod("pending", corev1.RestartPolicyAlways, "app"), []corev1.ContainerStatus{containerStatus("app", stateCreating(), false)}, nil)
	if pending.Status.PodIP != "" || pending.Status.PodIPs != nil {
		t.Errorf("pending pod: %q %v, want no address", pending.Status.PodIP, pending.Status.PodIPs)
	}

	first := deriveStatus(t, k, statusPod("first", corev1.RestartPolicyAlways, "app"), runningApp, nil)
	if first.Status.PodIP != "10.244.1.2" || len(first.Status.PodIPs) != 1 || first.Status.PodIPs[0].IP != "10.244.1.2" {
		t.Errorf("first pod on node-2: %q %v, want 10.244.1.2 (.1 is the bridge)", first.Status.PodIP, first.Status.PodIPs)
	}
	if first.Status.HostIP != hostIP || len(first.Status.HostIPs) != 1 || first.Status.HostIPs[0].IP != hostIP {
		t.Errorf("host IP %q %v, want %s kept", first.Status.HostIP, first.Status.HostIPs, hostIP)
	}
	second := deriveStatus(t, k, statusPod("second", corev1.RestartPolicyAlways, "app"), runningApp, nil)
	if second.Status.PodIP != "10.244.1.3" {
		t.Errorf("second pod on node-2: %q, want 10.244.1.3", second.Status.PodIP)
	}
	onNode1 := statusPod("other", corev1.RestartPolicyAlways, "app")
	onNode1.Spec.NodeName, onNode1.Status.HostIP = "node-1", clusterconfig.HostIP(0)
	if p := deriveStatus(t, k, onNode1, runningApp, nil); p.Status.PodIP != "10.244.0.2" {
		t.Errorf("first pod on node-1: %q, want 10.244.0.2", p.Status.PodIP)
	}

	reported := statusPod("reported", corev1.RestartPolicyAlways, "app")
	reported.Status.PodIP, reported.Status.PodIPs = "10.244.1.77", []corev1.PodIP{{IP: "10.244.1.77"}}
	if p := deriveStatus(t, k, reported, runningApp, nil); p.Status.PodIP != "10.244.1.77" || len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != "10.244.1.77" {
		t.Errorf("pod that reported an address: %q %v, want it kept", p.Status.PodIP, p.Status.PodIPs)
	}

	hostNetwork := statusPod("host", corev1.RestartPolicyAlways, "app")
	hostNetwork.Spec.HostNetwork = true
	if p := deriveStatus(t, k, hostNetwork, runningApp, nil); p.Status.PodIP != hostIP || len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != hostIP {
		t.Errorf("host-network pod: %q %v, want the node's %s", p.Status.PodIP, p.Status.PodIPs, hostIP)
	}

	t.Run("host-network pod before its containers start", func(t *testing.T) {
		p := deriveStatus(t, k, hostNetwork, []corev1.ContainerStatus{containerStatus("app", stateCreating(), false)}, nil)
		if p.Status.PodIP != hostIP {
			t.Errorf("host-network pod: %q, want the node's %s", p.Status.PodIP, hostIP)
		}
	})
}

// The kubelet's first status of a pod: the node's address, the start time,
// Pending, the containers waiting (convertToAPIContainerStatuses,
// kubelet_pods.go:2529-2543).
func TestStatusAccept(t *testing.T) {
	pod := statusPod("web", corev1.RestartPolicyAlways, "app")
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: pod.Status.Conditions}
	withInit := statusPod("init", corev1.RestartPolicyAlways, "app")
	withInit.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1.36"}}
	withInit.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: withInit.Status.Conditions}
	k, client := newStatusKubelet(t, pod, withInit)

	before := time.Now().Truncate(time.Second)
	if err := k.accept(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	got, err := client.CoreV1().Pods("default").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := got.Status
	if s.Phase != corev1.PodPending || s.HostIP != "172.18.0.4" || len(s.HostIPs) != 1 || s.HostIPs[0].IP != "172.18.0.4" {
		t.Errorf("phase %s, host IP %q %v; want Pending on 172.18.0.4 (node-2)", s.Phase, s.HostIP, s.HostIPs)
	}
	if s.StartTime == nil || s.StartTime.Before(&metav1.Time{Time: before}) || s.StartTime.After(time.Now()) {
		t.Errorf("start time %v, want now", s.StartTime)
	}
	if s.PodIP != "" {
		t.Errorf("pod IP %q before the sandbox", s.PodIP)
	}
	if len(s.ContainerStatuses) != 1 {
		t.Fatalf("container statuses %+v", s.ContainerStatuses)
	}
	c := s.ContainerStatuses[0]
	if c.Name != "app" || c.State.Waiting == nil || c.State.Waiting.Reason != "ContainerCreating" || c.Ready || c.Started == nil || *c.Started || c.RestartCount != 0 {
		t.Errorf("app: %+v, want waiting in ContainerCreating, not started or ready", c)
	}
	if c := findCondition(got, corev1.PodScheduled); c == nil || c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Equal(&hourAgo) {
		t.Errorf("PodScheduled %+v, want the scheduler's kept", c)
	}

	t.Run("image of a waiting container", func(t *testing.T) {
		if c.Image != "nginx:1.27" {
			t.Errorf("image %q, want nginx:1.27", c.Image)
		}
	})

	if err := k.accept(t.Context(), withInit); err != nil {
		t.Fatal(err)
	}
	if got, err = client.CoreV1().Pods("default").Get(t.Context(), "init", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if is := got.Status.InitContainerStatuses; len(is) != 1 || is[0].Name != "setup" || is[0].State.Waiting == nil || is[0].State.Waiting.Reason != "PodInitializing" {
		t.Errorf("init container statuses %+v, want setup waiting in PodInitializing", is)
	}
	t.Run("regular containers of a pod with init containers", func(t *testing.T) {
		if cs := got.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "PodInitializing" {
			t.Errorf("container statuses %+v, want app waiting in PodInitializing", cs)
		}
	})
}

// A pod the scheduler is still binding waits: the kubelet takes it up
// once the binding cycle is over (the Scheduled event recorded), and then
// accepts it.
func TestSyncAfterBinding(t *testing.T) {
	pod := statusPod("web", corev1.RestartPolicyAlways, "app")
	client := fake.NewClientset(pod)
	factory := informers.NewSharedInformerFactory(client, 0)
	var binding atomic.Bool
	binding.Store(true)
	k, err := New(Config{Nodes: clusterconfig.DefaultNodes(2), KubeletVersion: "v1.37.2", Logs: NewLogs(),
		Binding: func(uid types.UID) bool { return uid == pod.UID && binding.Load() }}, client, factory)
	if err != nil {
		t.Fatal(err)
	}
	if err := factory.Core().V1().Pods().Informer().GetIndexer().Add(pod); err != nil {
		t.Fatal(err)
	}
	again, err := k.sync(t.Context(), "default/web")
	if err != nil || again != bindingPoll {
		t.Fatalf("sync while binding: again %v, err %v; want %v, nil", again, err, bindingPoll)
	}
	if got, _ := client.CoreV1().Pods("default").Get(t.Context(), "web", metav1.GetOptions{}); got.Status.StartTime != nil {
		t.Fatalf("accepted while the scheduler binds it: %+v", got.Status)
	}
	binding.Store(false)
	if again, err = k.sync(t.Context(), "default/web"); err != nil || again != 0 {
		t.Fatalf("sync after binding: again %v, err %v", again, err)
	}
	if got, _ := client.CoreV1().Pods("default").Get(t.Context(), "web", metav1.GetOptions{}); got.Status.StartTime == nil {
		t.Fatalf("not accepted after binding: %+v", got.Status)
	}
}

// recordTo sends the events of node's kubelet to a FakeRecorder (the
// recorders of the node set in force are the kubelet's seam for them).
func recordTo(k *Kubelet, node string) *record.FakeRecorder {
	recorder := record.NewFakeRecorder(100)
	set := k.newNodeSet(k.Nodes())
	set.recorders[node] = recorder
	k.set.Store(set)
	return recorder
}

// events drains what the recorder holds.
func drain(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// A container without a start delay goes from ContainerCreating to
// running (and ready, without a readiness probe) at the first step, with
// the events of the pull and start; a further step changes nothing and
// records nothing.
func TestStepStartsContainer(t *testing.T) {
	pod := statusPod("web", corev1.RestartPolicyAlways, "app")
	pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
	k, client := newStatusKubelet(t, pod)
	events := recordTo(k, "node-2")
	ctx := t.Context()
	if err := k.accept(ctx, pod); err != nil {
		t.Fatal(err)
	}
	accepted, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e := drain(events); len(e) != 0 {
		t.Errorf("events of accept: %q", e)
	}

	before := time.Now().Truncate(time.Second)
	next, err := k.step(ctx, accepted)
	if err != nil {
		t.Fatal(err)
	}
	if next != 0 {
		t.Errorf("next step in %v, want none due", next)
	}
	got, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := got.Status
	if s.Phase != corev1.PodRunning || s.PodIP != "10.244.1.2" || !s.StartTime.Equal(accepted.Status.StartTime) {
		t.Errorf("phase %s pod IP %q start %v; want Running, 10.244.1.2, the start time kept", s.Phase, s.PodIP, s.StartTime)
	}
	c := s.ContainerStatuses[0]
	if c.State.Running == nil || c.State.Running.StartedAt.Before(&metav1.Time{Time: before}) || !c.Ready || c.Started == nil || !*c.Started || c.RestartCount != 0 {
		t.Errorf("app: %+v, want running since now, started and ready", c)
	}
	for _, typ := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled} {
		if c := findCondition(got, typ); c == nil || c.Status != corev1.ConditionTrue {
			t.Errorf("%s: %+v, want True", typ, c)
		}
	}

	recorded := drain(events)
	if len(recorded) != 4 {
		t.Fatalf("events %q, want Pulling, Pulled, Created, Started", recorded)
	}
	// image_manager.go:362 and :381.
	if recorded[0] != `Normal Pulling Pulling image "nginx:1.27"` {
		t.Errorf("event %q, want the pull", recorded[0])
	}
	pulled := regexp.MustCompile(`^Normal Pulled Successfully pulled image "nginx:1\.27" in [0-9.]+[mµn]?s \([0-9.]+[mµn]?s including waiting\)\. Image size: [0-9]+ bytes\.$`)
	if !pulled.MatchString(recorded[1]) {
		t.Errorf("event %q, want %s", recorded[1], pulled)
	}
	if !strings.HasPrefix(recorded[2], "Normal Created ") || !strings.HasPrefix(recorded[3], "Normal Started ") {
		t.Errorf("events %q, want Created then Started", recorded[2:])
	}
	t.Run("messages of Created and Started", func(t *testing.T) {
		if recorded[2] != "Normal Created Container created" || recorded[3] != "Normal Started Container started" {
			t.Errorf("events %q", recorded[2:])
		}
	})

	// Nothing left to do: no write, no event.
	again, err := k.step(ctx, got)
	if err != nil || again != 0 {
		t.Errorf("second step: %v, %v", again, err)
	}
	if e := drain(events); len(e) != 0 {
		t.Errorf("events of a step that changed nothing: %q", e)
	}
	if after, _ := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{}); after.ResourceVersion != got.ResourceVersion {
		t.Errorf("a step that changed nothing wrote the pod (%s → %s)", got.ResourceVersion, after.ResourceVersion)
	}

	// The image is on the node now: another pod's container does not pull it.
	other := statusPod("other", corev1.RestartPolicyAlways, "app")
	other.Status = corev1.PodStatus{Conditions: other.Status.Conditions}
	if _, err := client.CoreV1().Pods("default").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := k.accept(ctx, other); err != nil {
		t.Fatal(err)
	}
	if other, err = client.CoreV1().Pods("default").Get(ctx, "other", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.step(ctx, other); err != nil {
		t.Fatal(err)
	}
	// image_manager.go:264 (KubeletEnsureSecretPulledImages is on in
	// v1.37); Created and Started as above.
	e := drain(events)
	if len(e) != 3 || e[0] != `Normal Pulled Container image "nginx:1.27" already present on machine and can be accessed by the pod` ||
		!strings.HasPrefix(e[1], "Normal Created ") || !strings.HasPrefix(e[2], "Normal Started ") {
		t.Errorf("events of the second pod %q, want Pulled (already present), Created, Started", e)
	}
}

// A readiness probe's initial delay keeps the started container unready,
// and the step says when to look again.
func TestStepReadinessDelay(t *testing.T) {
	pod := statusPod("probed", corev1.RestartPolicyAlways, "app")
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{InitialDelaySeconds: 5}
	pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
	k, client := newStatusKubelet(t, pod)
	ctx := t.Context()
	if err := k.accept(ctx, pod); err != nil {
		t.Fatal(err)
	}
	accepted, err := client.CoreV1().Pods("default").Get(ctx, "probed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next, err := k.step(ctx, accepted)
	if err != nil {
		t.Fatal(err)
	}
	if next <= 4*time.Second || next > 5*time.Second {
		t.Errorf("next step in %v, want when the 5 s initial delay ends", next)
	}
	got, err := client.CoreV1().Pods("default").Get(ctx, "probed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodRunning || got.Status.ContainerStatuses[0].State.Running == nil || got.Status.ContainerStatuses[0].Ready {
		t.Errorf("phase %s, app %+v; want Running, app running and not ready", got.Status.Phase, got.Status.ContainerStatuses[0])
	}
	if c := findCondition(got, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotReady" || c.Message != "containers with unready status: [app]" {
		t.Errorf("Ready %+v", c)
	}
}

// A deleted pod whose containers stopped is terminal (getPhase's
// podIsTerminal): Succeeded when they all exited 0, Failed otherwise,
// though its restart policy would restart them.
func TestStatusPhaseDeleted(t *testing.T) {
	k, _ := newStatusKubelet(t)
	for _, tc := range []struct {
		exitCode int32
		want     corev1.PodPhase
	}{{0, corev1.PodSucceeded}, {137, corev1.PodFailed}} {
		pod := statusPod("deleted", corev1.RestartPolicyAlways, "app")
		pod.DeletionTimestamp = &hourAgo
		p := deriveStatus(t, k, pod, []corev1.ContainerStatus{containerStatus("app", stateExited(tc.exitCode), false)}, nil)
		if p.Status.Phase != tc.want {
			t.Errorf("exit code %d: phase %s, want %s", tc.exitCode, p.Status.Phase, tc.want)
		}
	}
	pod := statusPod("alive", corev1.RestartPolicyAlways, "app")
	if p := deriveStatus(t, k, pod, []corev1.ContainerStatus{containerStatus("app", stateExited(0), false)}, nil); p.Status.Phase != corev1.PodRunning {
		t.Errorf("not deleted, restartPolicy Always: phase %s, want Running", p.Status.Phase)
	}
}

// acceptedPod is a kubelet of node-1 and node-2 that accepted pod (on
// node-2), the client holding it, the events node-2 records from then on,
// and a read of the pod as stored.
func acceptedPod(t *testing.T, pod *corev1.Pod) (*Kubelet, *fake.Clientset, *record.FakeRecorder, func() *corev1.Pod) {
	t.Helper()
	k, client := newStatusKubelet(t, pod)
	events := recordTo(k, "node-2")
	if err := k.accept(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	get := func() *corev1.Pod {
		t.Helper()
		got, err := client.CoreV1().Pods(pod.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	return k, client, events, get
}

// Ephemeral containers (kubectl debug) start once added to a running pod,
// never ready and never restarted, without changing the pod's phase or
// readiness; one that runs a command ends when it does, one attached to
// ends with its session.
func TestStepEphemeral(t *testing.T) {
	pod := statusPod("web", corev1.RestartPolicyAlways, "app")
	pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
	k, client, events, get := acceptedPod(t, pod)
	ctx := t.Context()
	if _, err := k.step(ctx, get()); err != nil {
		t.Fatal(err)
	}
	drain(events)

	running := get()
	running.Spec.EphemeralContainers = []corev1.EphemeralContainer{
		{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "once", Image: "busybox:1.36", Command: []string{"sh", "-c", "echo debugging"}}},
		{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "shell", Image: "busybox:1.36", Command: []string{"sh"}, Stdin: true, TTY: true}},
	}
	running, err := client.CoreV1().Pods("default").UpdateEphemeralContainers(ctx, "web", running, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Truncate(time.Second)
	if _, err := k.step(ctx, running); err != nil {
		t.Fatal(err)
	}
	got := get()
	if got.Status.Phase != corev1.PodRunning || findCondition(got, corev1.PodReady).Status != corev1.ConditionTrue {
		t.Errorf("phase %s, Ready %s; want the pod Running and Ready still", got.Status.Phase, findCondition(got, corev1.PodReady).Status)
	}
	es := got.Status.EphemeralContainerStatuses
	if len(es) != 2 {
		t.Fatalf("ephemeral container statuses %+v, want once and shell", es)
	}
	// The command has run (it takes no time): its container ended in the
	// same step, as the kubelet reports a container that exits at once;
	// the shell runs until its session ends.
	once, shell := es[0], es[1]
	if term := once.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" || term.StartedAt.Before(&metav1.Time{Time: before}) {
		t.Errorf("once: %+v, want terminated (0, Completed) since now", once)
	}
	if shell.State.Running == nil || shell.State.Running.StartedAt.Before(&metav1.Time{Time: before}) {
		t.Errorf("shell: %+v, want running since now", shell)
	}
	for _, s := range es {
		if s.Ready || s.Started != nil || s.RestartCount != 0 || s.Image != "docker.io/library/busybox:1.36" || !strings.HasPrefix(s.ContainerID, "containerd://") {
			t.Errorf("%s: %+v, want the image run, not ready, no started field, not restarted", s.Name, s)
		}
	}
	want := []string{`Normal Pulling Pulling image "busybox:1.36"`, "Normal Pulled ", "Normal Created Container created", "Normal Started Container started",
		`Normal Pulled Container image "busybox:1.36" already present on machine and can be accessed by the pod`, "Normal Created Container created", "Normal Started Container started"}
	if e := drain(events); len(e) != len(want) {
		t.Errorf("events %q, want %q", e, want)
	} else {
		for i := range want {
			if !strings.HasPrefix(e[i], want[i]) {
				t.Errorf("event %d %q, want %q", i, e[i], want[i])
			}
		}
	}
	// Nothing further: no restart, no write.
	if _, err := k.step(ctx, got); err != nil {
		t.Fatal(err)
	}
	if after := get(); after.ResourceVersion != got.ResourceVersion {
		t.Errorf("a step with nothing to do wrote the pod: %+v", after.Status.EphemeralContainerStatuses)
	}
	log, err := k.config.Logs.Log(got, "once", &corev1.PodLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(log(ctx))
	if string(text) != "debugging\n" {
		t.Errorf("log of once %q, want what its command printed", text)
	}

	// Its attached session ends the shell with the session's code.
	k.sessionEnded(got, "shell", 0, 3)
	if _, err := k.step(ctx, got); err != nil {
		t.Fatal(err)
	}
	got = get()
	if term := got.Status.EphemeralContainerStatuses[1].State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Errorf("shell: %+v, want terminated with its session's code 3", got.Status.EphemeralContainerStatuses[1])
	}
	if got.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s after the ephemeral containers ended, want Running", got.Status.Phase)
	}
}

// A pod whose volume names a ConfigMap that is not there gets no sandbox
// and no container: FailedMount about the pod, in the volume plugin's
// words, and another try; once the ConfigMap is there it starts.
func TestStepVolumeNotThere(t *testing.T) {
	pod := statusPod("web", corev1.RestartPolicyAlways, "app")
	pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}, Items: []corev1.KeyToPath{{Key: "app.yaml", Path: "app.yaml"}}}}},
		{Name: "maybe", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "absent", Optional: ptr.To(true)}}},
	}
	k, client, events, get := acceptedPod(t, pod)
	ctx := t.Context()
	// It tries again after a second, then twice as long each time.
	step := func(want string, retry time.Duration) {
		t.Helper()
		accepted := get()
		next, err := k.step(ctx, accepted)
		if err != nil {
			t.Fatal(err)
		}
		if next != retry {
			t.Errorf("next step in %v, want %v", next, retry)
		}
		if got := get(); got.ResourceVersion != accepted.ResourceVersion || got.Status.PodIP != "" {
			t.Errorf("status written (%+v) while the volumes are not set up", got.Status)
		}
		if e := drain(events); len(e) != 1 || e[0] != want {
			t.Errorf("events %q, want %q", e, want)
		}
	}
	step(`Warning FailedMount MountVolume.SetUp failed for volume "cfg" : configmap "app-config" not found`, time.Second)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-config", Namespace: "default"}, Data: map[string]string{"other": "x"}}
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	step(`Warning FailedMount MountVolume.SetUp failed for volume "cfg" : configmap references non-existent config key: app.yaml`, 2*time.Second)

	cm.Data["app.yaml"] = "port: 8080"
	if _, err := client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.step(ctx, get()); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.Status.Phase != corev1.PodRunning || got.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("status %+v, want app running once its volume is there", got.Status)
	}
	if keys := k.waiting.keys("default"); len(keys) != 0 {
		t.Errorf("pods still waiting: %q", keys)
	}
}

// A container whose environment names a Secret or a key that is not there
// waits in CreateContainerConfigError (the sandbox made, the image pulled),
// in makeEnvironmentVariables' words, until they are; an init container
// so waiting holds back the next ones and the containers.
func TestStepConfigNotThere(t *testing.T) {
	pod := statusPod("web", corev1.RestartPolicyAlways, "app")
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "migrate", Image: "busybox:1.36", EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
		}},
		{Name: "seed", Image: "busybox:1.36"},
	}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "PLAIN", Value: "x"},
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
		{Name: "MAYBE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "k", Optional: ptr.To(true)}}},
	}
	pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
	k, client, events, get := acceptedPod(t, pod)
	ctx := t.Context()
	step := func() *corev1.Pod {
		t.Helper()
		if _, err := k.step(ctx, get()); err != nil {
			t.Fatal(err)
		}
		return get()
	}
	waitingFor := func(s corev1.ContainerStatus, message string) {
		t.Helper()
		if w := s.State.Waiting; w == nil || w.Reason != "CreateContainerConfigError" || w.Message != message {
			t.Errorf("%s: %+v, want waiting in CreateContainerConfigError: %s", s.Name, s.State, message)
		}
	}

	got := step()
	waitingFor(got.Status.InitContainerStatuses[0], `configmap "settings" not found`)
	if w := got.Status.InitContainerStatuses[1].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Errorf("seed: %+v, want waiting for migrate", got.Status.InitContainerStatuses[1].State)
	}
	if w := got.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Errorf("app: %+v, want waiting for the init containers", got.Status.ContainerStatuses[0].State)
	}
	if got.Status.Phase != corev1.PodPending || got.Status.PodIP == "" {
		t.Errorf("phase %s, pod IP %q; want Pending with its sandbox's IP", got.Status.Phase, got.Status.PodIP)
	}
	e := drain(events)
	if len(e) != 3 || !strings.HasPrefix(e[0], "Normal Pulling ") || !strings.HasPrefix(e[1], "Normal Pulled ") || e[2] != `Warning Failed Error: configmap "settings" not found` {
		t.Errorf("events %q, want the pull, then Failed", e)
	}

	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got = step()
	for _, s := range got.Status.InitContainerStatuses {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			t.Errorf("%s: %+v, want run to completion", s.Name, s.State)
		}
	}
	waitingFor(got.Status.ContainerStatuses[0], `secret "db" not found`)

	db := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}, Data: map[string][]byte{"user": []byte("app")}}
	if _, err := client.CoreV1().Secrets("default").Create(ctx, db, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitingFor(step().Status.ContainerStatuses[0], "couldn't find key password in Secret default/db")

	db.Data["password"] = []byte("s3cret")
	if _, err := client.CoreV1().Secrets("default").Update(ctx, db, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got = step(); got.Status.Phase != corev1.PodRunning || got.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("status %+v, want app running once its Secret has the key", got.Status)
	}
}

// TestStepInitContainers checks init containers that take time and fail:
// the next one and the containers wait; a failed one is started again
// after a back-off (Init:CrashLoopBackOff) when the pod is restarted, and
// fails the pod when it is never restarted.
func TestStepInitContainers(t *testing.T) {
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		want   corev1.PodPhase
	}{{corev1.RestartPolicyAlways, corev1.PodPending}, {corev1.RestartPolicyNever, corev1.PodFailed}} {
		t.Run(string(tc.policy), func(t *testing.T) {
			pod := statusPod("web", tc.policy, "app")
			pod.Spec.InitContainers = []corev1.Container{
				{Name: "wait", Image: "busybox:1.36", Command: []string{"sh", "-c", "echo waiting; sleep 2"}},
				{Name: "migrate", Image: "busybox:1.36", Command: []string{"sh", "-c", "echo migrating; exit 3"}},
			}
			pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
			k, _, events, get := acceptedPod(t, pod)
			k.SetTimeScale(0.005) // sleep 2 takes 10 ms
			ctx := t.Context()
			step := stepOf(t, k, get)

			got, next := step()
			wait, migrate, app := got.Status.InitContainerStatuses[0], got.Status.InitContainerStatuses[1], got.Status.ContainerStatuses[0]
			if wait.State.Running == nil || migrate.State.Waiting == nil || app.State.Waiting == nil || app.State.Waiting.Reason != "PodInitializing" {
				t.Fatalf("wait %+v, migrate %+v, app %+v; want wait running, the others waiting", wait.State, migrate.State, app.State)
			}
			if next <= 0 || next > 10*time.Millisecond || got.Status.Phase != corev1.PodPending {
				t.Errorf("next step in %v, phase %s; want within wait's 10 ms, Pending", next, got.Status.Phase)
			}
			time.Sleep(next)
			got, _ = step()
			wait, migrate = got.Status.InitContainerStatuses[0], got.Status.InitContainerStatuses[1]
			if term := wait.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" || !wait.Ready {
				t.Errorf("wait: %+v, want completed", wait)
			}
			term := migrate.State.Terminated
			if tc.policy == corev1.RestartPolicyAlways {
				term = migrate.LastTerminationState.Terminated
				if w := migrate.State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" {
					t.Errorf("migrate: %+v, want waiting to be started again", migrate.State)
				}
			}
			if term == nil || term.ExitCode != 3 || term.Reason != "Error" {
				t.Errorf("migrate: %+v, want it to have failed with 3", migrate)
			}
			if got.Status.Phase != tc.want || got.Status.ContainerStatuses[0].State.Waiting == nil {
				t.Errorf("phase %s, app %+v; want %s, app not started", got.Status.Phase, got.Status.ContainerStatuses[0].State, tc.want)
			}
			log, err := k.config.Logs.Log(got, "migrate", &corev1.PodLogOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if text, _ := io.ReadAll(log(ctx)); string(text) != "migrating\n" {
				t.Errorf("migrate's log %q", text)
			}
			if tc.policy == corev1.RestartPolicyAlways {
				if e := drain(events); !slices.ContainsFunc(e, func(s string) bool {
					return strings.HasPrefix(s, "Warning BackOff Back-off restarting failed container migrate")
				}) {
					t.Errorf("events %q, want a back-off", e)
				}
			}
		})
	}
}

// An init container's image pull fails as a container's does, and its start
// delay counts from its turn: the containers wait for it either way.
func TestStepInitContainerPullAndDelay(t *testing.T) {
	ctx := t.Context()
	t.Run("pull fails", func(t *testing.T) {
		pod := statusPod("fetch", corev1.RestartPolicyAlways, "app")
		pod.Annotations = map[string]string{AnnotationImagePull + ".fetch": "fail"}
		pod.Spec.InitContainers = []corev1.Container{{Name: "fetch", Image: "registry.example/fetch:1"}}
		pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
		k, _, events, get := acceptedPod(t, pod)
		for i, want := range []string{"ErrImagePull", "ImagePullBackOff", "ImagePullBackOff"} {
			if _, err := k.step(ctx, get()); err != nil {
				t.Fatal(err)
			}
			got := get()
			fetch, app := got.Status.InitContainerStatuses[0], got.Status.ContainerStatuses[0]
			if w := fetch.State.Waiting; w == nil || w.Reason != want {
				t.Errorf("step %d: fetch %+v, want waiting in %s", i, fetch.State, want)
			}
			if w := app.State.Waiting; w == nil || w.Reason != "PodInitializing" || got.Status.Phase != corev1.PodPending {
				t.Errorf("step %d: app %+v, phase %s; want it waiting for the init container, Pending", i, app.State, got.Status.Phase)
			}
		}
		e := strings.Join(drain(events), "\n")
		for _, want := range []string{`Warning Failed Failed to pull image "registry.example/fetch:1"`, "Warning Failed Error: ErrImagePull", "Warning Failed Error: ImagePullBackOff"} {
			if !strings.Contains(e, want) {
				t.Errorf("events %q lack %q", e, want)
			}
		}
	})
	t.Run("start delay from its turn", func(t *testing.T) {
		pod := statusPod("delayed", corev1.RestartPolicyAlways, "app")
		pod.Annotations = map[string]string{AnnotationStartDelay + ".setup": "2s"}
		pod.Spec.InitContainers = []corev1.Container{
			{Name: "wait", Image: "busybox:1.36", Command: []string{"sleep", "2"}},
			{Name: "setup", Image: "busybox:1.36", Command: []string{"true"}},
		}
		pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
		k, _, _, get := acceptedPod(t, pod)
		k.SetTimeScale(0.005) // 2 s take 10 ms
		step := stepOf(t, k, get)
		got, next := step()
		if got.Status.InitContainerStatuses[0].State.Running == nil || next <= 0 {
			t.Fatalf("wait %+v, next step in %v; want it running", got.Status.InitContainerStatuses[0].State, next)
		}
		time.Sleep(next)
		got, next = step()
		// The pod started more than setup's 10 ms ago; its turn came now.
		if setup := got.Status.InitContainerStatuses[1]; setup.State.Waiting == nil || next <= 0 || next > 20*time.Millisecond {
			t.Fatalf("setup %+v, next step in %v; want it waiting out its delay", setup.State, next)
		}
		time.Sleep(next)
		got, _ = step()
		setup, app := got.Status.InitContainerStatuses[1], got.Status.ContainerStatuses[0]
		if setup.State.Terminated == nil || app.State.Running == nil {
			t.Errorf("setup %+v, app %+v; want setup done and app running", setup.State, app.State)
		}
	})
}

// A sidecar (restartable init container) becomes ready after its ready
// delay, holding the pod's readiness until then, and when its command
// exits it is started again after a back-off while the containers run on.
func TestStepSidecar(t *testing.T) {
	pod := statusPod("meshed", corev1.RestartPolicyAlways, "app")
	pod.Annotations = map[string]string{AnnotationReadyDelay + ".proxy": "2s"}
	pod.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "envoy:v1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Command: []string{"sh", "-c", "echo proxy up; sleep 6; exit 1"}}}
	pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
	k, _, _, get := acceptedPod(t, pod)
	k.SetTimeScale(0.02) // ready after 40 ms, exits after 120 ms, back-off 20 ms
	stepped := stepOf(t, k, get)
	step := func() (proxy, app corev1.ContainerStatus, ready bool, next time.Duration) {
		t.Helper()
		got, next := stepped()
		if got.Status.Phase != corev1.PodRunning {
			t.Errorf("phase %s, want Running", got.Status.Phase)
		}
		for _, c := range got.Status.Conditions {
			ready = ready || c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
		}
		return got.Status.InitContainerStatuses[0], got.Status.ContainerStatuses[0], ready, next
	}
	proxy, app, ready, next := step()
	if proxy.State.Running == nil || proxy.Ready || app.State.Running == nil || ready || next <= 0 {
		t.Fatalf("proxy %+v ready %v, app %+v, pod ready %v; want both running, the proxy and the pod not ready yet", proxy.State, proxy.Ready, app.State, ready)
	}
	time.Sleep(next)
	proxy, _, ready, next = step()
	if proxy.State.Running == nil || !proxy.Ready || !ready {
		t.Fatalf("proxy %+v ready %v, pod ready %v; want the proxy and the pod ready after its delay", proxy.State, proxy.Ready, ready)
	}
	time.Sleep(next)
	proxy, app, ready, next = step()
	if w := proxy.State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" || proxy.LastTerminationState.Terminated == nil ||
		proxy.LastTerminationState.Terminated.ExitCode != 1 || app.State.Running == nil || app.RestartCount != 0 || ready {
		t.Fatalf("proxy %+v (last %+v), app %+v, pod ready %v; want the proxy backing off, the app running on, the pod not ready", proxy.State, proxy.LastTerminationState, app.State, ready)
	}
	time.Sleep(next)
	proxy, _, _, _ = step()
	if proxy.State.Running == nil || proxy.RestartCount != 1 {
		t.Errorf("proxy %+v, %d restarts; want it running again", proxy.State, proxy.RestartCount)
	}
}

// A container started again after a crash has its config made again: if
// the ConfigMap it names is gone by then, it waits in
// CreateContainerConfigError, its restart count grows only when it does
// start, and it starts on a fresh file system (its volumes keep theirs).
func TestStepRestartMakesConfigAgain(t *testing.T) {
	settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"}, Data: map[string]string{"MODE": "test"}}
	pod := statusPod("crashy", corev1.RestartPolicyAlways, "app")
	pod.Annotations = map[string]string{AnnotationRestartBackoff: "20ms"}
	pod.Spec.Containers[0].Command = []string{"sh", "-c", "printenv MODE; exit 1"}
	pod.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/data"}}
	pod.Status = corev1.PodStatus{Conditions: pod.Status.Conditions}
	k, client, events, get := acceptedPod(t, pod)
	ctx := t.Context()
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, settings, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stepped := stepOf(t, k, get)
	step := func() (corev1.ContainerStatus, time.Duration) {
		t.Helper()
		got, next := stepped()
		return got.Status.ContainerStatuses[0], next
	}
	app, next := step()
	if w := app.State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" || app.RestartCount != 0 || next <= 0 {
		t.Fatalf("app %+v, %d restarts; want it crashed once, backing off", app.State, app.RestartCount)
	}
	// What its first run wrote: to the emptyDir, and to its own files.
	for _, p := range []string{"/data/kept", "/tmp/lost"} {
		if err := k.scratch.writeFile(pod, &pod.Spec.Containers[0], p, []byte("x"), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.CoreV1().ConfigMaps("default").Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	drain(events)
	time.Sleep(next)
	app, _ = step()
	if w := app.State.Waiting; w == nil || w.Reason != "CreateContainerConfigError" || w.Message != `configmap "settings" not found` || app.RestartCount != 0 {
		t.Fatalf("app %+v, %d restarts; want it waiting for its ConfigMap, not counted as restarted", app.State, app.RestartCount)
	}
	if e := drain(events); !slices.Contains(e, `Warning Failed Error: configmap "settings" not found`) {
		t.Errorf("events %q, want the config's failure", e)
	}
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, settings, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	app, _ = step()
	if last := app.LastTerminationState.Terminated; app.RestartCount != 1 || last == nil || last.ContainerID != app.ContainerID {
		t.Errorf("app %+v (last %+v), %d restarts; want its second run ended, counted once", app.State, app.LastTerminationState, app.RestartCount)
	}
	// Its second run has a fresh file system; the volume kept its file.
	files := k.files(ctx, get(), &pod.Spec.Containers[0])
	if _, kept := files["/data/kept"]; !kept {
		t.Errorf("the emptyDir's file is gone after a restart")
	}
	if _, lost := files["/tmp/lost"]; lost {
		t.Errorf("the container's own file outlived its restart")
	}
	log, err := k.config.Logs.Log(get(), "app", &corev1.PodLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := io.ReadAll(log(ctx)); string(text) != "test\n" {
		t.Errorf("second run's log %q", text)
	}
}

// stepOf steps the pod get returns, and gives it back with when its next
// step is due.
func stepOf(t *testing.T, k *Kubelet, get func() *corev1.Pod) func() (*corev1.Pod, time.Duration) {
	return func() (*corev1.Pod, time.Duration) {
		t.Helper()
		next, err := k.step(t.Context(), get())
		if err != nil {
			t.Fatal(err)
		}
		return get(), next
	}
}
