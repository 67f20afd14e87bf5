package e2e

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/internal/testload"
	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// A deleted pod ends as a kubelet ends it: its containers stop (Killing),
// it reports them terminated with Ready False, and only then is it gone.
// A container that ignores SIGTERM (honor-grace-period) is killed when its
// grace period ends: exit code 137, the pod Failed.
func TestTermination(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	ctx := t.Context()
	for _, tc := range []struct {
		name     string
		annotate bool
		exitCode int32
		reason   string
		phase    corev1.PodPhase
	}{
		{name: "heeds", exitCode: 0, reason: "Completed", phase: corev1.PodSucceeded},
		{name: "ignores", annotate: true, exitCode: 137, reason: "Error", phase: corev1.PodFailed},
	} {
		p := pod(tc.name, nil)
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		if tc.annotate {
			p.Annotations = map[string]string{"mockernetes.io/honor-grace-period": "true"}
		}
		if _, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var running *corev1.Pod
		eventually(t, tc.name+" running", func(ctx context.Context) (bool, error) {
			got, err := c.CoreV1().Pods(ns).Get(ctx, tc.name, metav1.GetOptions{})
			running = got
			return err == nil && podReady(got), nil
		})
		w, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + tc.name, ResourceVersion: running.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		// kubectl waits for Ready=False from before the delete.
		waited := make(chan error, 1)
		go func() {
			out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "wait", "--for=condition=Ready=false", "pod/"+tc.name, "--timeout=60s")
			if err != nil {
				t.Logf("kubectl wait: %s", out)
			}
			waited <- err
		}()
		time.Sleep(500 * time.Millisecond) // kubectl is watching
		if err := c.CoreV1().Pods(ns).Delete(ctx, tc.name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		var stopped *corev1.Pod
		deleted := false
		timeout := time.After(time.Minute)
		for !deleted {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatal("watch ended")
				}
				got, _ := ev.Object.(*corev1.Pod)
				switch {
				case ev.Type == watch.Deleted:
					deleted = true
				case ev.Type == watch.Modified && got != nil && len(got.Status.ContainerStatuses) == 1 && got.Status.ContainerStatuses[0].State.Terminated != nil:
					stopped = got
				}
			case <-timeout:
				t.Fatalf("%s never removed", tc.name)
			}
		}
		w.Stop()
		if stopped == nil {
			t.Fatalf("%s: removed without reporting its containers stopped", tc.name)
		}
		term := stopped.Status.ContainerStatuses[0].State.Terminated
		ready := condition(stopped, corev1.PodReady)
		if term.ExitCode != tc.exitCode || term.Reason != tc.reason || stopped.Status.Phase != tc.phase || ready == nil || ready.Status != corev1.ConditionFalse ||
			stopped.Status.ContainerStatuses[0].Ready {
			t.Errorf("%s stopping: %+v, phase %s, Ready %+v", tc.name, term, stopped.Status.Phase, ready)
		}
		if err := <-waited; err != nil {
			t.Errorf("%s: kubectl wait --for=condition=Ready=false: %v", tc.name, err)
		}
		eventually(t, tc.name+" Killing event", func(ctx context.Context) (bool, error) {
			evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Killing,involvedObject.name=" + tc.name})
			return err == nil && len(evs.Items) == 1 && evs.Items[0].Message == "Stopping container app", nil
		})
	}
}

