package envtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/logging"
	"github.com/mockernetes/mockernetes/pkg/server"
	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// The environment variables envtest reads, and Mockernetes' own.
const (
	envUseExistingCluster = "USE_EXISTING_CLUSTER"
	envStartTimeout       = "KUBEBUILDER_CONTROLPLANE_START_TIMEOUT"
	envStopTimeout        = "KUBEBUILDER_CONTROLPLANE_STOP_TIMEOUT"
	envAttachOutput       = "KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT"
	// EnvControllers is read when Environment.Controllers is unset: a
	// comma-separated --controllers value ("*" for the whole cluster), so
	// an unchanged envtest suite can run with the cluster's controllers.
	EnvControllers = "MOCKERNETES_CONTROLLERS"

	// StartTimeout and StopTimeout are envtest's constants (seconds).
	StartTimeout = 60
	StopTimeout  = 60

	defaultControlPlaneStartTimeout = 20 * time.Second
	defaultControlPlaneStopTimeout  = 20 * time.Second
	// settleTimeout bounds the settle of Reset, Settle and the baseline.
	settleTimeout = 10 * time.Second
)

// The kubelet's types a test configures Nodes and PodBehaviours with.
type (
	NodeSpec    = clusterconfig.NodeSpec
	Rule        = clusterconfig.Rule
	Match       = clusterconfig.Match
	Behaviour   = clusterconfig.Behaviour
	ExecRule    = clusterconfig.ExecRule
	PortForward = clusterconfig.PortForward
)

// Environment is a Kubernetes API server for a test, with the fields and
// methods of controller-runtime's envtest.Environment: swapping the import
// path is all an envtest suite changes. The server runs in the test's
// process (no binaries, no etcd, nothing to download) on 127.0.0.1 and a
// free port; several Environments can run at once.
//
// Beyond envtest: Controllers (with nodes and pods that run), Reset,
// Settle and the rest of the test-control API through Control.
type Environment struct {
	// ControlPlane is the in-process API server; its APIServer's
	// SecureServing address is honoured.
	ControlPlane ControlPlane

	// Scheme decides which CRDs get conversion webhooks (those whose
	// types in it are Hub or Convertible). Default: client-go's scheme.
	Scheme *runtime.Scheme

	// Config talks to the server as admin, set by Start. With
	// UseExistingCluster, a Config set before Start is used.
	Config *rest.Config

	// KubeConfig is Config as a kubeconfig file, set by Start unless set.
	KubeConfig []byte

	// CRDInstallOptions are the options for installing CRDs.
	CRDInstallOptions CRDInstallOptions

	// WebhookInstallOptions are the options for installing webhooks: Start
	// fills in LocalServingHost, LocalServingPort and LocalServingCertDir
	// as envtest does, for a webhook server in the test to serve on.
	WebhookInstallOptions WebhookInstallOptions

	// ErrorIfCRDPathMissing makes Start fail when a CRD path does not
	// exist.
	ErrorIfCRDPathMissing bool

	// CRDs and CRDDirectoryPaths are CRDs to install, merged with
	// CRDInstallOptions'. They are installed before the controllers start
	// and belong to what Reset returns to.
	CRDs              []*apiextensionsv1.CustomResourceDefinition
	CRDDirectoryPaths []string

	// DownloadBinaryAssets, DownloadBinaryAssetsVersion,
	// DownloadBinaryAssetsIndexURL and BinaryAssetsDirectory are accepted
	// and ignored: there is nothing to download or find.
	DownloadBinaryAssets         bool
	DownloadBinaryAssetsVersion  string
	DownloadBinaryAssetsIndexURL string
	BinaryAssetsDirectory        string

	// UseExistingCluster (or USE_EXISTING_CLUSTER=true) uses the cluster
	// of Config or the default kubeconfig instead of starting a server.
	// Reset, Settle and Control work when that cluster is a Mockernetes
	// server.
	UseExistingCluster *bool

	// ControlPlaneStartTimeout bounds Start (default
	// KUBEBUILDER_CONTROLPLANE_START_TIMEOUT or 20 s; a start takes well
	// under a second).
	ControlPlaneStartTimeout time.Duration
	// ControlPlaneStopTimeout bounds Stop (default
	// KUBEBUILDER_CONTROLPLANE_STOP_TIMEOUT or 20 s).
	ControlPlaneStopTimeout time.Duration

	// AttachControlPlaneOutput (or KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT
	// =true) sends the upstream components' logs to APIServer.Err
	// (default os.Stderr); otherwise only their errors are, on the first
	// Start of the process (klog is process-wide).
	AttachControlPlaneOutput bool

	// Controllers selects the kube-controller-manager controllers to run,
	// in its --controllers syntax: "*" runs the cluster's default set
	// (Deployments, ReplicaSets, garbage collection, namespaces, ...) with
	// a scheduler and simulated kubelets. Default: MOCKERNETES_CONTROLLERS,
	// else none, as envtest.
	Controllers []string
	// Nodes are the simulated nodes when controllers run. Nil means one,
	// "node-1"; an empty non-nil slice none.
	Nodes []NodeSpec
	// PodBehaviours give the simulated containers behaviours (start and
	// ready delays, exit codes, restarts, logs) by namespace, labels, image
	// or name.
	PodBehaviours []Rule
	// TimeScale multiplies every simulated duration of the kubelets
	// (containers' sleeps, start and ready delays, back-offs): 0.01 runs a
	// `sleep 2` in 20 ms. Zero leaves them as given.
	TimeScale float64
	// SchedulerConfig is a KubeSchedulerConfiguration file for the
	// in-process kube-scheduler (profiles, plugins, their args), as
	// kube-scheduler's --config takes it. Default: its defaults.
	SchedulerConfig string
	// AllowLocalExec lets PodBehaviours' exec rules run local commands
	// (their Local field) for the commands they match.
	AllowLocalExec bool
	// GatewayAPI installs the Gateway API standard-channel CRDs.
	GatewayAPI bool
	// SettleOnWrite makes every write answer only once the cluster has
	// settled, so a test can read the controllers' results at once.
	SettleOnWrite bool

	srv     *server.Server
	stop    context.CancelFunc
	done    <-chan error
	control *testcontrol.Client
}

