package server

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	netutils "k8s.io/utils/net"

	"k8s.io/kubernetes/pkg/kubeapiserver/authorizer/modes"
	kubeoptions "k8s.io/kubernetes/pkg/kubeapiserver/options"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/controllers"
	"github.com/mockernetes/mockernetes/pkg/history"
	"github.com/mockernetes/mockernetes/pkg/storage"
)

// Options are the user-facing settings of one server. As in
// k8s.io/sample-apiserver they go Complete → Validate → Config: NewOptions
// gives the CLI's defaults, and a zero value after Complete is the same
// server without simulated nodes or the Gateway API CRDs.
type Options struct {
	// BindAddress is the address the API server listens on (127.0.0.1).
	BindAddress net.IP
	// Port is the HTTPS port; 0 picks a free one.
	Port int
	// AdvertiseAddress is the control-plane address the `kubernetes`
	// Service's endpoints point at. A real cluster advertises a node IP; the
	// endpoints API refuses loopback addresses, so this is a made-up one
	// (kind's control-plane address) unless set.
	AdvertiseAddress net.IP

	// StateDir holds the CA, certificates, keys and the kubeconfig. Empty
	// means a fresh temporary directory, removed when the server stops.
	StateDir string
	// Kubeconfig is where the admin kubeconfig is written (default
	// StateDir/kubeconfig).
	Kubeconfig string

	// ServiceClusterIPRange is kube-apiserver's --service-cluster-ip-range.
	ServiceClusterIPRange string
	// ServiceNodePortRange is kube-apiserver's --service-node-port-range.
	ServiceNodePortRange string
	// EventTTL is how long events are kept (kube-apiserver: 1h).
	EventTTL time.Duration
	// HistoryWindow is how long replaced and deleted versions stay
	// readable (watches and reads at an older resourceVersion, continue
	// tokens), as kube-apiserver's --etcd-compaction-interval bounds them.
	// The history is also bounded in events and bytes (pkg/storage).
	HistoryWindow time.Duration

	// AuthorizationModes are kube-apiserver's --authorization-mode values,
	// in order (AlwaysAllow, RBAC, Node, AlwaysDeny); default AlwaysAllow.
	// With any mode but AlwaysAllow, anonymous requests are authenticated
	// as system:anonymous, as kube-apiserver's --anonymous-auth default.
	AuthorizationModes []string

	// EnableAdmissionPlugins and DisableAdmissionPlugins adjust
	// kube-apiserver's default admission chain, as its flags of that name do.
	EnableAdmissionPlugins  []string
	DisableAdmissionPlugins []string

	// CRDs are files or directories of CustomResourceDefinition manifests
	// installed before the server reports ready.
	CRDs []string
	// GatewayAPI installs the embedded Gateway API standard-channel CRDs.
	GatewayAPI bool
	// Load are files or directories of manifests of any kind applied before
	// the server reports ready; they belong to the reset baseline.
	Load []string

	// Controllers selects kube-controller-manager controllers to run, in
	// its --controllers syntax ("*", "name", "-name"; "none" for none).
	Controllers []string
	// Nodes is the number of simulated nodes, with their kubelets and a
	// scheduler; 0 runs none. None run with Controllers "none" either.
	Nodes int
	// ClusterConfig is a YAML file describing the nodes (replacing Nodes)
	// and pod behaviour rules (clusterconfig.File).
	ClusterConfig string
	// NodeSpecs and PodBehaviours are a cluster config given as values
	// (the Go library's); NodeSpecs replaces Nodes and ClusterConfig's
	// nodes, PodBehaviours adds to ClusterConfig's rules. Not flags.
	NodeSpecs     []clusterconfig.NodeSpec
	PodBehaviours []clusterconfig.Rule
	// TimeScale multiplies every simulated duration of the kubelets
	// (sleeps of simple commands, delays, back-offs): 0.01 runs a
	// `sleep 2` in 20 ms. 1 (or 0) leaves them as given; a cluster
	// config's timeScale applies when this is 1.
	TimeScale float64
	// SchedulerConfig is a KubeSchedulerConfiguration file for the
	// in-process kube-scheduler (its profiles, plugins and their args), as
	// kube-scheduler's --config takes it.
	SchedulerConfig string
	// AllowLocalExec lets exec rules run local commands (kwok's way): a
	// `kubectl exec` a rule matches runs that command on this machine.
	AllowLocalExec bool
	// SystemPods makes a fresh cluster what kind creates: a control-plane
	// node with the control plane's mirror pods, CoreDNS and kube-dns,
	// kube-proxy and kindnet, the local-path provisioner. Only where
	// controllers and nodes run.
	SystemPods bool
	// CustomResourceDefinitions are installed with CRDs' files. Not a flag.
	CustomResourceDefinitions []*apiextensionsv1.CustomResourceDefinition

	// SettleOnWrite makes every write from outside the server answer only
	// once the cluster has settled (bounded by SettleOnWriteTimeout).
	SettleOnWrite        bool
	SettleOnWriteTimeout time.Duration
	// RequestHistorySize is how many API requests are kept for
	// /mockernetes/v1/requests; RequestHistoryBodies keeps their bodies.
	RequestHistorySize   int
	RequestHistoryBodies bool

	// validated is set by a Validate that found no problem.
	validated bool

	// Dial, if set, opens every outbound connection the server makes once
	// the egress gate let it through (pkg/egress); tests use it to see them.
	// Not a flag.
	Dial utilnet.DialFunc
}

