// Command benchscale runs the fleet-size scenario: Deployments of 100
// replicas (each pod requesting 10m CPU and 10Mi) applied at once to
// `mockernetes serve --nodes 100`, timed from the first create until the
// Deployments' ready replicas add up. It runs 1,000 pods and then 10,000,
// each on a fresh server, prints a progress line every second and a table
// at the end: time, pods per second, the server's RSS, and how the time
// grew with the pod count (linear would be 10×).
//
//	go run ./hack/benchscale -bin bin/mockernetes
//
// -cpuprofile and -heapprofile write the server's profiles of the largest
// run (CPU over -profile-seconds from -profile-after, heap at the end); -server-log
// and -metrics keep its log and its /metrics at the end.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

func main() {
	bin := flag.String("bin", "bin/mockernetes", "the mockernetes binary")
	nodes := flag.Int("nodes", 100, "simulated nodes")
	replicas := flag.Int("replicas", 100, "replicas of each Deployment")
	sizes := flag.String("deployments", "10,100", "Deployment counts to run, one fresh server each")
	cpuProfile := flag.String("cpuprofile", "", "write the server's CPU profile of the largest run here")
	heapProfile := flag.String("heapprofile", "", "write the server's heap profile at the end of the largest run here")
	profileSeconds := flag.Int("profile-seconds", 10, "length of the CPU profile")
	profileAfter := flag.Duration("profile-after", 0, "start the CPU profile this long after the first create")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up on a run after this long")
	serverLog := flag.String("server-log", "", "write the server's log of the largest run here")
	metrics := flag.String("metrics", "", "write the server's /metrics at the end of the largest run here")
	flag.Parse()
	var counts []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fail(fmt.Errorf("-deployments %q: want positive counts, e.g. 10,100", *sizes))
		}
		counts = append(counts, n)
	}
	var results []result
	for i, n := range counts {
		r := run{bin: *bin, nodes: *nodes, deployments: n, replicas: *replicas, timeout: *timeout}
		if i == len(counts)-1 {
			r.cpuProfile, r.heapProfile, r.profileSeconds, r.profileAfter = *cpuProfile, *heapProfile, *profileSeconds, *profileAfter
			r.serverLog, r.metrics = *serverLog, *metrics
		}
		res, err := r.do()
		if err != nil {
			fail(err)
		}
		results = append(results, res)
	}
	fmt.Printf("\n| pods | nodes | apply → all Ready | pods/s | server CPU | CPU per pod | RSS at the end |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Printf("| %d | %d | %.2f s | %.0f | %.1f s | %.1f ms | %.0f MiB |\n", r.pods, *nodes, r.elapsed.Seconds(), float64(r.pods)/r.elapsed.Seconds(),
			r.cpu.Seconds(), float64(r.cpu.Milliseconds())/float64(r.pods), r.rssMiB)
	}
	if len(results) > 1 {
		first, last := results[0], results[len(results)-1]
		fmt.Printf("\n%d× the pods took %.1f× the time and %.1f× the CPU.\n", last.pods/first.pods,
			last.elapsed.Seconds()/first.elapsed.Seconds(), last.cpu.Seconds()/first.cpu.Seconds())
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchscale:", err)
	os.Exit(1)
}

type run struct {
	bin                          string
	nodes, deployments, replicas int
	timeout                      time.Duration
	cpuProfile, heapProfile      string
	profileSeconds               int
	profileAfter                 time.Duration
	serverLog, metrics           string
}

type result struct {
	pods    int
	elapsed time.Duration
	rssMiB  float64
	// cpu is the server's CPU time (user and system) from the first
	// create to all Ready: less noisy than the elapsed time on a shared
	// machine, and what bounds the rate when the cores are busy.
	cpu time.Duration
}