// Start starts the server (or connects to the existing cluster), installs
// the CRDs and webhooks, and returns the admin configuration. What Start
// installed is what Reset returns to.
func (te *Environment) Start() (_ *rest.Config, err error) {
	defer func() {
		// A server this Start started does not outlive its failure.
		if err != nil && te.srv != nil {
			_ = te.stopServer()
		}
	}()
	te.CRDInstallOptions.CRDs = mergeCRDs(te.CRDInstallOptions.CRDs, te.CRDs)
	te.CRDInstallOptions.Paths = mergePaths(te.CRDInstallOptions.Paths, te.CRDDirectoryPaths)
	te.CRDInstallOptions.ErrorIfPathMissing = te.ErrorIfCRDPathMissing
	if te.useExistingCluster() {
		if te.Config == nil {
			var err error
			if te.Config, err = config.GetConfig(); err != nil {
				return nil, fmt.Errorf("unable to get configuration for existing cluster: %w", err)
			}
		}
	} else {
		if err := te.defaultTimeouts(); err != nil {
			return nil, fmt.Errorf("failed to default controlplane timeouts: %w", err)
		}
		if err := te.startServer(); err != nil {
			return nil, fmt.Errorf("unable to start control plane itself: %w", err)
		}
		admin, err := te.ControlPlane.AddUser(User{Name: "admin", Groups: []string{"system:masters"}}, &rest.Config{QPS: 1000, Burst: 2000})
		if err != nil {
			return nil, fmt.Errorf("unable to provision admin user: %w", err)
		}
		te.Config = admin.Config()
	}
	if len(te.KubeConfig) == 0 {
		var err error
		if te.KubeConfig, err = kubeConfigFromREST(te.Config); err != nil {
			return nil, fmt.Errorf("unable to set KubeConfig field: %w", err)
		}
	}
	if te.Scheme == nil {
		te.Scheme = scheme.Scheme
	}
	if te.control, err = testcontrol.New(te.Config); err != nil {
		return nil, err
	}
	if err := te.WebhookInstallOptions.PrepWithoutInstalling(); err != nil {
		return nil, err
	}
	if te.CRDInstallOptions.Scheme == nil {
		te.CRDInstallOptions.Scheme = te.Scheme
	}
	te.CRDInstallOptions.WebhookOptions = te.WebhookInstallOptions
	crds, err := InstallCRDs(te.Config, te.CRDInstallOptions)
	if err != nil {
		return te.Config, fmt.Errorf("unable to install CRDs onto control plane: %w", err)
	}
	te.CRDs = crds
	if err := te.WebhookInstallOptions.Install(te.Config); err != nil {
		return nil, fmt.Errorf("unable to install webhooks onto control plane: %w", err)
	}
	// What Start installed is what Reset returns to. An existing cluster
	// that is not a Mockernetes server has no such endpoint (404).
	ctx, cancel := context.WithTimeout(context.Background(), 2*settleTimeout)
	defer cancel()
	if err := te.control.TakeBaseline(ctx, settleTimeout); err != nil && !(te.srv == nil && apierrors.IsNotFound(err)) {
		return nil, fmt.Errorf("taking the reset baseline: %w", err)
	}
	return te.Config, nil
}