// Defaults that match kube-apiserver (and kubeadm for the service range).
const (
	DefaultServiceClusterIPRange = "10.96.0.0/12"
	DefaultServiceNodePortRange  = "30000-32767"
	DefaultAdvertiseAddress      = "172.18.0.2"
	DefaultEventTTL              = time.Hour
	DefaultHistoryWindow         = storage.DefaultHistoryWindow
)

// serviceAccountAdmission is the admission plugin that needs the
// `default` ServiceAccount of a namespace, which the serviceaccount
// controller creates: without that controller it would reject every pod, so
// it is off (envtest turns it off for the same reason).
const serviceAccountAdmission = "ServiceAccount"

// NewOptions returns the defaults: loopback only, a free port, a temporary
// state directory.
func NewOptions() *Options {
	return &Options{
		BindAddress:           netutils.ParseIPSloppy("127.0.0.1"),
		AdvertiseAddress:      netutils.ParseIPSloppy(DefaultAdvertiseAddress),
		ServiceClusterIPRange: DefaultServiceClusterIPRange,
		ServiceNodePortRange:  DefaultServiceNodePortRange,
		EventTTL:              DefaultEventTTL,
		HistoryWindow:         DefaultHistoryWindow,
		AuthorizationModes:    []string{modes.ModeAlwaysAllow},
		GatewayAPI:            true,
		Controllers:           []string{"*"},
		Nodes:                 1,
		TimeScale:             1,
		SystemPods:            true,
		SettleOnWriteTimeout:  DefaultSettleOnWriteTimeout,
		RequestHistorySize:    history.DefaultSize,
	}
}

// Complete fills what is unset in o with kube-apiserver's defaults, so a
// zero Options can be validated and used.
func (o *Options) Complete() {
	if o.BindAddress == nil {
		o.BindAddress = netutils.ParseIPSloppy("127.0.0.1")
	}
	if o.AdvertiseAddress == nil {
		o.AdvertiseAddress = netutils.ParseIPSloppy(DefaultAdvertiseAddress)
	}
	if o.ServiceClusterIPRange == "" {
		o.ServiceClusterIPRange = DefaultServiceClusterIPRange
	}
	if o.ServiceNodePortRange == "" {
		o.ServiceNodePortRange = DefaultServiceNodePortRange
	}
	if o.EventTTL == 0 {
		o.EventTTL = DefaultEventTTL
	}
	if o.HistoryWindow == 0 {
		o.HistoryWindow = DefaultHistoryWindow
	}
	if len(o.AuthorizationModes) == 0 {
		o.AuthorizationModes = []string{modes.ModeAlwaysAllow}
	}
	if len(o.Controllers) == 0 {
		o.Controllers = []string{"*"}
	}
	if o.SettleOnWriteTimeout == 0 {
		o.SettleOnWriteTimeout = DefaultSettleOnWriteTimeout
	}
	if o.RequestHistorySize == 0 {
		o.RequestHistorySize = history.DefaultSize
	}
}

