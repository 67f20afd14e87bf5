package envtest

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"time"

	"k8s.io/client-go/rest"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/mockernetes/mockernetes/pkg/server"
)

// The plain types of controller-runtime's envtest, shared so that values
// move between the two packages unchanged.
type (
	// User is a user to provision: a name and groups.
	User = crenvtest.User
	// ListenAddr is a host and port to serve on.
	ListenAddr = crenvtest.ListenAddr
	// SecureServing is where the API server serves HTTPS: its address
	// (honoured), its CA (filled in) and an Authn (ignored: users get
	// client certificates of the server's CA).
	SecureServing = crenvtest.SecureServing
	// Authn is envtest's authenticator interface, accepted and ignored.
	Authn = crenvtest.Authn
	// Arguments are command-line flags; there is no apiserver binary to
	// pass them to, so they are accepted and ignored.
	Arguments = crenvtest.Arguments
	// Arg is one flag of Arguments.
	Arg = crenvtest.Arg
	// Etcd is accepted and ignored: the store is in memory.
	Etcd = crenvtest.Etcd
)

// EmptyArguments constructs a new set of flags with nothing set.
var EmptyArguments = crenvtest.EmptyArguments

// ControlPlane is what envtest's ControlPlane gives access to: the API
// server's address and CA, users and kubectl. There is no etcd and no
// apiserver process: the server runs in the test's process.
type ControlPlane struct {
	// APIServer is the in-process API server (nil until Start, unless set
	// to choose its address).
	APIServer *APIServer
	// Etcd is accepted and ignored.
	Etcd *Etcd
	// KubectlPath is the kubectl that KubeCtl runs (default: kubectl on
	// PATH).
	KubectlPath string

	server *server.Server
}

// APIServer describes the in-process API server, with the fields of
// envtest's. SecureServing's address is honoured (default 127.0.0.1 and a
// free port) and its CA filled in; the fields that configure a binary are
// accepted and ignored.
type APIServer struct {
	// URL is the server's https address, filled in by Start.
	URL *url.URL
	// SecurePort, if set, is the port to serve on.
	SecurePort int
	// SecureServing is the address to serve on and, after Start, the CA.
	SecureServing
	// InsecureServing is accepted and ignored: there is only HTTPS, as in
	// Kubernetes since 1.20.
	InsecureServing *ListenAddr
	// Path and Args would name and configure a kube-apiserver binary:
	// accepted and ignored, except --authorization-mode in Args.
	Path string
	Args []string
	// CertDir, if set, is where the server writes its CA, certificates and
	// kubeconfig (default: a temporary directory removed by Stop).
	CertDir string
	// EtcdURL is accepted and ignored.
	EtcdURL *url.URL
	// StartTimeout and StopTimeout bound Start and Stop (default: the
	// Environment's).
	StartTimeout, StopTimeout time.Duration
	// Out and Err receive the upstream components' logs when
	// AttachControlPlaneOutput is set (default os.Stdout, os.Stderr).
	Out, Err io.Writer

	args *Arguments
}

// Configure returns the flags a kube-apiserver would be started with.
// There is no binary: only authorization-mode is honoured, the others are
// accepted and ignored.
func (s *APIServer) Configure() *Arguments {
	if s.args == nil {
		s.args = EmptyArguments()
	}
	return s.args
}

// GetAPIServer returns the API server, making an empty one if unset.
func (f *ControlPlane) GetAPIServer() *APIServer {
	if f.APIServer == nil {
		f.APIServer = &APIServer{}
	}
	return f.APIServer
}

// APIURL is the API server's https address (nil before Start).
func (f *ControlPlane) APIURL() *url.URL {
	if f.APIServer == nil {
		return nil
	}
	return f.APIServer.URL
}

// RESTClientConfig is an admin configuration for the running server.
func (f *ControlPlane) RESTClientConfig() (*rest.Config, error) {
	u, err := f.AddUser(User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}

// AddUser provisions a user: a client certificate of the server's CA for
// user.Name in user.Groups, on a copy of baseConfig. The server runs RBAC
// with kube-apiserver's bootstrap roles, as envtest's does: the user may do
// what its bindings (or system:masters) allow.
func (f *ControlPlane) AddUser(user User, baseConfig *rest.Config) (*AuthenticatedUser, error) {
	if f.server == nil {
		return nil, errors.New("envtest: the control plane is not running (call Start first)")
	}
	cfg, err := f.server.UserConfig(user.Name, user.Groups, baseConfig)
	if err != nil {
		return nil, err
	}
	return &AuthenticatedUser{cfg: cfg, plane: f}, nil
}

// KubeCtl is a kubectl for the admin user; nil when the server is not
// running (as envtest's before Start), never a kubectl that would reach
// whatever cluster the environment's default kubeconfig names.
func (f *ControlPlane) KubeCtl() *KubeCtl {
	u, err := f.AddUser(User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil
	}
	k, err := u.Kubectl()
	if err != nil {
		return nil
	}
	return k
}

func (f *ControlPlane) kubectlPath() string {
	if f.KubectlPath != "" {
		return f.KubectlPath
	}
	return "kubectl"
}

// AuthenticatedUser is a user provisioned by AddUser.
type AuthenticatedUser struct {
	cfg   *rest.Config
	plane *ControlPlane
}

// Config is the user's REST configuration.
func (u *AuthenticatedUser) Config() *rest.Config { return u.cfg }

// KubeConfig is a kubeconfig file for the user.
func (u AuthenticatedUser) KubeConfig() ([]byte, error) { return kubeConfigFromREST(u.cfg) }

// Kubectl is a kubectl that acts as the user (through a kubeconfig file
// in the server's state directory).
func (u *AuthenticatedUser) Kubectl() (*KubeCtl, error) {
	data, err := u.KubeConfig()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(u.plane.server.State().Dir, "kubeconfig-*")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return nil, err
	}
	return &KubeCtl{Path: u.plane.kubectlPath(), Opts: []string{"--kubeconfig=" + f.Name()}}, nil
}

// KubeCtl runs kubectl against the server.
type KubeCtl struct {
	// Path is the kubectl binary.
	Path string
	// Opts are put before the arguments of every Run.
	Opts []string
}

// Run runs kubectl with Opts and args; stdout and stderr are returned
// whole, and err is set when kubectl failed.
func (k *KubeCtl) Run(args ...string) (stdout, stderr io.Reader, err error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(k.Path, append(append([]string(nil), k.Opts...), args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return &out, &errOut, err
}