// startServer runs the in-process server until Stop and waits until it is
// ready. The CRDs are read first and preloaded, so that the controllers
// start knowing them (the garbage collector follows owners of their kinds
// from its first discovery).
func (te *Environment) startServer() error {
	preload := te.CRDInstallOptions
	preload.CRDs = append([]*apiextensionsv1.CustomResourceDefinition(nil), preload.CRDs...)
	if err := ReadCRDFiles(&preload); err != nil {
		return err
	}
	apiServer := te.ControlPlane.GetAPIServer()
	te.setupLogging(apiServer)

	opts := &server.Options{
		StateDir:                  apiServer.CertDir,
		AuthorizationModes:        authorizationModes(apiServer),
		Controllers:               te.controllers(),
		NodeSpecs:                 te.Nodes,
		PodBehaviours:             te.PodBehaviours,
		GatewayAPI:                te.GatewayAPI,
		SchedulerConfig:           te.SchedulerConfig,
		TimeScale:                 te.TimeScale,
		AllowLocalExec:            te.AllowLocalExec,
		SettleOnWrite:             te.SettleOnWrite,
		CustomResourceDefinitions: mergeCRDs(preload.CRDs, nil),
	}
	if te.Nodes == nil {
		opts.Nodes = 1
	}
	if apiServer.Address != "" {
		ip := net.ParseIP(apiServer.Address)
		if ip == nil {
			return fmt.Errorf("APIServer.SecureServing.Address %q is not an IP address", apiServer.Address)
		}
		opts.BindAddress = ip
	}
	if apiServer.Port != "" {
		port, err := strconv.Atoi(apiServer.Port)
		if err != nil {
			return fmt.Errorf("APIServer.SecureServing.Port %q: %w", apiServer.Port, err)
		}
		opts.Port = port
	}
	if apiServer.SecurePort != 0 {
		opts.Port = apiServer.SecurePort
	}
	opts.Complete()
	if errs := opts.Validate(); len(errs) > 0 {
		return errors.Join(errs...)
	}
	srv, err := opts.NewServer()
	if err != nil {
		return err
	}
	timeout := apiServer.StartTimeout
	if timeout == 0 {
		timeout = te.ControlPlaneStartTimeout
	}
	ctx, stop := context.WithCancel(context.Background())
	done, err := srv.Start(ctx, timeout)
	if err != nil {
		stop()
		<-done
		return err
	}
	te.srv, te.stop, te.done = srv, stop, done
	te.ControlPlane.server = srv
	u, _ := url.Parse(srv.URL())
	apiServer.URL = u
	apiServer.Address, apiServer.Port = u.Hostname(), u.Port()
	if apiServer.CA, err = os.ReadFile(srv.State().CAFile); err != nil {
		return err
	}
	return nil
}

// Stop uninstalls the CRDs if CRDInstallOptions.CleanUpAfterUse, removes
// the webhook serving certificates, and stops the server: open watches
// end, and no goroutine of the server is left once it returns.
func (te *Environment) Stop() error {
	if te.CRDInstallOptions.CleanUpAfterUse {
		if err := UninstallCRDs(te.Config, te.CRDInstallOptions); err != nil {
			return err
		}
	}
	if err := te.WebhookInstallOptions.Cleanup(); err != nil {
		return err
	}
	if te.useExistingCluster() || te.srv == nil {
		return nil
	}
	return te.stopServer()
}

// stopServer stops the in-process server and waits for Run to return.
func (te *Environment) stopServer() error {
	timeout := te.ControlPlane.GetAPIServer().StopTimeout
	if timeout == 0 {
		timeout = te.ControlPlaneStopTimeout
	}
	if timeout == 0 {
		timeout = defaultControlPlaneStopTimeout
	}
	te.stop()
	select {
	case err := <-te.done:
		te.srv, te.ControlPlane.server = nil, nil
		return err
	case <-time.After(timeout):
		return fmt.Errorf("the API server did not stop within %v", timeout)
	}
}

