package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
)

// sessionsConfig answers two commands by rule and runs a third locally.
const sessionsConfig = `
podBehaviours:
- match: {image: "postgres*"}
  behaviour:
    exec:
    - command: "pg_isready*"
      stdout: "/var/run/postgresql:5432 - accepting connections\n"
    - command: "pg_dump *"
      stderr: "pg_dump: error: connection to server failed\n"
      exitCode: 2
    - command: "psql *"
      local: ["/bin/sh", "-c", "echo local psql; cat; exit 6"]
`

// exec runs a command in a pod through client-go, over SPDY or WebSocket.
func execIn(t *testing.T, cfg *rest.Config, c kubernetes.Interface, ns, pod string, websocket bool, stdin string, tty bool, command ...string) (string, string, error) {
	t.Helper()
	req := c.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Command: command, Stdin: stdin != "", Stdout: true, Stderr: !tty, TTY: tty}, scheme.ParameterCodec)
	var executor remotecommand.Executor
	var err error
	if websocket {
		executor, err = remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	} else {
		executor, err = remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	}
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	opts := remotecommand.StreamOptions{Stdout: &stdout, Tty: tty}
	if !tty {
		opts.Stderr = &stderr
	}
	if stdin != "" {
		opts.Stdin = strings.NewReader(stdin)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = executor.StreamWithContext(ctx, opts)
	return stdout.String(), stderr.String(), err
}

// exitCode is a command's exit status, of a local process (kubectl) or of
// one in a pod (client-go's executor); -1 if it did not run.
func exitCode(err error) int {
	var remote utilexec.CodeExitError
	var local interface{ ExitCode() int }
	switch {
	case err == nil:
		return 0
	case errors.As(err, &remote):
		return remote.Code
	case errors.As(err, &local):
		return local.ExitCode()
	}
	return -1
}

func TestExec(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(file, []byte(sessionsConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startTestServer(t, "--settle-on-write", "--cluster-config", file, "--allow-local-exec")
	c, cfg := s.client(t), s.restConfig(t)
	ctx := t.Context()
	db := pod("db", nil)
	db.Spec.Containers = []corev1.Container{{Name: "postgres", Image: "postgres:17", Env: []corev1.EnvVar{{Name: "PGUSER", Value: "app"}}}}
	pending := pod("pending", nil)
	pending.Annotations = map[string]string{"mockernetes.io/start-delay": "1h"}
	for _, p := range []*corev1.Pod{db, pending} {
		if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// kubectl: scripted answers, the simulated shell, unknown commands.
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"pg_isready", "-h", "localhost"}, "/var/run/postgresql:5432 - accepting connections\n", 0},
		{[]string{"pg_dump", "app"}, "pg_dump: error: connection to server failed\ncommand terminated with exit code 2\n", 2},
		{[]string{"sh", "-c", "echo one && false || echo two; exit 5"}, "one\ntwo\ncommand terminated with exit code 5\n", 5},
		{[]string{"printenv", "PGUSER"}, "app\n", 0},
		{[]string{"sh", "-c", "env | grep ^PG | wc -l"}, "1\n", 0},
		{[]string{"hostname"}, "db\n", 0},
		{[]string{"ls", "/"}, "ls: can't list '/': mockernetes simulates only the files of ConfigMap, Secret, downward API, projected and emptyDir volumes\ncommand terminated with exit code 1\n", 1},
		{[]string{"curl", "-s", "localhost"}, "sh: curl: not found\ncommand terminated with exit code 127\n", 127},
	} {
		out, err := s.kubectl(t, kubectlBin, "", append([]string{"exec", "db", "--"}, tc.args...)...)
		if out != tc.want || exitCode(err) != tc.code {
			t.Errorf("kubectl exec db -- %s: %q (%v), want %q (exit %d)", strings.Join(tc.args, " "), out, err, tc.want, tc.code)
		}
	}
	// A container not running yet: the runtime's answer, through kube-apiserver.
	out, err := s.kubectl(t, kubectlBin, "", "exec", "pending", "--", "true")
	if err == nil || !strings.Contains(out, `unable to upgrade connection: container not found ("app")`) {
		t.Errorf("exec into a pending pod: %v %q", err, out)
	}
	out, err = s.kubectl(t, kubectlBin, "", "exec", "db", "-c", "nope", "--", "true")
	if err == nil || !strings.Contains(out, "container nope is not valid for pod db") {
		t.Errorf("exec into a missing container: %v %q", err, out)
	}

	// client-go over both protocols: stdout, stderr, stdin, exit codes, tty.
	for _, websocket := range []bool{false, true} {
		name := map[bool]string{false: "SPDY", true: "WebSocket"}[websocket]
		stdout, stderr, err := execIn(t, cfg, c, "default", "db", websocket, "", false, "pg_dump", "app")
		if stdout != "" || stderr != "pg_dump: error: connection to server failed\n" || exitCode(err) != 2 {
			t.Errorf("%s pg_dump: %q %q %v", name, stdout, stderr, err)
		}
		stdout, _, err = execIn(t, cfg, c, "default", "db", websocket, "line 1\nline 2\n", false, "cat")
		if stdout != "line 1\nline 2\n" || err != nil {
			t.Errorf("%s cat: %q %v", name, stdout, err)
		}
		stdout, _, err = execIn(t, cfg, c, "default", "db", websocket, "select 1;\n", false, "psql", "-c", "select 1")
		if stdout != "local psql\nselect 1;\n" || exitCode(err) != 6 {
			t.Errorf("%s local command: %q %v", name, stdout, err)
		}
		stdout, _, err = execIn(t, cfg, c, "default", "db", websocket, "echo hi\nexit 7\n", true, "sh")
		if stdout != "/ # echo hi\r\nhi\r\n/ # exit 7\r\n" || exitCode(err) != 7 {
			t.Errorf("%s sh with a terminal: %q %v", name, stdout, err)
		}
	}
}

