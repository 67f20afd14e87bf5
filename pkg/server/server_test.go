package server

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// buildServer builds (does not run) a server with the default options
// changed by configure; without the system pods, which test/e2e covers
// (these tests count what they create).
func buildServer(t testing.TB, configure ...func(*Options)) (*Server, *Config) {
	t.Helper()
	o := NewOptions()
	o.SystemPods = false
	for _, f := range configure {
		f(o)
	}
	o.Complete()
	if errs := o.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	cfg, err := o.Config()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := cfg.Complete().New()
	if err != nil {
		cfg.Close()
		t.Fatal(err)
	}
	return srv, cfg
}

// runServer builds a server with the default options (changed by
// configure) and runs it until the test ends; it then checks that the
// server stopped cleanly and removed its temporary state. It returns the
// server, its config and a client config without client-side throttling.
func runServer(t testing.TB, ctx context.Context, configure ...func(*Options)) (*Server, *Config, *rest.Config) {
	t.Helper()
	srv, cfg := buildServer(t, configure...)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if _, err := os.Stat(srv.State().Dir); !os.IsNotExist(err) {
			t.Errorf("temporary state %s left: %v", srv.State().Dir, err)
		}
	})
	rc, err := clientcmd.BuildConfigFromFlags("", srv.State().Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = -1, 0
	return srv, cfg, rc
}

// Two servers in one process, as the Go library will run them: each has
// its own store, port, CA and state, and neither sees the other's objects.
func TestTwoServersInOneProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type running struct {
		srv    *Server
		client kubernetes.Interface
	}
	servers := make([]running, 2)
	var wg sync.WaitGroup
	for i := range servers {
		srv, _, rc := runServer(t, ctx)
		servers[i] = running{srv, kubernetes.NewForConfigOrDie(rc)}
		wg.Go(func() {
			if err := srv.WaitReady(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if servers[0].srv.URL() == servers[1].srv.URL() {
		t.Fatalf("both on %s", servers[0].srv.URL())
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only-in-first"}}
	if _, err := servers[0].client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := servers[1].client.CoreV1().ConfigMaps("default").Get(ctx, "only-in-first", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("second server sees the first one's object: %v", err)
	}
	// Each runs its own controllers on its own objects.
	replicas := int32(2)
	labels := map[string]string{"app": "web"}
	if _, err := servers[0].client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := servers[0].client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(l.Items) == 2, nil
	}); err != nil {
		t.Fatalf("pods of the first server's deployment: %v", err)
	}
	if l, err := servers[1].client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("second server has pods: %v %v", err, l)
	}

	// Each server's credentials are its own.
	rc, _ := clientcmd.BuildConfigFromFlags("", servers[0].srv.State().Kubeconfig)
	rc.Host = servers[1].srv.URL()
	if _, err := kubernetes.NewForConfigOrDie(rc).CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("the first server's kubeconfig was accepted by the second")
	}
}