// AddUser provisions a user for connecting to this Environment (see
// ControlPlane.AddUser).
func (te *Environment) AddUser(user User, baseConfig *rest.Config) (*AuthenticatedUser, error) {
	return te.ControlPlane.AddUser(user, baseConfig)
}

// Control is the client of the server's test-control API: faults, request
// history, snapshots, settings, pod behaviours (nil before Start).
func (te *Environment) Control() *testcontrol.Client { return te.control }

// Reset brings the cluster back to its state at the end of Start (with
// UseExistingCluster, the end of the last Start against that server): every
// object created since is gone, CRDs and webhooks of Start are back, no
// faults, an empty request history. Informers see it as a real API server
// restart (their watches end, old resourceVersions are 410 Gone).
func (te *Environment) Reset() error {
	if te.control == nil {
		return errors.New("envtest: Reset before Start")
	}
	return te.control.Reset(context.Background(), testcontrol.ResetRequest{})
}

// Settle returns once the cluster is quiet: the controllers, scheduler and
// kubelets have done what the writes so far asked of them.
func (te *Environment) Settle() error {
	if te.control == nil {
		return errors.New("envtest: Settle before Start")
	}
	return te.control.Settle(context.Background(), settleTimeout)
}

// authorizationModes are envtest's: RBAC, unless the API server's
// arguments say otherwise (the one argument honoured).
func authorizationModes(apiServer *APIServer) []string {
	if apiServer.args != nil {
		if arg := apiServer.args.Get("authorization-mode"); arg != nil {
			var modes []string
			for _, v := range arg.Get(nil) {
				modes = append(modes, strings.Split(v, ",")...)
			}
			if len(modes) > 0 {
				return modes
			}
		}
	}
	for _, a := range apiServer.Args {
		if v, ok := strings.CutPrefix(a, "--authorization-mode="); ok {
			return strings.Split(v, ",")
		}
	}
	return []string{"RBAC"}
}

func (te *Environment) controllers() []string {
	if len(te.Controllers) > 0 {
		return te.Controllers
	}
	if v := strings.TrimSpace(os.Getenv(EnvControllers)); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"none"}
}

func (te *Environment) useExistingCluster() bool {
	if te.UseExistingCluster == nil {
		return strings.ToLower(os.Getenv(envUseExistingCluster)) == "true"
	}
	return *te.UseExistingCluster
}

func (te *Environment) defaultTimeouts() error {
	for _, t := range []struct {
		field *time.Duration
		env   string
		def   time.Duration
	}{
		{&te.ControlPlaneStartTimeout, envStartTimeout, defaultControlPlaneStartTimeout},
		{&te.ControlPlaneStopTimeout, envStopTimeout, defaultControlPlaneStopTimeout},
	} {
		if *t.field != 0 {
			continue
		}
		*t.field = t.def
		if v := os.Getenv(t.env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", t.env, err)
			}
			*t.field = d
		}
	}
	return nil
}

// logOnce sets up klog on the first Start of the process: klog is
// process-wide, so later Environments share that choice.
var logOnce sync.Once

func (te *Environment) setupLogging(apiServer *APIServer) {
	if os.Getenv(envAttachOutput) == "true" {
		te.AttachControlPlaneOutput = true
	}
	logOnce.Do(func() {
		if te.AttachControlPlaneOutput {
			w := apiServer.Err
			if w == nil {
				w = os.Stderr
			}
			logging.Setup(w, 0)
			return
		}
		logging.Setup(os.Stderr, -1)
	})
}

// kubeConfigFromREST is cfg as a kubeconfig file.
func kubeConfigFromREST(cfg *rest.Config) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	const name = "envtest"
	host := cfg.Host
	if u, err := url.Parse(host); err == nil && u.Scheme == "" {
		host = "https://" + host
	}
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: cfg.CAData, CertificateAuthority: cfg.CAFile, InsecureSkipTLSVerify: cfg.Insecure}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData,
		ClientCertificate: cfg.CertFile, ClientKey: cfg.KeyFile,
		Token: cfg.BearerToken, TokenFile: cfg.BearerTokenFile,
		Username: cfg.Username, Password: cfg.Password,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	return clientcmd.Write(*kc)
}
