package e2e

import (
	"context"
	"io"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

const clusterConfig = `nodes:
- name: worker-a
  labels: {disktype: ssd}
- name: worker-b
  taints:
  - {key: dedicated, value: gpu, effect: NoSchedule}
  capacity: {cpu: "2", memory: 4Gi, pods: "10"}
podBehaviours:
- match: {labels: "app=flaky"}
  behaviour: {exitCode: 1, restartBackoff: 50ms}
- match: {image: "busybox*", namespace: default}
  behaviour: {logs: ["hello from busybox"]}
`

// Nodes and pod behaviours from --cluster-config.
func TestClusterConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(file, []byte(clusterConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startTestServer(t, "--cluster-config", file, "--gateway-api=false")
	c := s.client(t)
	nodes, err := c.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	// The two of the file, and the control plane's.
	if err != nil || len(nodes.Items) != 3 {
		t.Fatalf("nodes: %v %v", err, nodes)
	}
	b, err := c.CoreV1().Nodes().Get(t.Context(), "worker-b", metav1.GetOptions{})
	if err != nil || len(b.Spec.Taints) != 1 || b.Spec.Taints[0].Key != "dedicated" || b.Status.Allocatable.Cpu().String() != "2" {
		t.Errorf("worker-b: %v %+v %v", err, b.Spec.Taints, b.Status.Allocatable)
	}

	ssd := pod("ssd", nil)
	ssd.Spec.NodeSelector = map[string]string{"disktype": "ssd"}
	gpu := pod("gpu", nil)
	gpu.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "worker-b"}
	gpu.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	flaky := pod("flaky", map[string]string{"app": "flaky"})
	box := pod("box", nil)
	box.Spec.Containers[0].Image = "busybox:1.36"
	for _, p := range []*corev1.Pod{ssd, gpu, flaky, box} {
		if _, err := c.CoreV1().Pods("default").Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, node := range map[string]string{"ssd": "worker-a", "gpu": "worker-b"} {
		eventually(t, name+" on "+node, func(ctx context.Context) (bool, error) {
			p, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.Spec.NodeName == node && podReady(p), nil
		})
	}
	eventually(t, "flaky crash-looping by rule", func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "flaky", metav1.GetOptions{})
		return err == nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1, nil
	})
	eventually(t, "box running", func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "box", metav1.GetOptions{})
		return err == nil && podReady(p), nil
	})
	if out, err := logs(t, c, "default", "box", &corev1.PodLogOptions{}); err != nil || out != "hello from busybox\n" {
		t.Errorf("box log by rule: %v %q", err, out)
	}

	// The admin API: read the rules, replace them, refuse bad ones.
	http, err := rest.HTTPClientFor(s.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	admin := s.restConfig(t).Host + "/mockernetes/v1/podbehaviours"
	code, body := get(t, http, admin, "")
	if code != 200 || !strings.Contains(string(body), `"labels":"app=flaky"`) || !strings.Contains(string(body), `"restartBackoff":"50ms"`) {
		t.Errorf("GET rules: %d %s", code, body)
	}
	send := func(method, doc string) (int, string) {
		req, _ := nethttp.NewRequest(method, admin, strings.NewReader(doc))
		res, err := http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	put := func(doc string) (int, string) { return send(nethttp.MethodPut, doc) }
	if code, out := put(`{"podBehaviours":[{"match":{"labels":"app=late"},"behaviour":{"neverReady":true}}]}`); code != 200 || !strings.Contains(out, "app=late") {
		t.Fatalf("PUT rules: %d %s", code, out)
	}
	if code, out := put(`{"podBehaviours":[{"match":{"labels":"app in (("},"behaviour":{}}]}`); code != 400 || !strings.Contains(out, `"kind":"Status"`) || !strings.Contains(out, "podBehaviours[0].match.labels") {
		t.Errorf("PUT bad rules: %d %s", code, out)
	}
	if code, out := put(`{"podBehaviours":[{"match":{},"behaviour":{"exec":[{"command":"backup","local":["/bin/true"]}]}}]}`); code != 400 ||
		!strings.Contains(out, "podBehaviours[0].behaviour.exec[0].local: running local commands needs a server started with --allow-local-exec") {
		t.Errorf("PUT a local exec rule: %d %s", code, out)
	}
	if code, out := put(`{"podBehaviours":[{"match":{},"behaviour":{"portForward":[{"port":80,"address":"localhost"}]}}]}`); code != 400 ||
		!strings.Contains(out, "podBehaviours[0].behaviour.portForward[0].address") {
		t.Errorf("PUT a bad port-forward rule: %d %s", code, out)
	}
	if code, out := send(nethttp.MethodPost, `{}`); code != 405 || !strings.Contains(out, `"kind":"Status"`) || !strings.Contains(out, `"code":405`) {
		t.Errorf("POST rules: %d %s", code, out)
	}
	if _, err := c.CoreV1().Pods("default").Create(t.Context(), pod("late", map[string]string{"app": "late"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "late running", func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "late", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	if p, err := c.CoreV1().Pods("default").Get(t.Context(), "late", metav1.GetOptions{}); err != nil || podReady(p) {
		t.Errorf("the new rule did not apply: %v", err)
	}

	// A configuration that does not parse stops the server with one line.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("nodes:\n- name: x\n  colour: red\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runCLI(t, "serve", "--port", "0", "--cluster-config", bad)
	if code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, `unknown field "nodes[0].colour"`) {
		t.Errorf("bad cluster config: exit %d, %q", code, stderr)
	}
}
