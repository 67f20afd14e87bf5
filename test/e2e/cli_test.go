package e2e

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// runCLI runs mockernetes to completion and returns its exit code and stderr.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(mockernetesBin, args...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), stderr.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, stderr.String()
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("mockernetes %v did not exit; stderr: %s", args, stderr.String())
		return 0, ""
	}
}

func TestCLIErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"serve", "--port", "seventy"}, 2, `invalid argument "seventy" for "--port"`},
		{[]string{"serve", "--port", "70000"}, 2, "--port 70000 is not between 0 and 65535"},
		{[]string{"serve", "--service-cluster-ip-range", "10.96.0.0/99"}, 2, "--service-cluster-ip-range"},
		{[]string{"serve", "--disable-admission-plugins", "NoSuchPlugin"}, 2, `admission plugin "NoSuchPlugin" is unknown`},
		{[]string{"serve", "--authorization-mode", "Bogus"}, 2, `authorization-mode "Bogus" is not a valid mode`},
		{[]string{"serve", "--authorization-mode", "Webhook"}, 2, "--authorization-mode Webhook is not offered"},
		{[]string{"serve", "--history-window", "500ms"}, 2, "--history-window must be at least 1s, got 500ms"},
		{[]string{"serve", "extra"}, 2, "serve takes no arguments"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "--port", port}, 1, "address already in use"},
	} {
		code, stderr := runCLI(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != tc.code || len(lines) != 1 || !strings.Contains(lines[0], tc.want) || !strings.HasPrefix(lines[0], "mockernetes: ") {
			t.Errorf("mockernetes %v: exit %d, stderr %q; want exit %d and one line with %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestServeLifecycle(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "elsewhere", "config")
	s, err := startServer(filepath.Join(dir, "state"), "--kubeconfig", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if s.kubeconfig != kubeconfig {
		t.Errorf("export line names %q, want %q", s.kubeconfig, kubeconfig)
	}
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil || cfg.CurrentContext == "" {
		t.Fatalf("kubeconfig: %v %+v", err, cfg)
	}
	if v, err := s.client(t).Discovery().ServerVersion(); err != nil || v.GitVersion != k8sVersion {
		t.Errorf("server version %v %v", v, err)
	}
	ready := s.stderr.String()
	if !strings.Contains(ready, "mockernetes: Kubernetes "+k8sVersion+" ready at https://127.0.0.1:") || strings.Count(strings.TrimSpace(ready), "\n") != 0 {
		t.Errorf("ready line: %q", ready)
	}

	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatal("no exit 20 s after SIGTERM")
	}
	t.Logf("exited %v after SIGTERM", time.Since(start))
	if s.exitErr != nil {
		t.Errorf("exit after SIGTERM: %v; stderr: %s", s.exitErr, s.stderr.String())
	}
	caBefore, err := os.ReadFile(filepath.Join(dir, "state", "ca.crt"))
	if err != nil {
		t.Fatalf("an explicit state directory is kept: %v", err)
	}

	// A second run in the same state directory keeps the CA and the admin
	// credentials: the old kubeconfig works against the new server.
	again, err := startServer(filepath.Join(dir, "state"), "--kubeconfig", kubeconfig+".2")
	if err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(filepath.Join(dir, "state", "ca.crt"))
	if string(caAfter) != string(caBefore) {
		t.Error("the CA changed between runs in one state directory")
	}
	oldCfg := s.restConfig(t)
	oldCfg.Host = again.restConfig(t).Host
	if _, err := kubernetes.NewForConfigOrDie(oldCfg).Discovery().ServerVersion(); err != nil {
		t.Errorf("old kubeconfig against the restarted server: %v", err)
	}
	if err := again.stop(); err != nil {
		t.Fatal(err)
	}

	// Without --state-dir the temporary directory goes with the process.
	tmp, err := startServer("")
	if err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Dir(tmp.kubeconfig)
	if err := tmp.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
		t.Errorf("temporary state directory %s left behind: %v", stateDir, err)
	}
}

// The binary collects garbage less often while it starts (GOGC 400) and
// puts the collector back to the default a second after ready, unless the
// user set GOGC, which it leaves alone. The runtime's own figure is read
// from /metrics (go_gc_gogc_percent).
func TestStartupGC(t *testing.T) {
	gogc := func(s *server) int {
		t.Helper()
		body, err := s.client(t).CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(body)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go_gc_gogc_percent "); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatal("no go_gc_gogc_percent in /metrics")
		return 0
	}
	settled := func(s *server, want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for got := gogc(s); got != want; got = gogc(s) {
			if time.Now().After(deadline) {
				t.Fatalf("GOGC %d 20 s after ready, want %d", got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	args := []string{"--controllers=none", "--gateway-api=false"}
	s := startTestServer(t, args...)
	// Read at once: the setting is put back a second after ready.
	if got := gogc(s); got != 400 {
		t.Errorf("GOGC %d right after ready, want 400 while starting", got)
	}
	settled(s, 100)

	s2, err := startServerEnv(filepath.Join(t.TempDir(), "state"), []string{"GOGC=150"}, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s2.stop(); err != nil {
			t.Error(err)
		}
	}()
	if got := gogc(s2); got != 150 {
		t.Errorf("GOGC %d with GOGC=150 set, right after ready", got)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := gogc(s2); got != 150 {
		t.Errorf("GOGC %d with GOGC=150 set, 1.5 s after ready", got)
	}
}