// AddFlags registers the options as `mockernetes serve` flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.IPVar(&o.BindAddress, "bind-address", o.BindAddress, "IP address to serve HTTPS on.")
	fs.IntVar(&o.Port, "port", o.Port, "HTTPS port; 0 picks a free port.")
	fs.IPVar(&o.AdvertiseAddress, "advertise-address", o.AdvertiseAddress, "Address published in the endpoints of the `kubernetes` Service (must not be loopback).")
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir, "Directory for the CA, certificates, keys and kubeconfig (default: a temporary directory removed on exit).")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Where to write the admin kubeconfig (default: <state-dir>/kubeconfig).")
	fs.StringVar(&o.ServiceClusterIPRange, "service-cluster-ip-range", o.ServiceClusterIPRange, "CIDR from which Service ClusterIPs are allocated.")
	fs.StringVar(&o.ServiceNodePortRange, "service-node-port-range", o.ServiceNodePortRange, "Port range reserved for NodePort Services, e.g. 30000-32767.")
	fs.DurationVar(&o.EventTTL, "event-ttl", o.EventTTL, "How long events are retained.")
	fs.DurationVar(&o.HistoryWindow, "history-window", o.HistoryWindow, "How long replaced and deleted versions stay readable (watches and reads from an older resourceVersion, continue tokens), as kube-apiserver's --etcd-compaction-interval; older ones answer 410 Gone. Memory grows with it under churn.")
	fs.StringSliceVar(&o.AuthorizationModes, "authorization-mode", o.AuthorizationModes, "Ordered list of authorization modes, as kube-apiserver's: "+strings.Join(modes.AuthorizationModeChoices, ", ")+" (Webhook is not offered). With RBAC the bootstrap roles apply and anonymous requests are system:anonymous.")
	fs.StringSliceVar(&o.EnableAdmissionPlugins, "enable-admission-plugins", o.EnableAdmissionPlugins, "Admission plugins to enable in addition to kube-apiserver's default ones.")
	fs.StringSliceVar(&o.DisableAdmissionPlugins, "disable-admission-plugins", o.DisableAdmissionPlugins, "Admission plugins to disable, even if on by default.")
	fs.StringSliceVar(&o.Controllers, "controllers", o.Controllers, "Controllers to run, as kube-controller-manager's --controllers: '*' runs the default set (deployment, replicaset, garbagecollector, namespace, disruption, serviceaccount, ...), 'foo' adds one, '-foo' removes one; 'scheduler' names kube-scheduler ('*,-scheduler' leaves pods unscheduled); 'none' runs none, as envtest.")
	fs.IntVar(&o.Nodes, "nodes", o.Nodes, "Number of simulated nodes (node-1, node-2, ...) whose kubelets run the pods scheduled to them; 0 for none (and none with --controllers=none).")
	fs.StringVar(&o.ClusterConfig, "cluster-config", o.ClusterConfig, "YAML file with the simulated nodes (name, labels, taints, capacity, images, devices) and pod behaviour rules (see README).")
	fs.Float64Var(&o.TimeScale, "time-scale", o.TimeScale, "Multiply every simulated duration (containers' sleeps, start and ready delays, back-offs) by this: 0.01 runs `sleep 2` in 20 ms.")
	fs.BoolVar(&o.SystemPods, "system-pods", o.SystemPods, "Start as kind does: a control-plane node (tainted NoSchedule) running the control plane's mirror pods, CoreDNS behind kube-dns (the tenth service address), kube-proxy and kindnet on every node, the local-path provisioner. Not with --controllers=none or --nodes 0.")
	fs.BoolVar(&o.AllowLocalExec, "allow-local-exec", o.AllowLocalExec, "Let pod behaviour exec rules run a local command (their `local` field) for the commands they match: a `kubectl exec` then runs it on this machine.")
	fs.StringVar(&o.SchedulerConfig, "scheduler-config", o.SchedulerConfig, "KubeSchedulerConfiguration file for the in-process kube-scheduler (profiles, plugins), as kube-scheduler's --config.")
	fs.StringArrayVar(&o.CRDs, "crds", o.CRDs, "File or directory of CustomResourceDefinition manifests (YAML or JSON, multi-document) to install before the server is ready; repeatable.")
	fs.BoolVar(&o.SettleOnWrite, "settle-on-write", o.SettleOnWrite, "Answer each write (create, update, patch, delete) only once the cluster has settled: controllers, scheduler and kubelet done with it.")
	fs.DurationVar(&o.SettleOnWriteTimeout, "settle-on-write-timeout", o.SettleOnWriteTimeout, "How long a write waits for the cluster to settle before it is answered anyway, with a warning.")
	fs.IntVar(&o.RequestHistorySize, "request-history-size", o.RequestHistorySize, "How many API requests /mockernetes/v1/requests keeps.")
	fs.BoolVar(&o.RequestHistoryBodies, "request-history-bodies", o.RequestHistoryBodies, "Keep request bodies in the request history (at most 64 KiB each).")
	fs.StringArrayVar(&o.Load, "load", o.Load, "File or directory of manifests of any kind (YAML or JSON, multi-document) applied before the server is ready: CRDs first, then namespaces, then the rest; kept by reset. Repeatable.")
	fs.BoolVar(&o.GatewayAPI, "gateway-api", o.GatewayAPI, "Install the Gateway API standard-channel CRDs ("+GatewayAPIVersion()+").")
}