// A container whose command is a simple script runs for its sleeps,
// prints its echoes and exits with its code; --time-scale shrinks the
// sleeps.
func TestSimpleCommands(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	ctx := t.Context()
	job := func(name string, command ...string) *batchv1.Job {
		return &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "work", Image: "busybox:1.36", Command: command}},
			}}},
		}
	}
	complete := func(t *testing.T, c kubernetes.Interface, ns, name string, want batchv1.JobConditionType) *batchv1.Job {
		t.Helper()
		var done *batchv1.Job
		eventually(t, name+" "+string(want), func(ctx context.Context) (bool, error) {
			j, err := c.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, cond := range j.Status.Conditions {
				if cond.Type == want && cond.Status == corev1.ConditionTrue {
					done = j
					return true, nil
				}
			}
			return false, nil
		})
		return done
	}
	if _, err := c.BatchV1().Jobs(ns).Create(ctx, job("sleeper", "sh", "-c", "echo working; sleep 2; echo done"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BatchV1().Jobs(ns).Create(ctx, job("failing", "sh", "-c", "echo trying && exit 3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	j := complete(t, c, ns, "sleeper", batchv1.JobComplete)
	if took := j.Status.CompletionTime.Sub(j.Status.StartTime.Time); took < 2*time.Second {
		t.Errorf("a Job running `sleep 2` completed after %v", took)
	}
	complete(t, c, ns, "failing", batchv1.JobFailed)
	// Lines are printed when the script prints them: done two seconds
	// after working; a line after a long sleep is not there yet.
	patient := pod("patient", nil)
	patient.Spec.Containers[0].Command = []string{"sh", "-c", "echo waiting; sleep 600; echo finally"}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, patient, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "patient running", func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(ctx, "patient", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	if out, err := logs(t, c, ns, "patient", &corev1.PodLogOptions{}); err != nil || out != "waiting\n" {
		t.Errorf("log of a script sleeping before its last line: %v %q, want only the line before the sleep", err, out)
	}
	sleeper, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=sleeper"})
	if err != nil || len(sleeper.Items) != 1 {
		t.Fatalf("sleeper pods: %v %+v", err, sleeper)
	}
	out, err := logs(t, c, ns, sleeper.Items[0].Name, &corev1.PodLogOptions{Timestamps: true})
	var at []time.Time
	for line := range strings.Lines(out) {
		ts, _, _ := strings.Cut(line, " ")
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			at = append(at, t)
		}
	}
	if err != nil || len(at) != 2 || at[1].Sub(at[0]) != 2*time.Second {
		t.Errorf("sleeper's log with timestamps: %v %q, want done 2s after working", err, out)
	}
	for name, want := range map[string]struct {
		log  string
		code int32
	}{"sleeper": {"working\ndone\n", 0}, "failing": {"trying\n", 3}} {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + name})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("%s pods: %v %+v", name, err, pods)
		}
		p := pods.Items[0]
		if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != want.code {
			t.Errorf("%s exit: %+v, want %d", name, term, want.code)
		}
		if out, err := logs(t, c, ns, p.Name, &corev1.PodLogOptions{}); err != nil || out != want.log {
			t.Errorf("%s log: %v %q, want %q", name, err, out, want.log)
		}
	}

	// A hundredth of the time: `sleep 300` takes 3 s.
	s := startTestServer(t, "--time-scale", "0.01", "--gateway-api=false")
	fast := s.client(t)
	fastNS := newNamespace(t, fast)
	if _, err := fast.BatchV1().Jobs(fastNS).Create(ctx, job("long", "sleep", "300"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	j = complete(t, fast, fastNS, "long", batchv1.JobComplete)
	if took := j.Status.CompletionTime.Sub(j.Status.StartTime.Time); took < 3*time.Second || took > 60*time.Second {
		t.Errorf("`sleep 300` at a time scale of 0.01 took %v", took)
	}

	// The admin API changes it at run time: a five-hundredth.
	tc, err := testcontrol.New(s.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	settings, err := tc.SetSettings(ctx, testcontrol.Settings{TimeScale: ptr.To(0.002)})
	if err != nil || settings.TimeScale == nil || *settings.TimeScale != 0.002 {
		t.Fatalf("timeScale setting: %v %+v", err, settings)
	}
	if _, err := tc.SetSettings(ctx, testcontrol.Settings{TimeScale: ptr.To(0.0)}); err == nil || !strings.Contains(err.Error(), "timeScale: 0 is not above 0") {
		t.Errorf("timeScale 0: %v", err)
	}
	if _, err := fast.BatchV1().Jobs(fastNS).Create(ctx, job("shorter", "sleep", "300"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	j = complete(t, fast, fastNS, "shorter", batchv1.JobComplete)
	if took := j.Status.CompletionTime.Sub(j.Status.StartTime.Time); took > 2*time.Second {
		t.Errorf("`sleep 300` at a time scale of 0.002 took %v", took)
	}
}

// SIGTERM with requests and watches in flight: the server exits cleanly
// (status 0) within 2 s.
func TestShutdownUnderLoad(t *testing.T) {
	s, err := startServer(t.TempDir() + "/state")
	if err != nil {
		t.Fatal(err)
	}
	endLoad, err := testload.Start(context.Background(), s.client(t), "default", 10, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer endLoad()
	time.Sleep(time.Second)
	start := time.Now()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("SIGTERM to exit: %v", took)
	if took > 2*time.Second {
		t.Errorf("SIGTERM to exit with requests and watches in flight: %v", took)
	}
}

// Sidecars (restartable init containers) run beside the containers, as
// the kubelet runs them: started after the init containers before them,
// Running and Ready for the pod's life, stopped after the containers when
// the pod is deleted (Killing about each), and stopped once the
// containers of a pod that is not restarted have ended.
func TestSidecars(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	ctx := t.Context()
	withSidecar := func(name string, restart corev1.RestartPolicy) *corev1.Pod {
		p := pod(name, nil)
		p.Spec.RestartPolicy = restart
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		p.Spec.InitContainers = []corev1.Container{
			{Name: "setup", Image: "busybox:1.36"},
			{Name: "proxy", Image: "envoy:v1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
		}
		return p
	}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, withSidecar("served", corev1.RestartPolicyAlways), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var running *corev1.Pod
	eventually(t, "pod with a sidecar ready", func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().Pods(ns).Get(ctx, "served", metav1.GetOptions{})
		running = got
		return err == nil && podReady(got), nil
	})
	inits := running.Status.InitContainerStatuses
	if len(inits) != 2 || inits[0].State.Terminated == nil || inits[0].State.Terminated.Reason != "Completed" ||
		inits[1].State.Running == nil || !inits[1].Ready || !ptr.Deref(inits[1].Started, false) || inits[1].Image != "docker.io/library/envoy:v1" {
		t.Fatalf("init container statuses of a running pod: %+v", inits)
	}
	// The runtime's IDs, as a kubelet reports them.
	app := running.Status.ContainerStatuses[0]
	for _, s := range []corev1.ContainerStatus{inits[0], inits[1], app} {
		if !regexp.MustCompile(`^containerd://[0-9a-f]{64}$`).MatchString(s.ContainerID) || !regexp.MustCompile(`^docker\.io/library/[a-z]+@sha256:[0-9a-f]{64}$`).MatchString(s.ImageID) {
			t.Errorf("container %s: containerID %q, imageID %q", s.Name, s.ContainerID, s.ImageID)
		}
	}
	if inits[0].State.Terminated.ContainerID != inits[0].ContainerID || app.ContainerID == inits[1].ContainerID {
		t.Errorf("container IDs: %+v", running.Status)
	}
	if err := c.CoreV1().Pods(ns).Delete(ctx, "served", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Killing events of the container and the sidecar", func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Killing,involvedObject.name=served"})
		if err != nil || len(evs.Items) != 2 {
			return false, err
		}
		var got []string
		for _, e := range evs.Items {
			got = append(got, e.InvolvedObject.FieldPath+" "+e.Message)
		}
		want := "spec.containers{app} Stopping container app, spec.initContainers{proxy} Stopping container proxy"
		if strings.Join(sortedStrings(got), ", ") != want {
			t.Fatalf("Killing events: %v, want %s", got, want)
		}
		return true, nil
	})

	// A pod that is not restarted: its container runs to completion, then
	// the sidecar is stopped and the pod Succeeded.
	if _, err := c.CoreV1().Pods(ns).Create(ctx, withSidecar("batch", corev1.RestartPolicyNever), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod with a sidecar succeeded", func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().Pods(ns).Get(ctx, "batch", metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.PodSucceeded {
			return false, err
		}
		if s := got.Status.InitContainerStatuses; len(s) != 2 || s[1].State.Terminated == nil || s[1].State.Terminated.ExitCode != 0 || s[1].Ready {
			t.Fatalf("sidecar of a succeeded pod: %+v", s)
		}
		return true, nil
	})

	// A sidecar whose command exits is started again after a back-off;
	// the containers run on.
	crashing := withSidecar("crashing", corev1.RestartPolicyAlways)
	crashing.Spec.InitContainers[1].Command = []string{"sh", "-c", "echo proxy failed; exit 1"}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, crashing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a crashing sidecar restarted", func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().Pods(ns).Get(ctx, "crashing", metav1.GetOptions{})
		if err != nil || len(got.Status.InitContainerStatuses) != 2 || got.Status.InitContainerStatuses[1].RestartCount < 2 {
			return false, err
		}
		proxy, app := got.Status.InitContainerStatuses[1], got.Status.ContainerStatuses[0]
		if last := proxy.LastTerminationState.Terminated; last == nil || last.ExitCode != 1 || app.State.Running == nil || app.RestartCount != 0 || got.Status.Phase != corev1.PodRunning {
			t.Fatalf("pod with a crashing sidecar: proxy %+v, app %+v, phase %s", proxy, app.State, got.Status.Phase)
		}
		return true, nil
	})
	if out, err := logs(t, c, ns, "crashing", &corev1.PodLogOptions{Container: "proxy", Previous: true}); err != nil || out != "proxy failed\n" {
		t.Errorf("previous log of the sidecar: %v %q", err, out)
	}
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
