package server

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

func benchServer(b *testing.B, configure ...func(*Options)) (kubernetes.Interface, *testcontrol.Client) {
	b.Helper()
	// Upstream's log lines would land in the middle of the result lines.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	srv, _, rc := runServer(b, context.Background(), configure...)
	if err := srv.WaitReady(b.Context()); err != nil {
		b.Fatal(err)
	}
	tc, err := testcontrol.New(rc)
	if err != nil {
		b.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(rc), tc
}

// Reset of a cluster holding objects more than its baseline (config maps
// in one namespace): the restore, then every component catching up.
// changed=10 is what a test typically leaves behind; held=1000 is a cluster
// of 1,000 objects more (in its baseline), of which a test changed 10: what
// a reset costs grows with the changes, not with what is held; changed=1000
// is a test that leaves 1,000 objects behind.
func BenchmarkReset(b *testing.B) {
	for _, c := range []struct{ held, changed int }{{0, 10}, {1000, 10}, {0, 1000}} {
		name := fmt.Sprintf("changed=%d", c.changed)
		if c.held > 0 {
			name = fmt.Sprintf("held=%d/%s", c.held, name)
		}
		b.Run(name, func(b *testing.B) {
			client, tc := benchServer(b)
			ctx := b.Context()
			create := func(prefix string, n int) {
				for i := range n {
					if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
						ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Labels: map[string]string{"bench": "reset"}},
						Data:       map[string]string{"key": "value"},
					}, metav1.CreateOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			create("held", c.held)
			if err := tc.TakeBaseline(ctx, time.Minute); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				create("cm", c.changed)
				if err := tc.Settle(ctx, time.Minute); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := tc.Reset(ctx, testcontrol.ResetRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Settle on a cluster that is already quiet.
func BenchmarkSettleQuiet(b *testing.B) {
	_, tc := benchServer(b)
	ctx := b.Context()
	if err := tc.Settle(ctx, time.Minute); err != nil {
		b.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	for b.Loop() {
		if err := tc.Settle(ctx, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// Create a Deployment of 3 and have its pods Running and Ready: with
// settle-on-write the create is answered then; without, the client polls.
func BenchmarkDeploymentOf3(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("settleOnWrite=%v", on), func(b *testing.B) {
			client, tc := benchServer(b, func(o *Options) { o.SettleOnWrite = on })
			ctx := b.Context()
			i := 0
			for b.Loop() {
				i++
				name := fmt.Sprintf("web-%d", i)
				if _, err := client.AppsV1().Deployments("default").Create(ctx, deployment(name, 3), metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
				if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
					l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
					if err != nil || len(l.Items) != 3 {
						return false, err
					}
					for _, p := range l.Items {
						if p.Status.Phase != corev1.PodRunning {
							return false, nil
						}
					}
					return true, nil
				}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := client.AppsV1().Deployments("default").Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
					b.Fatal(err)
				}
				if err := tc.Settle(ctx, time.Minute); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
