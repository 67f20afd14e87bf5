package server

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mockernetes/mockernetes/internal/testload"
)

// Stopping a server with requests and watches in flight: Run returns
// promptly, and the server leaves no goroutine behind (the in-process
// form lives in its user's process).
func TestShutdownInFlight(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, _ := buildServer(t)
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
	endLoad, err := testload.Start(context.Background(), kubernetes.NewForConfigOrDie(rc), "default", 10, 8)
	if err != nil {
		t.Fatal(err)
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
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal("the server did not stop within 10 s")
	}
	t.Logf("stopped in %v", time.Since(start))
	// The binary's bound is 2 s (test/e2e TestShutdownUnderLoad); here the
	// test shares the machine with the race detector and other packages.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopping with requests and watches in flight took %v", took)
	}
	endLoad()
	if _, err := os.Stat(srv.State().Dir); !os.IsNotExist(err) {
		t.Errorf("temporary state %s left: %v", srv.State().Dir, err)
	}
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
