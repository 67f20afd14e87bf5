// Package e2e runs the mockernetes binary as a separate process and talks to
// it over HTTPS with real clients: client-go, the dynamic client, kubectl
// (the one on PATH and one built from k8s.io/kubectl at the pinned version).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	binDir         string
	mockernetesBin string
	kubectlBin     string // built from k8s.io/kubectl at the pinned version
	k8sVersion     string // what `mockernetes version` prints, e.g. v1.37.2
	shared         *server
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mockernetes-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	mockernetesBin = filepath.Join(dir, "mockernetes")
	kubectlBin = filepath.Join(dir, "kubectl")
	// MOCKERNETES_E2E_RACE=1 builds the server with the race detector: a
	// race makes it exit non-zero, which fails the test that stops it.
	var race []string
	if os.Getenv("MOCKERNETES_E2E_RACE") != "" {
		race = []string{"-race"}
	}
	if err := goBuild(mockernetesBin, "github.com/mockernetes/mockernetes/cmd/mockernetes", "", race...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, err := exec.Command(mockernetesBin, "version").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mockernetes version:", err)
		return 1
	}
	k8sVersion = strings.TrimSpace(string(out))
	minor := strings.Split(strings.TrimPrefix(k8sVersion, "v"), ".")[1]
	stamp := fmt.Sprintf("-X k8s.io/client-go/pkg/version.gitVersion=%[1]s -X k8s.io/component-base/version.gitVersion=%[1]s "+
		"-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=%[2]s "+
		"-X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=%[2]s", k8sVersion, minor)
	if err := goBuild(kubectlBin, "github.com/mockernetes/mockernetes/hack/kubectl", stamp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shared, err = startServer(filepath.Join(dir, "shared"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if err := shared.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the shared server:", err)
		code = 1
	}
	return code
}

func goBuild(out, pkg, ldflags string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// server is one `mockernetes serve` process.
type server struct {
	cmd        *exec.Cmd
	stateDir   string
	kubeconfig string
	stderr     *syncBuffer
	exited     chan struct{}
	exitErr    error
}

// startServer runs `mockernetes serve --port 0` with its state in stateDir
// and returns once it printed its KUBECONFIG line (it does so when ready).
func startServer(stateDir string, extra ...string) (*server, error) {
	return startServerEnv(stateDir, nil, extra...)
}

// startServerEnv is startServer with env added to the process's environment.
func startServerEnv(stateDir string, env []string, extra ...string) (*server, error) {
	args := append([]string{"serve", "--port", "0", "--state-dir", stateDir}, extra...)
	cmd := exec.Command(mockernetesBin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, stateDir: stateDir, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-s.exited
				return nil, fmt.Errorf("server exited before ready (%v): %s", s.exitErr, s.stderr.String())
			}
			if path, found := strings.CutPrefix(line, "export KUBECONFIG="); found {
				s.kubeconfig = path
				go func() { // keep draining
					for range lines {
					}
				}()
				return s, nil
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			return nil, fmt.Errorf("server not ready after 2 minutes: %s", s.stderr.String())
		}
	}
}

// startTestServer starts a server of the test's own, stopped when it ends.
func startTestServer(t *testing.T, args ...string) *server {
	t.Helper()
	s, err := startServer(filepath.Join(t.TempDir(), "state"), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("no exit 30 s after SIGTERM")
	}
	if s.exitErr != nil {
		return fmt.Errorf("exit: %v; stderr: %s", s.exitErr, s.stderr.String())
	}
	return nil
}

func (s *server) restConfig(t testing.TB) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling in tests
	return cfg
}

func (s *server) client(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *server) dynamic(t testing.TB) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(s.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kubectl runs a kubectl binary against the server; stdin may be empty.
func (s *server) kubectl(t testing.TB, bin, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", s.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// kubectls are the kubectl binaries to test with: the one built from the
// pinned k8s.io/kubectl always, the machine's when there is one.
func kubectls(t *testing.T) map[string]string {
	bins := map[string]string{"kubectl-" + k8sVersion: kubectlBin}
	if path, err := exec.LookPath("kubectl"); err == nil {
		bins["kubectl-on-path"] = path
	} else {
		t.Log("no kubectl on PATH; testing only the built one")
	}
	return bins
}

func readStateFile(s *server, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.stateDir, name))
	return string(b), err
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = &syncBuffer{}
