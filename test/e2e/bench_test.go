package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// BenchmarkStartToReady measures exec of `mockernetes serve` to the moment
// it prints its KUBECONFIG line, which it does once /readyz succeeds (every
// API group installed, bootstrap objects and policy created). Also reported:
// resident memory right after ready, and the time from SIGTERM to exit.
// By default the server installs the Gateway API CRDs before it is ready.
func BenchmarkStartToReady(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchmarkStart(b) })
	b.Run("gateway-api=false", func(b *testing.B) { benchmarkStart(b, "--gateway-api=false") })
}

func benchmarkStart(b *testing.B, args ...string) {
	dir := b.TempDir()
	var rss, shutdown float64
	for i := 0; b.Loop(); i++ {
		s, err := startServer(filepath.Join(dir, strconv.Itoa(i)), args...)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rss += rssMiB(b, s.cmd.Process.Pid)
		start := time.Now()
		if err := s.stop(); err != nil {
			b.Fatal(err)
		}
		shutdown += time.Since(start).Seconds()
		b.StartTimer()
	}
	b.ReportMetric(rss/float64(b.N), "MiB-rss")
	b.ReportMetric(shutdown/float64(b.N)*1000, "ms-shutdown")
}

func rssMiB(b testing.TB, pid int) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkDeploymentPods measures a Deployment of 3 replicas from create
// to its 3 Pods existing (deployment and replicaset controllers). Pods
// becoming Ready needs the simulated kubelet (issue #6).
func BenchmarkDeploymentPods(b *testing.B) {
	c := shared.client(b)
	ns := benchNamespace(b, c)
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("d%d", i)
		if _, err := c.AppsV1().Deployments(ns).Create(context.Background(), deployment(name, "nginx", 3), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitFor(b, func() bool {
			l, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + name})
			return err == nil && len(l.Items) == 3
		})
	}
}

// BenchmarkDeploymentReady measures a Deployment of 3 replicas from create
// to status readyReplicas = availableReplicas = 3: controllers, scheduler
// and the simulated kubelet.
func BenchmarkDeploymentReady(b *testing.B) {
	c := shared.client(b)
	ns := benchNamespace(b, c)
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("r%d", i)
		if _, err := c.AppsV1().Deployments(ns).Create(context.Background(), deployment(name, "nginx", 3), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitFor(b, func() bool {
			d, err := c.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == 3 && d.Status.AvailableReplicas == 3
		})
	}
}

// BenchmarkPodsReady measures 100 bare pods from their creation (in
// parallel from 8 clients) until every one is Ready.
func BenchmarkPodsReady(b *testing.B) {
	c := shared.client(b)
	ns := benchNamespace(b, c)
	for i := 0; b.Loop(); i++ {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for j := w; j < 100; j += 8 {
					p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d-%d", i, j), Labels: map[string]string{"round": fmt.Sprint(i)}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
					if _, err := c.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
		waitFor(b, func() bool {
			l, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: fmt.Sprintf("round=%d", i)})
			if err != nil || len(l.Items) != 100 {
				return false
			}
			for _, p := range l.Items {
				if !podReady(&p) {
					return false
				}
			}
			return true
		})
		b.StopTimer()
		_ = c.CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: fmt.Sprintf("round=%d", i)})
		b.StartTimer()
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// BenchmarkCascadingDelete measures deleting a Deployment (background
// propagation) until its ReplicaSet, Pods and 5 owned objects (Service, PVC,
// PDB, ServiceAccount, HTTPRoute) are all gone.
func BenchmarkCascadingDelete(b *testing.B) {
	c := shared.client(b)
	ns := benchNamespace(b, c)
	routes := shared.dynamic(b).Resource(gatewayv1.SchemeGroupVersion.WithResource("httproutes")).Namespace(ns)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		name := fmt.Sprintf("d%d", i)
		withDependents(b, c, routes, ns, name)
		waitFor(b, func() bool {
			return slices.Contains(remaining(context.Background(), b, c, routes, ns, name), "Pod")
		})
		b.StartTimer()
		if err := c.AppsV1().Deployments(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		waitFor(b, func() bool { return len(remaining(context.Background(), b, c, routes, ns, name)) == 0 })
	}
}

func benchNamespace(b *testing.B, c kubernetes.Interface) string {
	name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	// The namespace's default ServiceAccount, which pods wait for.
	waitFor(b, func() bool {
		_, err := c.CoreV1().ServiceAccounts(name).Get(context.Background(), "default", metav1.GetOptions{})
		return err == nil
	})
	return name
}

