package envtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Start to ready, in-process: without controllers (envtest's setting),
// the same with the Gateway API CRDs, and with the whole cluster. Stop is
// outside the timing, reported as stop-ms/op.
func BenchmarkStart(b *testing.B) {
	for _, c := range []struct {
		name        string
		controllers string
		gatewayAPI  bool
	}{{"controllers=none", "none", false}, {"controllers=none,gateway-api", "none", true}, {"controllers=*", "*", false}} {
		b.Run(c.name, func(b *testing.B) {
			var stopping time.Duration
			for b.Loop() {
				te := &Environment{Controllers: []string{c.controllers}, GatewayAPI: c.gatewayAPI, CRDDirectoryPaths: []string{"testdata/crds"}}
				if _, err := te.Start(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				start := time.Now()
				if err := te.Stop(); err != nil {
					b.Fatal(err)
				}
				stopping += time.Since(start)
				b.StartTimer()
			}
			b.ReportMetric(float64(stopping.Milliseconds())/float64(b.N), "stop-ms/op")
		})
	}
}

// Reset of a cluster running the controllers after a test made 10
// ConfigMaps.
func BenchmarkReset(b *testing.B) {
	te := &Environment{Controllers: []string{"*"}}
	if _, err := te.Start(); err != nil {
		b.Fatal(err)
	}
	defer te.Stop()
	c := kubernetes.NewForConfigOrDie(te.Config)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		for i := range 10 {
			if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("cm-", i)}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := te.Reset(); err != nil {
			b.Fatal(err)
		}
	}
}

// What ForTest adds to a test once its server runs: taking the server from
// the pool and resetting it, and giving it back.
func BenchmarkForTest(b *testing.B) {
	warm := &iterationTB{TB: b}
	ForTest(warm)
	warm.cleanup()
	for b.Loop() {
		tb := &iterationTB{TB: b}
		ForTest(tb)
		tb.cleanup()
	}
}

// iterationTB is the benchmark as one test: its cleanups run at the end of
// an iteration, as a test's at its end.
type iterationTB struct {
	testing.TB
	cleanups []func()
}

func (t *iterationTB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *iterationTB) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
