package server

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// The in-process clients (controllers, kube-scheduler, the kubelet,
// upstream's hooks and informers) reach the server through in-memory
// connections: none of them holds a connection to the HTTPS port, their
// requests go through the same handler chain (the loopback token's user,
// the field manager named by their user agent), and their watches end
// when the server stops. The kubelet reads pods from the controllers'
// informer.
func TestLoopbackInMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, cfg := buildServer(t)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	if err := srv.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Settle(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cfg.conns.mu.Lock()
	tcp := len(cfg.conns.conns)
	cfg.conns.mu.Unlock()
	if tcp != 0 {
		t.Errorf("%d connections to the HTTPS port with only the in-process components running, want 0", tcp)
	}

	// The kubelets, the controllers and kube-scheduler share one informer
	// of pods: no watch of pods carries the kubelet's or kube-scheduler's
	// user agent.
	loopback := cfg.LoopbackClientConfig()
	tc, err := testcontrol.New(loopback)
	if err != nil {
		t.Fatal(err)
	}
	watches, err := tc.Requests(ctx, url.Values{"verb": {"watch"}, "resource": {"pods"}})
	if err != nil {
		t.Fatal(err)
	}
	components := map[string]int{}
	for _, e := range watches {
		components[strings.Split(e.UserAgent, "/")[0]]++
	}
	if components["kubelet"] != 0 || components["kube-controller-manager"] != 1 || components["kube-scheduler"] != 0 {
		t.Errorf("watches of pods by component %v, want one, by the controllers (shared with the kubelet and kube-scheduler)", components)
	}

	if !strings.HasPrefix(loopback.Host, "http://") || loopback.Transport == nil {
		t.Errorf("loopback config: host %q, transport %v; want plain HTTP over the in-memory transport", loopback.Host, loopback.Transport)
	}
	in := kubernetes.NewForConfigOrDie(loopback)
	existing, err := in.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := in.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: existing.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	rc, err := clientcmd.BuildConfigFromFlags("", srv.State().Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.NewForConfigOrDie(rc).CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "seen"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.ResultChan():
		if cm, ok := e.Object.(*corev1.ConfigMap); e.Type != watch.Added || !ok || cm.Name != "seen" {
			t.Errorf("watch through the loopback: %s %T, want ADDED configmap seen", e.Type, e.Object)
		}
	case <-ctx.Done():
		t.Fatal("no event through the loopback watch")
	}
	// The kubelet's and the controllers' writes came this way, under
	// their own field managers.
	node, err := in.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	managers := map[string]bool{}
	for _, m := range node.ManagedFields {
		managers[m.Manager] = true
	}
	if !managers["kubelet"] {
		t.Errorf("node-1's field managers %v, want the kubelet's", managers)
	}
	cm, err := in.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "loopback"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.ManagedFields) != 1 || cm.ManagedFields[0].Manager != "kube-apiserver" {
		t.Errorf("a loopback write's managed fields %+v, want kube-apiserver's", cm.ManagedFields)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the server did not stop")
	}
	for {
		select {
		case _, open := <-w.ResultChan():
			if !open {
				if _, err := in.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
					t.Errorf("a loopback request after the server stopped: %v, want connection refused", err)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("the loopback watch outlived the server")
		}
	}
}