// waitFor polls cond every millisecond for up to a minute.
func waitFor(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkListPods measures LISTs of 1,000 running pods over HTTPS with
// client-go, as clients and kubectl make them: JSON (client-go's default),
// protobuf, a label selector matching 100 of them, and the table kubectl get
// asks for. The server runs 10 nodes, so every pod is scheduled and Running.
func BenchmarkListPods(b *testing.B) {
	s, err := startServer(filepath.Join(b.TempDir(), "state"), "--nodes", "10")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.stop() })
	c := s.client(b)
	ns := benchNamespace(b, c)
	const pods = 1000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for j := w; j < pods; j += 8 {
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%04d", j), Labels: map[string]string{"app": fmt.Sprintf("app-%d", j%10)}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}}}
				if _, err := c.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	onNode := 0 // pods the scheduler put on node-3
	waitFor(b, func() bool {
		l, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil || len(l.Items) != pods {
			return false
		}
		onNode = 0
		for _, p := range l.Items {
			if !podReady(&p) {
				return false
			}
			if p.Spec.NodeName == "node-3" {
				onNode++
			}
		}
		return true
	})
	protoCfg := s.restConfig(b)
	protoCfg.ContentType = "application/vnd.kubernetes.protobuf"
	protoCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	protoClient := kubernetes.NewForConfigOrDie(protoCfg)
	list := func(b *testing.B, c kubernetes.Interface, opts metav1.ListOptions, want int) {
		for b.Loop() {
			l, err := c.CoreV1().Pods(ns).List(context.Background(), opts)
			if err != nil || len(l.Items) != want {
				b.Fatalf("%d pods, %v", len(l.Items), err)
			}
		}
	}
	b.Run("json", func(b *testing.B) { list(b, c, metav1.ListOptions{}, pods) })
	b.Run("protobuf", func(b *testing.B) { list(b, protoClient, metav1.ListOptions{}, pods) })
	b.Run("labelSelector", func(b *testing.B) { list(b, c, metav1.ListOptions{LabelSelector: "app=app-3"}, pods/10) })
	// As a kubelet lists its node's pods.
	b.Run("fieldSelector", func(b *testing.B) { list(b, c, metav1.ListOptions{FieldSelector: "spec.nodeName=node-3"}, onNode) })
	b.Run("table", func(b *testing.B) {
		for b.Loop() {
			body, err := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces", ns, "pods").
				SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
			if err != nil || !strings.Contains(string(body), `"kind":"Table"`) {
				b.Fatalf("%v %.200s", err, body)
			}
		}
	})
}

// profile writes a 2-second CPU profile of the server to file, if named,
// from now; the channel closes once it is written.
func profile(b *testing.B, c kubernetes.Interface, file string) <-chan struct{} {
	done := make(chan struct{})
	if file == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		data, err := c.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", "2").DoRaw(context.Background())
		if err == nil {
			err = os.WriteFile(file, data, 0o644)
		}
		if err != nil {
			b.Error(err)
		}
	}()
	return done
}

// BenchmarkScheduling100Nodes measures kube-scheduler's throughput with the
// simulated kubelets on 100 nodes, 1,000 pods a round, each requesting 10m
// CPU and 10Mi.
//
// created: 8 clients create the pods; created-pods/s is 1,000 over the time
// until the last create returned, bound-pods/s until every pod has a node
// (polled every 10 ms), pods/s until every one is Running and Ready (as a
// settle after the creates reports it).
//
// queued: the pods wait, unschedulable, while every node is tainted; the
// taints are removed (8 clients) and bound-pods/s is 1,000 over the time
// from the first removal until every pod has a node: the scheduler's own
// rate, not held back by the creates. MOCKERNETES_BENCH_CPUPROFILE=FILE
// writes the server's CPU profile of a round's first 2 seconds.
func BenchmarkScheduling100Nodes(b *testing.B) {
	s, err := startServer(b.TempDir(), "--nodes", "100", "--gateway-api=false")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.stop() }()
	c := s.client(b)
	control, err := testcontrol.New(s.restConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	ns := benchNamespace(b, c)
	const pods = 1000
	ctx := context.Background()
	parallel := func(n int, do func(i int)) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					do(i)
				}
			})
		}
		wg.Wait()
	}
	create := func(round string) {
		parallel(pods, func(j int) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%s-%d", round, j), Labels: map[string]string{"round": round}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("10Mi")},
				}}}}}
			if _, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				b.Error(err)
			}
		})
	}
	waitBound := func(round string, start time.Time) {
		for {
			l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "round=" + round, FieldSelector: "spec.nodeName="})
			if err == nil && len(l.Items) == 0 {
				return
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("pods still unbound after a minute: %v, %d", err, len(l.Items))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	settle := func() {
		if err := control.Settle(ctx, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	cleanUp := func(round string) {
		if err := c.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "round=" + round}); err != nil {
			b.Fatal(err)
		}
		settle()
	}
	taints := func(patch string) {
		parallel(100, func(i int) {
			if _, err := c.CoreV1().Nodes().Patch(ctx, fmt.Sprintf("node-%d", i+1), types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				b.Error(err)
			}
		})
	}
	rounds := 0
	b.Run("created", func(b *testing.B) {
		var created, bound, running time.Duration
		for b.Loop() {
			rounds++
			round := fmt.Sprint(rounds)
			start := time.Now()
			create(round)
			created += time.Since(start)
			waitBound(round, start)
			bound += time.Since(start)
			settle()
			running += time.Since(start)
			b.StopTimer()
			l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "round=" + round})
			if err != nil || len(l.Items) != pods {
				b.Fatalf("pods: %v, %d", err, len(l.Items))
			}
			for _, p := range l.Items {
				if !podReady(&p) {
					b.Fatalf("pod %s not ready after settle", p.Name)
				}
			}
			cleanUp(round)
			b.StartTimer()
		}
		b.ReportMetric(float64(pods*b.N)/created.Seconds(), "created-pods/s")
		b.ReportMetric(float64(pods*b.N)/bound.Seconds(), "bound-pods/s")
		b.ReportMetric(float64(pods*b.N)/running.Seconds(), "pods/s")
	})
	b.Run("queued", func(b *testing.B) {
		var bound time.Duration
		for b.Loop() {
			b.StopTimer()
			rounds++
			round := fmt.Sprint(rounds)
			taints(`{"spec":{"taints":[{"key":"bench","value":"hold","effect":"NoSchedule"}]}}`)
			create(round)
			settle()
			profiled := profile(b, c, os.Getenv("MOCKERNETES_BENCH_CPUPROFILE"))
			b.StartTimer()
			start := time.Now()
			taints(`{"spec":{"taints":null}}`)
			waitBound(round, start)
			bound += time.Since(start)
			<-profiled
			b.StopTimer()
			cleanUp(round)
			b.StartTimer()
		}
		b.ReportMetric(float64(pods*b.N)/bound.Seconds(), "bound-pods/s")
	})
}