// Port-forward, pods/proxy and services/proxy reach the test's own HTTP
// server through a forwarding annotation; other ports are refused as when
// nothing listens.
func TestPortForwardAndProxy(t *testing.T) {
	c, cfg := shared.client(t), shared.restConfig(t)
	ns := newNamespace(t, c)
	ctx := t.Context()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %s", r.URL.Path)
	}))
	defer backend.Close()
	web := pod("web", map[string]string{"app": "web"})
	web.Annotations = map[string]string{"mockernetes.io/port-forward": "80=" + strings.TrimPrefix(backend.URL, "http://")}
	web.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(80)}}}}
	if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running(t, c, ns, "web")

	// pods/proxy; services/proxy once the endpoint is ready.
	got, err := c.CoreV1().Pods(ns).ProxyGet("http", "web", "80", "/healthz", nil).DoRaw(ctx)
	if err != nil || string(got) != "backend saw /healthz" {
		t.Errorf("pods/proxy: %v %q", err, got)
	}
	var last string
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err = c.CoreV1().Services(ns).ProxyGet("http", "web", "8080", "/index.html", nil).DoRaw(ctx)
		if err == nil && string(got) == "backend saw /index.html" {
			break
		}
		last = fmt.Sprintf("%v %q", err, got)
		if time.Now().After(deadline) {
			t.Fatalf("services/proxy: %s", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body, err := c.CoreV1().Pods(ns).ProxyGet("http", "web", "81", "/", nil).DoRaw(ctx); !apierrors.IsServiceUnavailable(err) || !strings.Contains(string(body), "connect: connection refused") {
		t.Errorf("pods/proxy to a port nothing listens on: %v %s", err, body)
	}

	// client-go's portforward package.
	req := c.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("web").SubResource("portforward")
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", req.URL())
	stop, ready := make(chan struct{}), make(chan struct{})
	var pfOut, pfErr bytes.Buffer
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:80", "0:81"}, stop, ready, &pfOut, &pfErr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward: %v", err)
	}
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/forwarded", ports[0].Local))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "backend saw /forwarded" {
		t.Errorf("port-forward to 80: %q", body)
	}
	// Port 81: the connection is dropped and the error stream says why.
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[1].Local)); err == nil {
		resp.Body.Close()
		t.Errorf("port-forward to 81 answered %s", resp.Status)
	}
	close(stop)
	<-done

	// kubectl port-forward.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(pctx, kubectlBin, "--kubeconfig", shared.kubeconfig, "-n", ns, "port-forward", "pod/web", ":80")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	line := make([]byte, 200)
	n, _ := stdout.Read(line)
	var local int
	if _, err := fmt.Sscanf(string(line[:n]), "Forwarding from 127.0.0.1:%d -> 80", &local); err != nil {
		t.Fatalf("kubectl port-forward printed %q", line[:n])
	}
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/kubectl", local))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "backend saw /kubectl" {
		t.Errorf("kubectl port-forward: %q", body)
	}
}

