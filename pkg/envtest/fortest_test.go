package envtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// Each ForTest test finds the cluster fresh: the object the other one made
// is gone, whichever runs first. The two run one after the other, on one
// shared server.
func TestForTestIsolation(t *testing.T) {
	var hosts []string
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			cfg := ForTest(t, WithCRDDirectoryPaths("testdata/crds"))
			hosts = append(hosts, cfg.Host)
			c := kubernetes.NewForConfigOrDie(cfg)
			ctx := context.Background()
			cms, err := c.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{LabelSelector: "made-by"})
			if err != nil {
				t.Fatal(err)
			}
			if len(cms.Items) != 0 {
				t.Errorf("the cluster is not fresh: %d ConfigMaps of earlier tests", len(cms.Items))
			}
			if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				Name: name, Labels: map[string]string{"made-by": name},
			}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if len(hosts) == 2 && hosts[0] != hosts[1] {
		t.Errorf("two servers for one set of options: %v", hosts)
	}
}

// Parallel tests each hold a server of their own; ClientForTest's
// controller-runtime client reads what the test wrote.
func TestForTestParallel(t *testing.T) {
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := ClientForTest(t)
			ctx := context.Background()
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only", Namespace: "default"}, Data: map[string]string{"test": name}}
			if err := c.Create(ctx, cm); err != nil {
				t.Fatalf("another parallel test's object is here: %v", err)
			}
			var got corev1.ConfigMap
			if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "only"}, &got); err != nil || got.Data["test"] != name {
				t.Errorf("read back: %v %v", err, got.Data)
			}
			env := EnvironmentForTest(t)
			if err := env.Settle(); err != nil {
				t.Error(err)
			}
		})
	}
}

// ForTest's options reach the server: the controllers run and
// settle-on-write is on (what settle-on-write guarantees is pkg/server's
// TestSettleOnWrite).
func TestForTestOptions(t *testing.T) {
	env := EnvironmentForTest(t, WithControllers("*"), WithSettleOnWrite())
	ctx := context.Background()
	settings, err := env.Control().Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if settings.SettleOnWrite == nil || !*settings.SettleOnWrite {
		t.Errorf("settings: settleOnWrite %v", settings.SettleOnWrite)
	}
	c := kubernetes.NewForConfigOrDie(env.Config)
	if _, err := c.AppsV1().Deployments("default").Create(ctx, deployment("web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 2, nil
	}); err != nil {
		t.Errorf("the Deployment's pods Running: %v", err)
	}
}

// WithSchedulerConfig runs kube-scheduler with a profile of the test's:
// a pod asking for it is scheduled (with kube-scheduler's defaults no
// scheduler answers to that name and it stays pending).
func TestForTestSchedulerConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "scheduler.yaml")
	config := "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: default-scheduler\n- schedulerName: test-scheduler\n"
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	env := EnvironmentForTest(t, WithControllers("*"), WithSettleOnWrite(), WithSchedulerConfig(file))
	c := kubernetes.NewForConfigOrDie(env.Config)
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "custom"}, Spec: corev1.PodSpec{
		SchedulerName: "test-scheduler",
		Containers:    []corev1.Container{{Name: "app", Image: "nginx"}},
	}}
	if _, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.CoreV1().Pods("default").Get(ctx, "custom", metav1.GetOptions{})
	if err != nil || got.Spec.NodeName != "node-1" || got.Status.Phase != corev1.PodRunning {
		t.Errorf("pod of the test's profile: %v, node %q, phase %s", err, got.Spec.NodeName, got.Status.Phase)
	}
}

// exec into a pod of the in-process server: an exec rule's answer and a
// local command, over SPDY.
func TestForTestExec(t *testing.T) {
	rules := []Rule{{Match: Match{Image: "postgres*"}, Behaviour: Behaviour{Exec: []ExecRule{
		{Command: "pg_isready", Stdout: "accepting connections\n"},
		{Command: "local *", Local: []string{"/bin/sh", "-c", "echo from a local shell; exit 4"}},
	}}}}
	env := EnvironmentForTest(t, WithControllers("*"), WithSettleOnWrite(), WithPodBehaviours(rules...), WithAllowLocalExec())
	c := kubernetes.NewForConfigOrDie(env.Config)
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "postgres:17"}}}}
	if _, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	exec := func(command ...string) (string, error) {
		req := c.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("db").SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		executor, err := remotecommand.NewSPDYExecutor(env.Config, "POST", req.URL())
		if err != nil {
			t.Fatal(err)
		}
		var out, stderr bytes.Buffer // one each: they are written at once
		err = executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &stderr})
		return out.String() + stderr.String(), err
	}
	if out, err := exec("pg_isready"); err != nil || out != "accepting connections\n" {
		t.Errorf("exec rule: %v %q", err, out)
	}
	if out, err := exec("sh", "-c", "echo simulated; exit 3"); err == nil || out != "simulated\n" {
		t.Errorf("simulated shell: %v %q", err, out)
	}
	var exit utilexec.CodeExitError
	if out, err := exec("local", "run"); !errors.As(err, &exit) || exit.Code != 4 || out != "from a local shell\n" {
		t.Errorf("local command: %v %q", err, out)
	}
}
