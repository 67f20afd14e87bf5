package envtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Option configures the Environment of ForTest.
type Option func(*Environment)

// WithCRDDirectoryPaths installs the CRDs of these files or directories.
func WithCRDDirectoryPaths(paths ...string) Option {
	return func(e *Environment) { e.CRDDirectoryPaths = append(e.CRDDirectoryPaths, paths...) }
}

// WithCRDs installs these CRDs.
func WithCRDs(crds ...*apiextensionsv1.CustomResourceDefinition) Option {
	return func(e *Environment) { e.CRDs = append(e.CRDs, crds...) }
}

// WithControllers runs these kube-controller-manager controllers ("*" for
// the whole cluster, with a scheduler and simulated nodes).
func WithControllers(controllers ...string) Option {
	return func(e *Environment) { e.Controllers = controllers }
}

// WithNodes simulates these nodes (with controllers).
func WithNodes(nodes ...NodeSpec) Option {
	return func(e *Environment) { e.Nodes = append([]NodeSpec{}, nodes...) }
}

// WithPodBehaviours gives the simulated containers behaviours.
func WithPodBehaviours(rules ...Rule) Option {
	return func(e *Environment) { e.PodBehaviours = append(e.PodBehaviours, rules...) }
}

// WithSettleOnWrite makes every write answer once the cluster settled.
func WithSettleOnWrite() Option { return func(e *Environment) { e.SettleOnWrite = true } }

// WithSchedulerConfig runs kube-scheduler with a KubeSchedulerConfiguration
// file.
func WithSchedulerConfig(file string) Option {
	return func(e *Environment) { e.SchedulerConfig = file }
}

// WithAllowLocalExec lets exec rules run local commands.
func WithAllowLocalExec() Option { return func(e *Environment) { e.AllowLocalExec = true } }

// WithTimeScale multiplies every simulated duration of the kubelets.
func WithTimeScale(scale float64) Option { return func(e *Environment) { e.TimeScale = scale } }

// WithGatewayAPI installs the Gateway API CRDs.
func WithGatewayAPI() Option { return func(e *Environment) { e.GatewayAPI = true } }

// WithScheme is the scheme of the controller-runtime client of
// ClientForTest (and of conversion webhooks). Default: client-go's.
func WithScheme(s *runtime.Scheme) Option { return func(e *Environment) { e.Scheme = s } }

// ForTest returns the admin configuration of a cluster that is fresh for
// t: as it was at the end of Start, whatever earlier tests did. Servers
// are shared across the tests of the binary: one per set of options,
// started on first use and reset for each test; a parallel test gets a
// server no running test holds (a new one if all are taken). The server
// goes back to the pool when t ends.
func ForTest(t testing.TB, opts ...Option) *rest.Config {
	t.Helper()
	return rest.CopyConfig(EnvironmentForTest(t, opts...).Config)
}

// ClientForTest is ForTest's cluster through a controller-runtime client
// of the options' scheme.
func ClientForTest(t testing.TB, opts ...Option) client.Client {
	t.Helper()
	env := EnvironmentForTest(t, opts...)
	c, err := client.New(rest.CopyConfig(env.Config), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatalf("envtest: client: %v", err)
	}
	return c
}

// EnvironmentForTest is ForTest's Environment, for its test-control API
// (Control, Settle) and users. Do not Stop it: the pool does.
func EnvironmentForTest(t testing.TB, opts ...Option) *Environment {
	t.Helper()
	want := &Environment{}
	for _, o := range opts {
		o(want)
	}
	key, err := poolKey(want)
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	env, fresh, err := pools.acquire(key, want, opts)
	if err != nil {
		t.Fatalf("envtest: starting a server: %v", err)
	}
	t.Cleanup(func() { pools.release(key, env) })
	if !fresh {
		if err := env.Reset(); err != nil {
			t.Fatalf("envtest: reset: %v", err)
		}
	}
	return env
}

// pools holds the shared servers of ForTest, by options: the one piece of
// process-wide state of this package, as a test binary's servers are
// shared by its tests.
var pools = &serverPools{free: map[string][]*Environment{}}

type serverPools struct {
	mu   sync.Mutex
	free map[string][]*Environment
}

// acquire takes a free server of these options, or starts one (fresh).
func (p *serverPools) acquire(key string, want *Environment, opts []Option) (*Environment, bool, error) {
	p.mu.Lock()
	if l := p.free[key]; len(l) > 0 {
		env := l[len(l)-1]
		p.free[key] = l[:len(l)-1]
		p.mu.Unlock()
		return env, false, nil
	}
	p.mu.Unlock()
	env := &Environment{}
	for _, o := range opts {
		o(env)
	}
	dir, err := sharedStateDir()
	if err != nil {
		return nil, false, err
	}
	env.ControlPlane.GetAPIServer().CertDir = dir
	if _, err := env.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, false, err
	}
	return env, true, nil
}

func (p *serverPools) release(key string, env *Environment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free[key] = append(p.free[key], env)
}

// poolKey identifies servers started the same way.
func poolKey(e *Environment) (string, error) {
	names := make([]string, 0, len(e.CRDs))
	for _, crd := range e.CRDs {
		data, err := json.Marshal(crd)
		if err != nil {
			return "", err
		}
		names = append(names, string(data))
	}
	data, err := json.Marshal(struct {
		Paths, CRDs, Controllers []string
		Nodes                    []NodeSpec
		NilNodes                 bool
		Rules                    []Rule
		Settle, Gateway          bool
		Scheme, SchedulerConfig  string
		TimeScale                float64
		AllowLocalExec           bool
	}{e.CRDDirectoryPaths, names, e.Controllers, e.Nodes, e.Nodes == nil, e.PodBehaviours, e.SettleOnWrite, e.GatewayAPI, fmt.Sprintf("%p", e.Scheme), e.SchedulerConfig, e.TimeScale, e.AllowLocalExec})
	return string(data), err
}

// sharedStateDir is a state directory for a pooled server, which lives as
// long as the test binary: nothing stops it, so its directory is named
// after the process and removed by a later binary once that process is
// gone.
func sharedStateDir() (string, error) {
	root := filepath.Join(os.TempDir(), "mockernetes-envtest-"+strconv.Itoa(os.Getuid()))
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d-", &pid); err == nil && pid != os.Getpid() && !processAlive(pid) {
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
	return os.MkdirTemp(root, strconv.Itoa(os.Getpid())+"-")
}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}