// running waits for a pod to run.
func running(t *testing.T, c kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := c.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s not running: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kubectl run: one-off pods run to completion, an attached shell runs
// what stdin says and the pod ends with its exit status, --rm deletes it.
func TestKubectlRun(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	out, err := shared.kubectl(t, kubectlBin, "echo hello from sh; exit 3\n", "-n", ns, "run", "-i", "--rm", "--restart=Never", "shell", "--image=busybox", "--", "sh")
	if exitCode(err) != 3 || !strings.Contains(out, "hello from sh\n") || !strings.Contains(out, `pod "shell" deleted`) {
		t.Errorf("kubectl run -i --rm sh: %v %q", err, out)
	}
	out, err = shared.kubectl(t, kubectlBin, "", "-n", ns, "run", "-i", "--rm", "--restart=Never", "once", "--image=busybox", "--", "sh", "-c", "echo one-shot")
	if err != nil || !strings.Contains(out, "one-shot\n") {
		t.Errorf("kubectl run -i --rm sh -c: %v %q", err, out)
	}
	// What the attached shell printed is the container's log.
	if out, err := shared.kubectl(t, kubectlBin, "echo kept\n", "-n", ns, "run", "-i", "--restart=Never", "kept", "--image=busybox", "--", "sh"); err != nil {
		t.Fatalf("kubectl run -i: %v %s", err, out)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "logs", "kept"); err != nil || out != "kept\n" {
		t.Errorf("kubectl logs of an attached shell: %v %q", err, out)
	}
	if err := c.CoreV1().Pods(ns).Delete(t.Context(), "kept", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// kubectl attach to a container that does not read stdin: its output,
	// followed until it exits.
	attached := pod("attached", nil)
	attached.Spec.RestartPolicy = corev1.RestartPolicyNever
	attached.Spec.Containers[0].Command = []string{"sh", "-c", "echo attached output; sleep 3"}
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), attached, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	started := running(t, c, ns, "attached").Status.ContainerStatuses[0].State.Running.StartedAt.Time
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "attach", "attached"); err != nil || !strings.Contains(out, "attached output\n") {
		t.Errorf("kubectl attach: %v %q", err, out)
	}
	// startedAt is to the second: the container ran at least 2 s of its 3.
	if ran := time.Since(started); ran < 2*time.Second {
		t.Errorf("kubectl attach returned %s after the container started, before it exited", ran)
	}
	if err := c.CoreV1().Pods(ns).Delete(t.Context(), "attached", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "run", "--restart=Never", "done", "--image=busybox", "--", "echo", "done"); err != nil {
		t.Fatalf("kubectl run: %v %s", err, out)
	}
	out, err = shared.kubectl(t, kubectlBin, "", "-n", ns, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/done", "--timeout=30s")
	if err != nil {
		t.Errorf("a one-off pod did not succeed: %v %s", err, out)
	}
	if pods, _ := c.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{}); len(pods.Items) != 1 {
		t.Errorf("pods left: %d, want only the one-off pod", len(pods.Items))
	}
}

