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

// A LIST of 2,000 ConfigMaps over HTTPS read as bytes, as JSON, as
// protobuf and as the table kubectl asks for (the client's decoding is not
// the server's work), in envtest mode.
func BenchmarkList(b *testing.B) {
	client, _ := benchServer(b, func(o *Options) { o.Controllers, o.GatewayAPI = []string{"none"}, false })
	ctx := b.Context()
	for i := range 2000 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i), Labels: map[string]string{"shard": fmt.Sprint(i % 10)}},
			Data: map[string]string{"key": fmt.Sprintf("value-%d", i), "other": "some longer text of a configuration"}}
		if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, accept := range []struct{ name, header string }{
		{"json", "application/json"},
		{"protobuf", "application/vnd.kubernetes.protobuf"},
		{"table", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
	} {
		b.Run(accept.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				body, err := client.CoreV1().RESTClient().Get().Namespace("default").Resource("configmaps").
					SetHeader("Accept", accept.header).DoRaw(ctx)
				if err != nil {
					b.Fatal(err)
				}
				size = len(body)
			}
			b.ReportMetric(float64(size), "bytes/list")
		})
	}
}

// GETs of one ConfigMap by 8 goroutines at once over client-go's one
// HTTP/2 connection, in envtest mode: the request path, little store work.
func BenchmarkGet(b *testing.B) {
	client, _ := benchServer(b, func(o *Options) { o.Controllers, o.GatewayAPI = []string{"none"}, false })
	ctx := b.Context()
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "read"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(4) // 8 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "read", metav1.GetOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
