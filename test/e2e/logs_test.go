package e2e

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func readyPod(t *testing.T, c kubernetes.Interface, ns string, p *corev1.Pod) {
	t.Helper()
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, p.Name+" ready", func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		return err == nil && podReady(got), nil
	})
}

func logs(t *testing.T, c kubernetes.Interface, ns, name string, o *corev1.PodLogOptions) (string, error) {
	t.Helper()
	// As kubectl reads logs: Stream decodes the error Status of a refused
	// request (DoRaw cannot: the response is negotiated for text/plain).
	r, err := c.CoreV1().Pods(ns).GetLogs(name, o).Stream(t.Context())
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

func TestPodLogs(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	web := pod("web", nil)
	web.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
	readyPod(t, c, ns, web)

	all, err := logs(t, c, ns, "web", &corev1.PodLogOptions{})
	if err != nil || all != "Starting app (image nginx:1.27)\nListening on tcp port 80\napp is ready\n" {
		t.Fatalf("log: %v %q", err, all)
	}
	for _, tc := range []struct {
		name string
		o    corev1.PodLogOptions
		want func(string) bool
	}{
		{"container", corev1.PodLogOptions{Container: "app"}, func(s string) bool { return s == all }},
		{"tailLines", corev1.PodLogOptions{TailLines: ptr.To[int64](1)}, func(s string) bool { return s == "app is ready\n" }},
		{"tailLines=0", corev1.PodLogOptions{TailLines: ptr.To[int64](0)}, func(s string) bool { return s == "" }},
		{"limitBytes", corev1.PodLogOptions{LimitBytes: ptr.To[int64](8)}, func(s string) bool { return s == "Starting" }},
		{"timestamps", corev1.PodLogOptions{Timestamps: true}, func(s string) bool {
			first, _, _ := strings.Cut(s, "\n")
			ts, text, _ := strings.Cut(first, " ")
			_, err := time.Parse(time.RFC3339Nano, ts)
			return err == nil && text == "Starting app (image nginx:1.27)"
		}},
		{"sinceSeconds", corev1.PodLogOptions{SinceSeconds: ptr.To[int64](3600)}, func(s string) bool { return s == all }},
		{"sinceTime future", corev1.PodLogOptions{SinceTime: &metav1.Time{Time: time.Now().Add(time.Hour)}}, func(s string) bool { return s == "" }},
	} {
		got, err := logs(t, c, ns, "web", &tc.o)
		if err != nil || !tc.want(got) {
			t.Errorf("%s: %v %q", tc.name, err, got)
		}
	}

	// follow streams until the client leaves.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	stream, err := c.CoreV1().Pods(ns).GetLogs("web", &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reader := bufio.NewReader(stream)
	for i := range 3 {
		if _, err := reader.ReadString('\n'); err != nil {
			t.Fatalf("follow line %d: %v", i, err)
		}
	}
	done := make(chan error, 1)
	go func() { _, err := reader.ReadString('\n'); done <- err }()
	select {
	case err := <-done:
		t.Errorf("follow ended while the container runs: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	stream.Close()

	// Errors, as kube-apiserver and the kubelet word them.
	two := pod("two", nil)
	two.Spec.Containers = append(two.Spec.Containers, corev1.Container{Name: "sidecar", Image: "busybox"})
	two.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox"}}
	readyPod(t, c, ns, two)
	slow := pod("slow", nil)
	slow.Spec.NodeName = "node-a" // a node without a kubelet: never started
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), slow, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pod string
		o   corev1.PodLogOptions
		msg string
	}{
		{"two", corev1.PodLogOptions{}, "a container name must be specified for pod two, choose one of: [app sidecar] or one of the init containers: [setup]"},
		{"web", corev1.PodLogOptions{Container: "nope"}, "container nope is not valid for pod web"},
		{"web", corev1.PodLogOptions{Previous: true}, `previous terminated container "app" in pod "web" not found`},
		{"slow", corev1.PodLogOptions{}, `container "app" in pod "slow" is waiting to start - no logs yet`},
	} {
		_, err := logs(t, c, ns, tc.pod, &tc.o)
		if !apierrors.IsBadRequest(err) || err.Error() != tc.msg {
			t.Errorf("%s %+v: got %v, want 400 %q", tc.pod, tc.o, err, tc.msg)
		}
	}
	_, err = logs(t, c, ns, "web", &corev1.PodLogOptions{TailLines: ptr.To[int64](-1)})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "tailLines: Invalid value: -1: must be greater than or equal to 0") {
		t.Errorf("negative tailLines: %v", err)
	}
	if got, err := logs(t, c, ns, "two", &corev1.PodLogOptions{Container: "setup"}); err != nil || !strings.HasPrefix(got, "Starting setup") {
		t.Errorf("init container log: %v %q", err, got)
	}
	_, err = logs(t, c, ns, "missing", &corev1.PodLogOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("log of a missing pod: %v", err)
	}

	// kubectl logs, -f, -p.
	out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "logs", "web")
	if err != nil || out != all {
		t.Errorf("kubectl logs: %v %q", err, out)
	}
	out, err = shared.kubectl(t, kubectlBin, "", "-n", ns, "logs", "-p", "web")
	if err == nil || !strings.Contains(out, `previous terminated container "app" in pod "web" not found`) {
		t.Errorf("kubectl logs -p: %v %q", err, out)
	}
	fctx, fcancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer fcancel()
	var fout strings.Builder
	cmd := exec.CommandContext(fctx, kubectlBin, "--kubeconfig", shared.kubeconfig, "-n", ns, "logs", "-f", "web")
	cmd.Stdout = &fout
	if err := cmd.Run(); fctx.Err() == nil || fout.String() != all {
		t.Errorf("kubectl logs -f stopped by itself (%v) or printed %q", err, fout.String())
	}
}