// kubectl debug adds an ephemeral container to a running pod: the kubelet
// starts it; one that runs a command ends with it and its output is its
// log; one attached to (-i) runs what stdin says and ends with its shell;
// the pod stays Running throughout.
func TestKubectlDebug(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), pod("target", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running(t, c, ns, "target")
	ended := func(name string) corev1.ContainerStatus {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			p, err := c.CoreV1().Pods(ns).Get(t.Context(), "target", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range p.Status.EphemeralContainerStatuses {
				if s.Name == name && s.State.Terminated != nil {
					if p.Status.Phase != corev1.PodRunning {
						t.Errorf("pod %s after %s ended, want Running", p.Status.Phase, name)
					}
					return s
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("ephemeral container %s did not end: %+v", name, p.Status.EphemeralContainerStatuses)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "debug", "target", "--image=busybox:1.36", "--container=probe", "--", "sh", "-c", "echo from the debugger")
	if err != nil {
		t.Fatalf("kubectl debug: %v %s", err, out)
	}
	if s := ended("probe"); s.State.Terminated.ExitCode != 0 || s.Ready || s.RestartCount != 0 {
		t.Errorf("probe: %+v, want ended with 0, never ready or restarted", s)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "logs", "target", "-c", "probe"); err != nil || out != "from the debugger\n" {
		t.Errorf("kubectl logs of the ephemeral container: %v %q", err, out)
	}

	out, err = shared.kubectl(t, kubectlBin, "echo hello from debug; exit 3\n", "-n", ns, "debug", "-i", "target", "--image=busybox:1.36", "--container=shell", "--", "sh")
	if !strings.Contains(out, "hello from debug\n") {
		t.Errorf("kubectl debug -i: %v %q, want what the shell printed", err, out)
	}
	if s := ended("shell"); s.State.Terminated.ExitCode != 3 {
		t.Errorf("shell: %+v, want ended with its exit status 3", s)
	}
}

// 1,000 pods come and go on one node, at most 100 alive at once and the
// first 50 alive throughout: each gets an address, addresses are reused (a
// node's range has 253), and no two pods that exist at the same time ever
// share one.
func TestPodIPsNeverShared(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	ctx := t.Context()
	w, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	holder := map[string]string{} // address → pod holding it
	ipOf := map[string]string{}
	addressed, seen := 0, map[string]bool{}
	// await reads events until every named pod has an address.
	await := func(names []string) {
		t.Helper()
		timeout := time.After(time.Minute)
		for {
			missing := 0
			for _, n := range names {
				if ipOf[n] == "" {
					missing++
				}
			}
			if missing == 0 {
				return
			}
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatal("watch ended")
				}
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					t.Fatalf("event %v", ev.Object)
				}
				ip := p.Status.PodIP
				switch {
				case ev.Type == "DELETED":
					if ipOf[p.Name] != "" {
						delete(holder, ipOf[p.Name])
					}
				case ip != "" && ipOf[p.Name] == "":
					if other, ok := holder[ip]; ok && other != p.Name {
						t.Fatalf("%s got %s, which %s holds", p.Name, ip, other)
					}
					holder[ip], ipOf[p.Name] = p.Name, ip
					addressed++
					seen[ip] = true
				}
			case <-timeout:
				t.Fatalf("%d pods without an address after a minute", missing)
			}
		}
	}
	var alive []string
	for batch := range 20 {
		var names []string
		for i := range 50 {
			p := pod(fmt.Sprintf("p-%d-%d", batch, i), nil)
			p.Spec.NodeName = "node-1"
			if _, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			names = append(names, p.Name)
		}
		await(names)
		if batch == 0 {
			continue // they stay
		}
		alive = append(alive, names...)
		if len(alive) > 50 {
			for _, n := range alive[:50] {
				if err := c.CoreV1().Pods(ns).Delete(ctx, n, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
					t.Fatal(err)
				}
			}
			alive = alive[50:]
		}
	}
	if addressed != 1000 || len(seen) > 253 {
		t.Errorf("%d pods addressed with %d distinct addresses", addressed, len(seen))
	}
}

// helm's everyday cycle on a chart from `helm create`: install waiting for
// readiness, the chart's test hook (a one-off wget pod) succeeding, and
// uninstall waiting for the resources to go. `make test` builds helm and
// names it in MOCKERNETES_HELM.
func TestHelm(t *testing.T) {
	helm := os.Getenv("MOCKERNETES_HELM")
	if helm == "" {
		t.Skip("MOCKERNETES_HELM names no helm binary (make test builds one)")
	}
	s := startTestServer(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), helm, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig, "HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
			"HELM_CONFIG_HOME="+filepath.Join(dir, "config"), "HELM_DATA_HOME="+filepath.Join(dir, "data"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("create", "demo")
	if out := run("install", "demo", "./demo", "--wait", "--timeout", "60s"); !strings.Contains(out, "STATUS: deployed") {
		t.Errorf("helm install: %s", out)
	}
	c := s.client(t)
	if d, err := c.AppsV1().Deployments("default").Get(t.Context(), "demo", metav1.GetOptions{}); err != nil || d.Status.ReadyReplicas != 1 {
		t.Errorf("after helm install --wait: %v %+v", err, d.Status)
	}
	if out := run("test", "demo", "--timeout", "60s"); !strings.Contains(out, "TEST SUITE:     demo-test-connection") || !strings.Contains(out, "Phase:          Succeeded") {
		t.Errorf("helm test: %s", out)
	}
	if out := run("uninstall", "demo", "--wait", "--timeout", "60s"); !strings.Contains(out, `release "demo" uninstalled`) {
		t.Errorf("helm uninstall: %s", out)
	}
	selector := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=demo"}
	deployments, err := c.AppsV1().Deployments("default").List(t.Context(), selector)
	if err != nil || len(deployments.Items) != 0 {
		t.Errorf("deployments left after helm uninstall --wait: %v %d", err, len(deployments.Items))
	}
	services, err := c.CoreV1().Services("default").List(t.Context(), selector)
	if err != nil || len(services.Items) != 0 {
		t.Errorf("services left after helm uninstall --wait: %v %d", err, len(services.Items))
	}
	// The test hook's pod stays, Succeeded, as on any cluster (hooks are
	// not part of the release); the Deployment's pods are gone.
	pods, err := c.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=demo"})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Name != "demo-test-connection" || pods.Items[0].Status.Phase != corev1.PodSucceeded {
		t.Errorf("pods after helm uninstall --wait: %v %s", err, podNames(pods))
	}
}