func (r run) do() (result, error) {
	dir, err := os.MkdirTemp("", "benchscale-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	srv, kubeconfig, err := start(r.bin, r.serverLog, filepath.Join(dir, "state"), "--nodes", strconv.Itoa(r.nodes), "--gateway-api=false")
	if err != nil {
		return result{}, err
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return result{}, err
	}
	config.QPS, config.Burst = -1, 0
	c, err := kubernetes.NewForConfig(config)
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	ns := "scale"
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return result{}, err
	}
	for { // pods wait for the namespace's ServiceAccount
		if _, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		if ctx.Err() != nil {
			return result{}, ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
	}
	pods := r.deployments * r.replicas
	fmt.Printf("%d Deployments × %d replicas on %d nodes\n", r.deployments, r.replicas, r.nodes)
	profiled := make(chan error, 1)
	if r.cpuProfile != "" {
		go func() {
			time.Sleep(r.profileAfter)
			profiled <- save(c.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(r.profileSeconds)), r.cpuProfile)
		}()
	} else {
		profiled <- nil
	}
	cpuBefore, err := cpuTime(srv.Process.Pid)
	if err != nil {
		return result{}, err
	}
	// Ready replicas from a watch, not a LIST in a loop: the bench's own
	// reads would otherwise be a share of the server's CPU it measures.
	factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	deployments := factory.Apps().V1().Deployments()
	deployments.Informer()
	stop := make(chan struct{})
	factory.Start(stop)
	defer factory.Shutdown()
	defer close(stop) // before Shutdown, which waits for the informer
	factory.WaitForCacheSync(ctx.Done())
	start := time.Now()
	// As one `kubectl apply` sends them: one after the other.
	for i := range r.deployments {
		if _, err := c.AppsV1().Deployments(ns).Create(ctx, deployment(fmt.Sprintf("d%d", i), int32(r.replicas)), metav1.CreateOptions{}); err != nil {
			return result{}, err
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		ready, err := readyReplicas(deployments.Lister())
		if err != nil {
			return result{}, err
		}
		if ready == pods {
			break
		}
		select {
		case <-ctx.Done():
			return result{}, fmt.Errorf("%d of %d pods ready after %v", ready, pods, r.timeout)
		case <-tick.C:
			rss, _ := rssMiB(srv.Process.Pid)
			fmt.Printf("  %5.1f s  %6d of %d ready  RSS %4.0f MiB\n", time.Since(start).Seconds(), ready, pods, rss)
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	rss, err := rssMiB(srv.Process.Pid)
	if err != nil {
		return result{}, err
	}
	cpuAfter, err := cpuTime(srv.Process.Pid)
	if err != nil {
		return result{}, err
	}
	fmt.Printf("  %5.1f s  %6d of %d ready  RSS %4.0f MiB\n", elapsed.Seconds(), pods, pods, rss)
	if err := <-profiled; err != nil {
		return result{}, fmt.Errorf("CPU profile: %w", err)
	}
	if r.heapProfile != "" {
		if err := save(c.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/heap"), r.heapProfile); err != nil {
			return result{}, fmt.Errorf("heap profile: %w", err)
		}
	}
	if r.metrics != "" {
		if err := save(c.CoreV1().RESTClient().Get().AbsPath("/metrics"), r.metrics); err != nil {
			return result{}, fmt.Errorf("metrics: %w", err)
		}
	}
	return result{pods: pods, elapsed: elapsed, rssMiB: rss, cpu: cpuAfter - cpuBefore}, nil
}

// save writes what the server answers to req into file.
func save(req *rest.Request, file string) error {
	data, err := req.DoRaw(context.Background())
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}

func readyReplicas(lister appslisters.DeploymentLister) (int, error) {
	l, err := lister.List(labels.Everything())
	if err != nil {
		return 0, err
	}
	ready := 0
	for _, d := range l {
		ready += int(d.Status.ReadyReplicas)
	}
	return ready, nil
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("10Mi")},
				}}}},
			},
		},
	}
}

// start runs `mockernetes serve` and returns once it printed its
// KUBECONFIG line (it does so when ready).
func start(bin, logFile, stateDir string, args ...string) (*exec.Cmd, string, error) {
	cmd := exec.Command(bin, append([]string{"serve", "--port", "0", "--state-dir", stateDir}, args...)...)
	if logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			return nil, "", err
		}
		defer f.Close() // the child has its own descriptor
		cmd.Stderr = f
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if path, ok := strings.CutPrefix(sc.Text(), "export KUBECONFIG="); ok {
			go func() { // keep draining
				for sc.Scan() {
				}
			}()
			return cmd, path, nil
		}
	}
	_ = cmd.Wait()
	return nil, "", errors.New("the server exited before it was ready")
}

// cpuTime is the user and system CPU time process pid used so far.
func cpuTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The fields after the command's closing parenthesis: utime and stime
	// are the 12th and 13th, in clock ticks (100 per second on Linux).
	_, rest, ok := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, errors.New("unexpected /proc/pid/stat")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

func rssMiB(pid int) (float64, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}
