package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kubectl get --raw on the kubelet and proxy paths: answered by the
// simulated kubelet, or refused as by a backend where nothing listens.
func TestKubectlProxyPaths(t *testing.T) {
	s := shared
	c := s.client(t)
	ns := newNamespace(t, c)
	readyPod(t, c, ns, pod("p", map[string]string{"app": "p"}))
	out, err := s.kubectl(t, kubectlBin, "", "get", "--raw", "/api/v1/nodes/node-1/proxy/pods")
	if err != nil || !strings.Contains(out, `"kind":"PodList"`) || !strings.Contains(out, `"name":"p"`) {
		t.Errorf("nodes/proxy/pods: %v %.300s", err, out)
	}
	out, err = s.kubectl(t, kubectlBin, "", "get", "--raw", "/api/v1/namespaces/default/services/kubernetes:443/proxy/version")
	if err == nil || !strings.Contains(out, `Error from server (ServiceUnavailable): no endpoints available for service "kubernetes"`) {
		t.Errorf("services/kubernetes/proxy: %v %s", err, out)
	}
	out, err = s.kubectl(t, kubectlBin, "", "get", "--raw", "/api/v1/namespaces/"+ns+"/pods/p/proxy/")
	if err == nil || !strings.Contains(out, "Error from server (ServiceUnavailable): error trying to reach service: dial tcp 10.244.") || !strings.Contains(out, "connection refused") {
		t.Errorf("pods/proxy: %v %s", err, out)
	}
}

// The CLI verbs of the test-control API against a running server.
func TestControlCLI(t *testing.T) {
	s := startTestServer(t)
	c := s.client(t)
	ctx := t.Context()
	cli := func(args ...string) (string, string, error) {
		cmd := exec.Command(mockernetesBin, append(args, "--kubeconfig", s.kubeconfig)...)
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before-reset"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := cli("settle", "--timeout", "10s"); err != nil {
		t.Errorf("settle: %v %s", err, stderr)
	}
	rules := filepath.Join(t.TempDir(), "faults.yaml")
	if err := os.WriteFile(rules, []byte("faults:\n- verb: get\n  resource: configmaps\n  name: before-reset\n  code: 500\n  times: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := cli("faults", "--set", rules); err != nil || !strings.Contains(out, "code: 500") {
		t.Errorf("faults --set: %v %s %s", err, out, stderr)
	}
	if _, err := c.CoreV1().ConfigMaps("default").Get(ctx, "before-reset", metav1.GetOptions{}); !apierrors.IsInternalError(err) {
		t.Errorf("injected fault: %v", err)
	}
	if out, _, err := cli("requests", "--verb", "get", "--resource", "configmaps", "--internal", "false"); err != nil || !strings.Contains(out, "name: before-reset") || !strings.Contains(out, "code: 500") {
		t.Errorf("requests: %v %s", err, out)
	}
	if _, stderr, err := cli("reset"); err != nil {
		t.Fatalf("reset: %v %s", err, stderr)
	}
	if _, err := c.CoreV1().ConfigMaps("default").Get(ctx, "before-reset", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after reset: %v", err)
	}
	if out, _, err := cli("faults"); err != nil || strings.TrimSpace(out) != "faults: []" {
		t.Errorf("faults after reset: %v %q", err, out)
	}
	// Bad input: one line, non-zero exit.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("faults:\n- verb: fetch\n  code: 500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := cli("faults", "--set", bad); err == nil || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "faults[0].verb") {
		t.Errorf("faults --set with a bad rule: %v %q", err, stderr)
	}
}
