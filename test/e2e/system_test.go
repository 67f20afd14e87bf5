package e2e

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// suffix is the random part of a controller's pod name.
var suffix = regexp.MustCompile(`-[a-z0-9]{5}$|-[a-z0-9]{8,10}-[a-z0-9]{5}$`)

// A fresh cluster is what kind v0.33 creates with one worker: the same
// pods (names up to their random suffixes, the cluster's name in the
// control plane's), Deployments, DaemonSets and Services in kube-system
// and local-path-storage, all running; `kubectl cluster-info` names
// CoreDNS; a reset brings back a deleted system pod; --system-pods=false
// leaves them out.
func TestSystemPods(t *testing.T) {
	c := shared.client(t)
	ctx := t.Context()
	pods, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pods.Items {
		name := p.Name
		if metav1.GetControllerOf(&p).Kind != "Node" { // mirror pods are named after their node
			name = suffix.ReplaceAllString(name, "-*")
		}
		got = append(got, name)
		if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			t.Errorf("%s: %s", p.Name, p.Status.Phase)
		}
	}
	slices.Sort(got)
	want := []string{"coredns-*", "coredns-*", "etcd-mockernetes-control-plane", "kindnet-*", "kindnet-*",
		"kube-apiserver-mockernetes-control-plane", "kube-controller-manager-mockernetes-control-plane",
		"kube-proxy-*", "kube-proxy-*", "kube-scheduler-mockernetes-control-plane"}
	if !slices.Equal(got, want) {
		t.Errorf("kube-system pods:\n got %v\nwant %v", got, want)
	}
	etcd, err := c.CoreV1().Pods("kube-system").Get(ctx, "etcd-mockernetes-control-plane", metav1.GetOptions{})
	if err != nil || etcd.Annotations[corev1.MirrorPodAnnotationKey] == "" || len(etcd.OwnerReferences) != 1 ||
		etcd.OwnerReferences[0].Kind != "Node" || etcd.Spec.PriorityClassName != "system-node-critical" {
		t.Errorf("etcd mirror pod: %v %+v", err, etcd.ObjectMeta)
	}
	node, err := c.CoreV1().Nodes().Get(ctx, "mockernetes-control-plane", metav1.GetOptions{})
	if _, role := node.Labels["node-role.kubernetes.io/control-plane"]; err != nil || !role ||
		len(node.Spec.Taints) != 1 || node.Spec.Taints[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("control-plane node: %v %v %v", err, node.Labels, node.Spec.Taints)
	}
	dns, err := c.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil || dns.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("kube-dns: %v %+v", err, dns.Spec)
	}
	for ns, want := range map[string][]string{"kube-system": {"coredns"}, "local-path-storage": {"local-path-provisioner"}} {
		list, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		var names []string
		for _, d := range list.Items {
			names = append(names, d.Name)
			if d.Status.ReadyReplicas != *d.Spec.Replicas {
				t.Errorf("deployment %s: %d of %d ready", d.Name, d.Status.ReadyReplicas, *d.Spec.Replicas)
			}
		}
		if err != nil || !slices.Equal(names, want) {
			t.Errorf("deployments in %s: %v %v", ns, err, names)
		}
	}
	daemonSets, err := c.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil || len(daemonSets.Items) != 2 || daemonSets.Items[0].Name != "kindnet" || daemonSets.Items[1].Name != "kube-proxy" ||
		daemonSets.Items[1].Status.NumberReady != 2 {
		t.Errorf("daemonsets: %v %+v", err, daemonSets)
	}
	out, err := shared.kubectl(t, kubectlBin, "", "cluster-info")
	if err != nil || !strings.Contains(out, "Kubernetes control plane is running at https://127.0.0.1:") ||
		!strings.Contains(out, "CoreDNS is running at https://127.0.0.1:") || !strings.Contains(out, "/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy") {
		t.Errorf("kubectl cluster-info: %v %s", err, out)
	}

	// On a server of its own: the node's kubelet creates a deleted mirror
	// pod again; a reset brings a deleted system pod back;
	// --system-pods=false has none.
	s := startTestServer(t, "--settle-on-write", "--gateway-api=false")
	own := s.client(t)
	deleted, err := own.CoreV1().Pods("kube-system").Get(ctx, "kube-scheduler-mockernetes-control-plane", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := own.CoreV1().Pods("kube-system").Delete(ctx, deleted.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the mirror pod created again", func(ctx context.Context) (bool, error) {
		p, err := own.CoreV1().Pods("kube-system").Get(ctx, deleted.Name, metav1.GetOptions{})
		return err == nil && p.UID != deleted.UID && p.Status.Phase == corev1.PodRunning &&
			p.Annotations[corev1.MirrorPodAnnotationKey] == deleted.Annotations[corev1.MirrorPodAnnotationKey], nil
	})
	if err := own.CoreV1().Pods("kube-system").Delete(ctx, "kube-scheduler-mockernetes-control-plane", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	tc, err := testcontrol.New(s.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Reset(ctx, testcontrol.ResetRequest{}); err != nil {
		t.Fatal(err)
	}
	if p, err := own.CoreV1().Pods("kube-system").Get(ctx, "kube-scheduler-mockernetes-control-plane", metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodRunning {
		t.Errorf("after a reset: %v", err)
	}
	bare := startTestServer(t, "--system-pods=false", "--gateway-api=false").client(t)
	if list, err := bare.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 0 {
		t.Errorf("--system-pods=false: %v %d pods", err, len(list.Items))
	}
	if nodes, err := bare.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil || len(nodes.Items) != 1 {
		t.Errorf("--system-pods=false: %v nodes", err)
	}
}
