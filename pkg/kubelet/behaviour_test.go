package kubelet

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
)

// Precedence: defaults, then matching rules in order (a later one wins
// field by field), then the pod's annotations, the container's own key over
// the plain one; a readiness probe's initial delay is the least ready delay.
func TestBehaviourPrecedence(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "web"}, Annotations: map[string]string{
			AnnotationExitCode:                 "3",
			AnnotationExitCode + ".sidecar":    "4",
			AnnotationStartDelay:               "not a duration",
			AnnotationRestartBackoff + ".main": "250ms",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "main", Image: "nginx:1.27", ReadinessProbe: &corev1.Probe{InitialDelaySeconds: 5}},
			{Name: "sidecar", Image: "busybox:1.36"},
		}},
	}
	rules := []clusterconfig.Rule{
		{Match: clusterconfig.Match{Labels: "app=web"}, Behaviour: clusterconfig.Behaviour{StartDelay: &metav1.Duration{Duration: time.Second}, ReadyDelay: &metav1.Duration{Duration: 2 * time.Second}, ExitCode: ptr.To[int32](1)}},
		{Match: clusterconfig.Match{Image: "nginx:*"}, Behaviour: clusterconfig.Behaviour{StartDelay: &metav1.Duration{Duration: 3 * time.Second}, Logs: []string{"from a rule"}}},
		{Match: clusterconfig.Match{Namespace: "other"}, Behaviour: clusterconfig.Behaviour{NeverReady: ptr.To(true)}},
		{Match: clusterconfig.Match{Name: "q*"}, Behaviour: clusterconfig.Behaviour{Stdin: "echo"}},
		{Match: clusterconfig.Match{Name: "p*"}, Behaviour: clusterconfig.Behaviour{PortForward: []clusterconfig.PortForward{{Port: 80, Address: "127.0.0.1:1"}}}},
	}
	main := behaviourOf(pod, pod.Spec.Containers[0], rules)
	if main.startDelay != 3*time.Second || main.readyDelay != 5*time.Second || !main.exits || main.exitCode != 3 ||
		main.backoff != 250*time.Millisecond || main.neverReady || fmt.Sprint(texts(main.logs)) != "[from a rule]" ||
		main.stdin != "" || len(main.forwards) != 1 {
		t.Errorf("main: %+v", main)
	}
	sidecar := behaviourOf(pod, pod.Spec.Containers[1], rules)
	if sidecar.startDelay != time.Second || sidecar.readyDelay != 2*time.Second || sidecar.exitCode != 4 || sidecar.backoff != time.Second {
		t.Errorf("sidecar: %+v", sidecar)
	}
	if got := (behaviour{backoff: time.Second}).backoffFor(10); got != 5*time.Minute {
		t.Errorf("back-off after 10 restarts: %v, want the 5 minute cap", got)
	}
	for _, tc := range []struct {
		b    behaviour
		want string
	}{{behaviour{exitCode: 0}, "Completed"}, {behaviour{exitCode: 2}, "Error"}, {behaviour{exitCode: 137, oomKilled: true}, "OOMKilled"}} {
		if got := tc.b.terminatedReason(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.b, got, tc.want)
		}
	}
}

// The pod's phase and conditions from its containers, as the kubelet's
// generateAPIPodStatus derives them.
func TestDerivePodStatus(t *testing.T) {
	client := fake.NewClientset()
	k, err := New(Config{Nodes: []clusterconfig.NodeSpec{{Name: "node-1"}, {Name: "node-2"}}, Logs: NewLogs()}, client, informers.NewSharedInformerFactory(client, 0))
	if err != nil {
		t.Fatal(err)
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	creating := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	exited := func(code int32) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}
	}
	for _, tc := range []struct {
		name       string
		states     []corev1.ContainerState
		ready      []bool
		phase      corev1.PodPhase
		podReady   corev1.ConditionStatus
		readyMsg   string
		sandbox    corev1.ConditionStatus
		wantPodIP  bool
		restartOne bool
	}{
		{name: "creating", states: []corev1.ContainerState{creating, creating}, ready: []bool{false, false}, phase: corev1.PodPending,
			podReady: corev1.ConditionFalse, readyMsg: "containers with unready status: [a b]", sandbox: corev1.ConditionFalse},
		// Pending while a container waits to start (getPhase), though the
		// sandbox is up and the pod has its IP.
		{name: "one started", states: []corev1.ContainerState{running, creating}, ready: []bool{true, false}, phase: corev1.PodPending,
			podReady: corev1.ConditionFalse, readyMsg: "containers with unready status: [b]", sandbox: corev1.ConditionTrue, wantPodIP: true},
		{name: "all ready", states: []corev1.ContainerState{running, running}, ready: []bool{true, true}, phase: corev1.PodRunning,
			podReady: corev1.ConditionTrue, sandbox: corev1.ConditionTrue, wantPodIP: true},
		{name: "succeeded", states: []corev1.ContainerState{exited(0), exited(0)}, ready: []bool{false, false}, phase: corev1.PodSucceeded,
			podReady: corev1.ConditionFalse, sandbox: corev1.ConditionFalse, wantPodIP: true},
		{name: "failed", states: []corev1.ContainerState{exited(0), exited(1)}, ready: []bool{false, false}, phase: corev1.PodFailed,
			podReady: corev1.ConditionFalse, sandbox: corev1.ConditionFalse, wantPodIP: true},
		{name: "crash looping", states: []corev1.ContainerState{{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, running},
			ready: []bool{false, true}, phase: corev1.PodRunning, podReady: corev1.ConditionFalse, readyMsg: "containers with unready status: [a]",
			sandbox: corev1.ConditionTrue, wantPodIP: true, restartOne: true},
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: tc.name, Generation: 2},
			Spec:       corev1.PodSpec{NodeName: "node-2", RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}},
			Status:     corev1.PodStatus{HostIP: "172.18.0.4"},
		}
		p := pod.DeepCopy()
		for i, st := range tc.states {
			cs := corev1.ContainerStatus{Name: pod.Spec.Containers[i].Name, State: st, Ready: tc.ready[i]}
			if i == 0 && tc.restartOne {
				cs.RestartCount = 1
				cs.LastTerminationState = exited(1)
				pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
			}
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, cs)
		}
		if err := k.derivePodStatus(pod, p); err != nil {
			t.Fatal(err)
		}
		ready, sandbox := condition(p, corev1.PodReady), condition(p, corev1.PodReadyToStartContainers)
		if p.Status.Phase != tc.phase || ready == nil || ready.Status != tc.podReady || ready.Message != tc.readyMsg ||
			ready.ObservedGeneration != 2 || sandbox == nil || sandbox.Status != tc.sandbox {
			t.Errorf("%s: phase %s, Ready %+v, PodReadyToStartContainers %+v", tc.name, p.Status.Phase, ready, sandbox)
		}
		if (p.Status.PodIP != "") != tc.wantPodIP || (tc.wantPodIP && p.Status.PodIP[:len("10.244.1.")] != "10.244.1.") {
			t.Errorf("%s: pod IP %q", tc.name, p.Status.PodIP)
		}
	}
}

func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
