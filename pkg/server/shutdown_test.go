package server

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Stopping a server with requests and watches in flight: Run returns
// within 2 s, and the server leaves no goroutine behind (the in-process
// form lives in its user's process).
func TestShutdownInFlight(t *testing.T) {
	before := runtime.NumGoroutine()
	o := NewOptions()
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
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := srv.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", srv.State().Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = -1, 0
	c := kubernetes.NewForConfigOrDie(rc)

	load, endLoad := context.WithCancel(context.Background())
	var clients sync.WaitGroup
	for range 10 {
		w, err := c.CoreV1().ConfigMaps("default").Watch(load, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		clients.Go(func() {
			for range w.ResultChan() {
			}
		})
	}
	for i := range 8 {
		clients.Go(func() {
			for n := 0; load.Err() == nil; n++ {
				name := fmt.Sprintf("cm-%d-%d", i, n)
				_, _ = c.CoreV1().ConfigMaps("default").Create(load, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
				_, _ = c.CoreV1().Pods("").List(load, metav1.ListOptions{})
				_ = c.CoreV1().ConfigMaps("default").Delete(load, name, metav1.DeleteOptions{})
			}
		})
	}
	time.Sleep(time.Second)
	start := time.Now()
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop within 10 s")
	}
	t.Logf("stopped in %v", time.Since(start))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stopping with requests and watches in flight took %v", took)
	}
	endLoad()
	clients.Wait()
	if _, err := os.Stat(srv.State().Dir); !os.IsNotExist(err) {
		t.Errorf("temporary state %s left: %v", srv.State().Dir, err)
	}
	c = nil
	// Goroutines of the clients' idle connections and closing files take
	// a moment; process-wide ones of upstream (klog's flush daemon,
	// os/signal's loop once kube-scheduler listened for SIGUSR2) stay.
	const slack = 8
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+slack && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines: %d before start, %d after stop", before, runtime.NumGoroutine())
	if n := runtime.NumGoroutine(); n > before+slack {
		t.Errorf("%d goroutines left after stop, %d before start", n, before)
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
	}
}