// Validate returns every problem with the options; Config needs a
// Validate that found none.
func (o *Options) Validate() []error {
	errs := o.validate()
	o.validated = len(errs) == 0
	return errs
}

func (o *Options) validate() []error {
	var errs []error
	if o.BindAddress == nil {
		errs = append(errs, fmt.Errorf("--bind-address is required"))
	}
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d is not between 0 and 65535", o.Port))
	}
	if o.AdvertiseAddress == nil || o.AdvertiseAddress.IsLoopback() || o.AdvertiseAddress.IsUnspecified() {
		errs = append(errs, fmt.Errorf("--advertise-address %v must be a non-loopback, specified IP address", o.AdvertiseAddress))
	}
	if _, err := o.clusterIPRange(); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.nodePortRange(); err != nil {
		errs = append(errs, err)
	}
	if _, err := controllers.Select(o.Controllers); err != nil {
		errs = append(errs, err)
	}
	if o.TimeScale < 0 || o.TimeScale > clusterconfig.MaxTimeScale {
		errs = append(errs, fmt.Errorf("--time-scale %v is not between 0 and %v", o.TimeScale, clusterconfig.MaxTimeScale))
	}
	if o.Nodes < 0 || o.Nodes > 250 {
		errs = append(errs, fmt.Errorf("--nodes %d is not between 0 and 250", o.Nodes))
	}
	if o.SettleOnWriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--settle-on-write-timeout must be positive, got %v", o.SettleOnWriteTimeout))
	}
	if o.RequestHistorySize < 1 || o.RequestHistorySize > 1000000 {
		errs = append(errs, fmt.Errorf("--request-history-size %d is not between 1 and 1000000", o.RequestHistorySize))
	}
	if err := (clusterconfig.File{Nodes: o.NodeSpecs, PodBehaviours: o.PodBehaviours}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("cluster config: %w", err))
	}
	if o.EventTTL <= 0 {
		errs = append(errs, fmt.Errorf("--event-ttl must be positive, got %v", o.EventTTL))
	}
	if o.HistoryWindow < time.Second {
		errs = append(errs, fmt.Errorf("--history-window must be at least 1s, got %v", o.HistoryWindow))
	}
	if slices.Contains(o.AuthorizationModes, modes.ModeWebhook) {
		errs = append(errs, fmt.Errorf("--authorization-mode %s is not offered", modes.ModeWebhook))
	} else {
		authz := kubeoptions.NewBuiltInAuthorizationOptions()
		authz.Modes = o.AuthorizationModes
		errs = append(errs, authz.Validate()...)
	}
	admission := kubeoptions.NewAdmissionOptions()
	registered := map[string]bool{}
	for _, name := range admission.GenericAdmission.Plugins.Registered() {
		registered[name] = true
	}
	for _, name := range append(append([]string(nil), o.EnableAdmissionPlugins...), o.DisableAdmissionPlugins...) {
		if !registered[name] {
			errs = append(errs, fmt.Errorf("admission plugin %q is unknown (known: %s)", name, strings.Join(admission.GenericAdmission.Plugins.Registered(), ", ")))
		}
	}
	return errs
}

func (o *Options) clusterIPRange() (net.IPNet, error) {
	_, cidr, err := netutils.ParseCIDRSloppy(o.ServiceClusterIPRange)
	if err != nil {
		return net.IPNet{}, fmt.Errorf("--service-cluster-ip-range %q: %w", o.ServiceClusterIPRange, err)
	}
	if ones, bits := cidr.Mask.Size(); bits-ones < 2 {
		return net.IPNet{}, fmt.Errorf("--service-cluster-ip-range %q is too small", o.ServiceClusterIPRange)
	}
	return *cidr, nil
}

func (o *Options) nodePortRange() (utilnet.PortRange, error) {
	var pr utilnet.PortRange
	if err := pr.Set(o.ServiceNodePortRange); err != nil {
		return pr, fmt.Errorf("--service-node-port-range %q: %w", o.ServiceNodePortRange, err)
	}
	return pr, nil
}
