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
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	// Snapshot → change → restore; the snapshot is what kubectl apply -f
	// and serve --load take.
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "in-snapshot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	snap, stderr, err := cli("snapshot")
	if err != nil || !strings.Contains(snap, "name: in-snapshot") {
		t.Fatalf("snapshot: %v %s", err, stderr)
	}
	snapFile := filepath.Join(t.TempDir(), "snapshot.yaml")
	if err := os.WriteFile(snapFile, []byte(snap), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().ConfigMaps("default").Delete(ctx, "in-snapshot", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := cli("restore", snapFile); err != nil {
		t.Fatalf("restore: %v %s", err, stderr)
	}
	if _, err := c.CoreV1().ConfigMaps("default").Get(ctx, "in-snapshot", metav1.GetOptions{}); err != nil {
		t.Errorf("after restore: %v", err)
	}
	if out, err := s.kubectl(t, kubectlBin, "", "apply", "-f", snapFile); err != nil {
		t.Errorf("kubectl apply -f of a snapshot: %v %.2000s", err, out)
	}
	loaded := startTestServer(t, "--load", snapFile)
	if _, err := loaded.client(t).CoreV1().ConfigMaps("default").Get(ctx, "in-snapshot", metav1.GetOptions{}); err != nil {
		t.Errorf("a server started with --load of the snapshot: %v", err)
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

const loadedCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`

const loadedObjects = `apiVersion: example.com/v1
kind: Gadget
metadata:
  name: g1
  namespace: shop
spec:
  size: 3
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: loaded
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: loaded
  namespace: shop
spec:
  replicas: 1
  selector: {matchLabels: {app: loaded}}
  template:
    metadata: {labels: {app: loaded}}
    spec:
      containers: [{name: app, image: nginx}]
---
apiVersion: v1
kind: Namespace
metadata:
  name: declared
  labels: {team: a}
`

// --load applies manifests of any kind before ready (CRDs first, then
// namespaces, missing ones created, then the rest); they survive a reset,
// and a reset can load more.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a-objects.yaml"), []byte(loadedObjects), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b-crd.yaml"), []byte(loadedCRD), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startTestServer(t, "--load", dir, "--gateway-api=false")
	c := s.client(t)
	ctx := t.Context()
	gadgets := s.dynamic(t).Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gadgets"}).Namespace("shop")
	check := func(when string) {
		t.Helper()
		if g, err := gadgets.Get(ctx, "g1", metav1.GetOptions{}); err != nil || g.Object["spec"].(map[string]any)["size"] != int64(3) {
			t.Errorf("%s: gadget: %v %v", when, err, g)
		}
		if cm, err := c.CoreV1().ConfigMaps("default").Get(ctx, "loaded", metav1.GetOptions{}); err != nil || cm.Data["greeting"] != "hello" {
			t.Errorf("%s: config map: %v", when, err)
		}
		if ns, err := c.CoreV1().Namespaces().Get(ctx, "declared", metav1.GetOptions{}); err != nil || ns.Labels["team"] != "a" {
			t.Errorf("%s: namespace: %v", when, err)
		}
		// The loaded Deployment runs: ready means its pods are there.
		if l, err := c.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=loaded"}); err != nil || len(l.Items) != 1 || l.Items[0].Status.Phase != corev1.PodRunning {
			t.Errorf("%s: pods of the loaded deployment: %v %+v", when, err, l)
		}
	}
	check("after start")
	if err := c.CoreV1().ConfigMaps("default").Delete(ctx, "loaded", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(dir, "extra.yaml")
	if err := os.WriteFile(extra, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: later\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mockernetesBin, "reset", "--manifests", extra, "--kubeconfig", s.kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reset: %v %s", err, out)
	}
	check("after reset")
	if _, err := c.CoreV1().ConfigMaps("later").Get(ctx, "extra", metav1.GetOptions{}); err != nil {
		t.Errorf("manifests of the reset: %v", err)
	}

	// A manifest that does not parse stops the server before it listens.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\nkind: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runCLI(t, "serve", "--port", "0", "--state-dir", filepath.Join(dir, "state"), "--load", bad)
	if code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "bad.yaml:6") {
		t.Errorf("bad manifest: exit %d, %q", code, stderr)
	}
	// One the API refuses stops it too, naming the document.
	refused := filepath.Join(dir, "refused.yaml")
	if err := os.WriteFile(refused, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr = runCLI(t, "serve", "--port", "0", "--state-dir", filepath.Join(dir, "state2"), "--load", refused, "--gateway-api=false")
	if code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "refused.yaml:1: ConfigMap Not_A_Name") {
		t.Errorf("refused manifest: exit %d, %q", code, stderr)
	}
}
