package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apimachinery/pkg/api/meta"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/filters"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/util/keyutil"
	aggregatorapiserver "k8s.io/kube-aggregator/pkg/apiserver"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	"k8s.io/kubernetes/pkg/capabilities"
	controlplaneapiserver "k8s.io/kubernetes/pkg/controlplane/apiserver"
	controlplaneadmission "k8s.io/kubernetes/pkg/controlplane/apiserver/admission"
	"k8s.io/kubernetes/pkg/controlplane/controller/clusterauthenticationtrust"
	generatedopenapi "k8s.io/kubernetes/pkg/generated/openapi"
	"k8s.io/kubernetes/pkg/kubeapiserver"
	kubeadmission "k8s.io/kubernetes/pkg/kubeapiserver/admission"
	kubeoptions "k8s.io/kubernetes/pkg/kubeapiserver/options"
	"k8s.io/kubernetes/pkg/registry/core/service/portallocator"
	"k8s.io/kubernetes/pkg/serviceaccount"

	"github.com/mockernetes/mockernetes/manifests"
	"github.com/mockernetes/mockernetes/pkg/controllers"
	"github.com/mockernetes/mockernetes/pkg/crds"
	"github.com/mockernetes/mockernetes/pkg/history"
	"github.com/mockernetes/mockernetes/pkg/kubelet"
	"github.com/mockernetes/mockernetes/pkg/load"
	"github.com/mockernetes/mockernetes/pkg/pki"
	"github.com/mockernetes/mockernetes/pkg/registry"
	"github.com/mockernetes/mockernetes/pkg/settle"
	"github.com/mockernetes/mockernetes/pkg/storage"
	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// ServiceAccountIssuer is the issuer of service-account tokens, kubeadm's.
const ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// Config is everything a Server is built from: the upstream generic
// apiserver config plus what the registries and bootstrap need.
type Config struct {
	Generic  *genericapiserver.Config
	Informer informers.SharedInformerFactory
	Registry registry.Config
	Backend  *storage.Backend

	// Files of this run (certificates, keys, kubeconfig).
	State State
	// URL is the https address clients use.
	URL string

	ServiceIP        net.IP
	AdvertiseAddress net.IP
	AuthTrust        clusterauthenticationtrust.ClusterAuthenticationInfo

	// APIExtensions is the CRD server's config (behind the built-in one).
	APIExtensions *apiextensionsapiserver.Config
	// CRDs are installed before the server reports ready.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// Load is applied once the server is otherwise ready, before the reset
	// baseline is taken.
	Load *load.Manifests
	// Controllers run in the server's process once the CRDs are in.
	Controllers controllers.Config
	// Kubelet simulates the nodes (none if it has no nodes).
	Kubelet kubelet.Config

	// control is the test control around the API handler.
	control *control

	closeOnce sync.Once
	// cleanup undoes what NewConfig created (temporary state directory,
	// backend, listener) if the server is never run.
	cleanup []func()
}

// CompletedConfig is a Config with the upstream defaults filled in.
type CompletedConfig struct {
	*Config
	generic       genericapiserver.CompletedConfig
	apiExtensions apiextensionsapiserver.CompletedConfig
}

// Config turns validated options into a Config: state directory and
// credentials, listener, authentication, authorization, admission, storage.
// On error everything created so far is released.
func (o *Options) Config() (_ *Config, err error) {
	if errs := o.Validate(); len(errs) > 0 {
		return nil, utilerrors.NewAggregate(errs)
	}
	c := &Config{AdvertiseAddress: o.AdvertiseAddress}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()

	// Files first: one that does not parse stops the server before
	// anything is created or listens.
	if c.CRDs, err = readCRDs(o); err != nil {
		return nil, err
	}
	loadSources, err := crds.ReadPaths(o.Load)
	if err != nil {
		return nil, fmt.Errorf("--load: %w", err)
	}
	if c.Load, err = load.Parse(loadSources); err != nil {
		return nil, fmt.Errorf("--load %w", err)
	}
	// Their CRDs are installed with the others, before the controllers
	// start (the garbage collector's first discovery sees them).
	c.CRDs = append(c.CRDs, c.Load.CRDs()...)
	var cluster kubelet.File
	if o.ClusterConfig != "" {
		if cluster, err = kubelet.ReadFile(o.ClusterConfig); err != nil {
			return nil, fmt.Errorf("--cluster-config %w", err)
		}
	}

	// Files first: the upstream authenticators read their CA, token and key
	// files from disk.
	state, removeState, err := newState(o.StateDir, o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	c.cleanup = append(c.cleanup, removeState)
	c.State = state

	clusterIPRange, _ := o.clusterIPRange()
	nodePorts, _ := o.nodePortRange()
	serviceIP, err := firstIP(clusterIPRange)
	if err != nil {
		return nil, err
	}
	c.ServiceIP = serviceIP

	ca, err := state.loadOrNewCA()
	if err != nil {
		return nil, err
	}
	servingIPs := []net.IP{o.BindAddress, serviceIP, o.AdvertiseAddress, net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if o.BindAddress.IsUnspecified() {
		servingIPs = servingIPs[1:]
	}
	serving, err := ca.ServingCert([]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, servingIPs)
	if err != nil {
		return nil, err
	}
	admin, err := ca.ClientCert("kubernetes-admin", "system:masters")
	if err != nil {
		return nil, err
	}
	saKey, err := pki.NewSigningKey()
	if err != nil {
		return nil, err
	}
	if err := state.writeCredentials(ca.KeyPair, serving, admin, saKey); err != nil {
		return nil, err
	}

	// The generic server, set up as kube-apiserver's BuildGenericConfig does.
	version := newPinnedVersion(KubernetesVersion())
	g := genericapiserver.NewConfig(legacyscheme.Codecs)
	g.EffectiveVersion = version
	g.MergedResourceConfig = registry.DefaultResourceConfig()
	g.PublicAddress = o.AdvertiseAddress

	// The listener is made here: upstream's options skip serving on port 0.
	listener, _, err := genericoptions.CreateListener("tcp", net.JoinHostPort(o.BindAddress.String(), strconv.Itoa(o.Port)), net.ListenConfig{})
	if err != nil {
		return nil, err
	}
	c.cleanup = append(c.cleanup, func() { _ = listener.Close() })
	servingOpts := genericoptions.NewSecureServingOptions()
	servingOpts.BindAddress = o.BindAddress
	servingOpts.Listener = listener
	servingOpts.ServerCert.GeneratedCert, err = dynamiccertificates.NewStaticCertKeyContent("serving-cert", serving.CertPEM, serving.KeyPEM)
	if err != nil {
		return nil, err
	}
	if err := servingOpts.ApplyTo(&g.SecureServing); err != nil {
		return nil, err
	}
	// The loopback client, as SecureServingOptionsWithLoopback sets it up
	// (an SNI certificate for its fake server name, a random token), with
	// an ECDSA certificate from the cluster CA: upstream's RSA self-signed
	// one costs 80 ms of start-up.
	loopback, err := ca.ServingCert([]string{genericapiserver.LoopbackClientServerNameOverride}, nil)
	if err != nil {
		return nil, err
	}
	loopbackSNI, err := dynamiccertificates.NewStaticSNICertKeyContent("loopback", loopback.CertPEM, loopback.KeyPEM, genericapiserver.LoopbackClientServerNameOverride)
	if err != nil {
		return nil, err
	}
	g.SecureServing.SNICerts = append([]dynamiccertificates.SNICertKeyContentProvider{loopbackSNI}, g.SecureServing.SNICerts...)
	if g.LoopbackClientConfig, err = g.SecureServing.NewLoopbackClientConfig(uuid.NewString(), ca.CertPEM); err != nil {
		return nil, err
	}
	port := listener.Addr().(*net.TCPAddr).Port
	host := o.BindAddress.String()
	if o.BindAddress.IsUnspecified() {
		host = "127.0.0.1"
	}
	c.URL = "https://" + net.JoinHostPort(host, strconv.Itoa(port))
	g.ExternalAddress = net.JoinHostPort(host, strconv.Itoa(port))
	if err := state.writeKubeconfig(c.URL, ca.CertPEM, admin); err != nil {
		return nil, err
	}

	// Loopback clients speak protobuf, uncompressed, as kube-apiserver's do.
	g.LoopbackClientConfig.ContentConfig.ContentType = "application/vnd.kubernetes.protobuf"
	g.LoopbackClientConfig.DisableCompression = true
	client, err := kubernetes.NewForConfig(g.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	trim := func(obj interface{}) (interface{}, error) {
		if accessor, err := meta.Accessor(obj); err == nil && accessor.GetManagedFields() != nil {
			accessor.SetManagedFields(nil)
		}
		return obj, nil
	}
	c.Informer = informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute, informers.WithTransform(trim))

	// Every outbound connection goes through one gate (pkg/egress), handed
	// to each dialing path as kube-apiserver hands its egress selector.
	gate, err := newGate(o, clusterIPRange, host, port, c.Informer)
	if err != nil {
		return nil, err
	}
	g.EgressSelector = gate.Selector()

	getOpenAPIDefinitions := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	namer := openapinamer.NewDefinitionNamer(legacyscheme.Scheme, apiextensionsapiserver.Scheme)
	g.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(getOpenAPIDefinitions, namer)
	g.OpenAPIConfig.Info.Title = "Kubernetes"
	g.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(getOpenAPIDefinitions, namer)
	g.OpenAPIV3Config.Info.Title = "Kubernetes"
	longRunning := filters.BasicLongRunningRequestCheck(
		sets.NewString("watch", "proxy"),
		sets.NewString("attach", "exec", "proxy", "log", "portforward"),
	)
	// Settle and reset bound themselves (their ?timeout= is theirs, not
	// the request deadline upstream reads from that parameter).
	g.LongRunningFunc = func(r *http.Request, info *apirequest.RequestInfo) bool {
		return longRunning(r, info) || r.URL.Path == testcontrol.SettlePath || r.URL.Path == testcontrol.ResetPath || r.URL.Path == testcontrol.SnapshotPath
	}
	g.AggregatedDiscoveryGroupManager = aggregated.NewResourceManager("apis")
	g.DisabledPostStartHooks.Insert(replacedPostStartHooks...)
	g.SkipOpenAPIInstallation = true // installOpenAPI builds the v2 spec off the start-up path

	// Storage: kube-apiserver's storage factory (codecs, storage versions,
	// key prefixes), with the in-memory backend in place of etcd.
	storageFactoryConfig := kubeapiserver.NewStorageFactoryConfigEffectiveVersion(version)
	storageFactoryConfig.APIResourceConfig = g.MergedResourceConfig
	storageFactoryConfig.DefaultResourceEncoding.SetEffectiveVersion(version)
	storageFactory, err := storageFactoryConfig.Complete(genericoptions.NewEtcdOptions(storagebackend.NewDefaultConfig("/registry", nil))).New()
	if err != nil {
		return nil, err
	}
	// Lists are handed to the registries read-only, as kube-apiserver's
	// watch cache hands them out: the registries and handlers only encode
	// listed objects, and a large LIST costs what it costs there.
	c.Backend = storage.NewBackend(storage.Options{BookmarkInterval: time.Minute, ReadOnlyLists: true})
	backend := c.Backend
	c.cleanup = append(c.cleanup, backend.Close)
	c.control = &control{
		history:     history.New(o.RequestHistorySize, o.RequestHistoryBodies),
		tracker:     settle.New(c.Backend, 0),
		longRunning: g.LongRunningFunc,
	}
	c.control.settleOnWrite.Store(o.SettleOnWrite)
	c.control.writeTimeout.Store(int64(o.SettleOnWriteTimeout))
	g.RESTOptionsGetter = &storage.RESTOptionsGetter{
		StorageFactory:          storageFactory,
		Backend:                 c.Backend,
		EnableGarbageCollection: true,
		DeleteCollectionWorkers: 1,
	}

	// Authentication: admin client certificates from the cluster CA, the
	// admin bearer token, service-account tokens. Anonymous requests are
	// refused, as kube-apiserver refuses them under AlwaysAllow.
	authn := kubeoptions.NewBuiltInAuthenticationOptions().WithClientCert().WithTokenFile().WithServiceAccounts()
	authn.ClientCert.ClientCA = state.CAFile
	authn.TokenFile.TokenFile = state.TokenFile
	authn.ServiceAccounts.KeyFiles = []string{state.ServiceAccountKeyFile}
	authn.ServiceAccounts.Issuers = []string{ServiceAccountIssuer}
	authn.ServiceAccounts.Lookup = true
	drained := wait.ContextForChannel(g.DrainedNotify())
	if err := authn.ApplyTo(drained, &g.Authentication, g.SecureServing, g.EgressSelector, g.OpenAPIConfig, g.OpenAPIV3Config, client, c.Informer, g.APIServerID); err != nil {
		return nil, fmt.Errorf("authentication: %w", err)
	}
	clientCA, err := authn.ClientCert.GetClientCAContentProvider()
	if err != nil {
		return nil, err
	}
	c.AuthTrust = clusterauthenticationtrust.ClusterAuthenticationInfo{ClientCA: clientCA}
	allowAll := authorizerfactory.NewAlwaysAllowAuthorizer()
	g.Authorization.Authorizer = allowAll
	g.RuleResolver = allowAll

	signingKey, err := keyutil.ParsePrivateKeyPEM(saKey)
	if err != nil {
		return nil, err
	}
	tokens, err := serviceaccount.JWTTokenGenerator(ServiceAccountIssuer, signingKey)
	if err != nil {
		return nil, err
	}

	// Admission: kube-apiserver's plugins, order and default-on set.
	endpointSlices, err := proxy.NewEndpointSliceIndexerGetter(c.Informer.Discovery().V1().EndpointSlices())
	if err != nil {
		return nil, err
	}
	// The transport of the proxy subresources and service-resolved
	// webhooks dials through the gate, as kube-apiserver's dials through its
	// egress selector. Its targets are cluster addresses, never reached
	// through an HTTP proxy of the environment (that would connect past the
	// gate).
	proxyTransport := controlplaneapiserver.CreateProxyTransport()
	proxyTransport.DialContext = gate.ClusterDial()
	proxyTransport.Proxy = nil
	resolver := aggregatorapiserver.NewClusterIPServiceResolver(c.Informer.Core().V1().Services().Lister())
	if loopback, err := url.Parse(g.LoopbackClientConfig.Host); err == nil {
		resolver = aggregatorapiserver.NewLoopbackServiceResolver(resolver, loopback)
	}
	resolver = gate.Resolver(resolver)
	kubeInitializers, err := (&kubeadmission.Config{}).New()
	if err != nil {
		return nil, err
	}
	genericInitializers, err := (&controlplaneadmission.Config{
		ExternalInformers:    c.Informer,
		LoopbackClientConfig: g.LoopbackClientConfig,
		APIResourceConfig:    storageFactory.APIResourceConfigSource,
	}).New(proxyTransport, g.EgressSelector, resolver, g.TracerProvider)
	if err != nil {
		return nil, fmt.Errorf("admission initializers: %w", err)
	}
	dynamicClient, err := dynamic.NewForConfig(g.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	admission := kubeoptions.NewAdmissionOptions()
	admission.GenericAdmission.EnablePlugins = o.EnableAdmissionPlugins
	admission.GenericAdmission.DisablePlugins = o.DisableAdmissionPlugins
	selection, _ := controllers.Select(o.Controllers) // validated
	if !selection.Enabled(names.ServiceAccountController) && !slices.Contains(o.EnableAdmissionPlugins, serviceAccountAdmission) {
		admission.GenericAdmission.DisablePlugins = append(slices.Clone(o.DisableAdmissionPlugins), serviceAccountAdmission)
	}
	if errs := admission.Validate(); len(errs) > 0 {
		return nil, utilerrors.NewAggregate(errs)
	}
	if err := admission.ApplyTo(g, c.Informer, client, dynamicClient, utilfeature.DefaultFeatureGate, version,
		append(genericInitializers, kubeInitializers...)...); err != nil {
		return nil, fmt.Errorf("admission: %w", err)
	}

	// Privileged containers are allowed, as kubeadm and kind configure
	// kube-apiserver (its own default is off). Process-wide and set once
	// upstream; every server here wants the same value.
	capabilities.Setup(true, 0)

	c.Generic = g
	c.Controllers = controllers.Config{Kubeconfig: g.LoopbackClientConfig, Selection: selection, RootCAFile: state.CAFile, Tracker: c.control.tracker}
	nodes := kubelet.DefaultNodes(o.Nodes)
	if len(cluster.Nodes) > 0 {
		nodes = cluster.Nodes
	}
	if !selection.None() && len(nodes) > 0 {
		c.Kubelet = kubelet.Config{Nodes: nodes, Rules: cluster.PodBehaviours, KubeletVersion: KubernetesVersion(), Logs: kubelet.NewLogs(), Tracker: c.control.tracker}
	}
	c.APIExtensions = newAPIExtensionsConfig(g, c.Informer, c.Backend, resolver,
		webhook.NewDefaultAuthenticationInfoResolverWrapper(proxyTransport, g.EgressSelector, g.LoopbackClientConfig, g.TracerProvider))
	// The test control sits inside upstream's filters (after
	// authentication, request info, priority and fairness), around the
	// whole handler: built-in APIs, CRDs and the admin API. The CRD
	// server's copy of the config keeps the default chain (delegated
	// requests skip it).
	g.BuildHandlerChainFunc = func(h http.Handler, gc *genericapiserver.Config) http.Handler {
		return genericapiserver.DefaultBuildHandlerChain(c.control.filter(h), gc)
	}
	nodePortAllocator, err := portallocator.NewInMemory(nodePorts)
	if err != nil {
		return nil, fmt.Errorf("node port allocator: %w", err)
	}
	kubeletClient := registry.DefaultKubeletClientConfig()
	kubeletClient.Lookup = g.EgressSelector.Lookup
	c.Registry = registry.Config{
		StorageFactory:        storageFactory,
		LoopbackClientConfig:  g.LoopbackClientConfig,
		Informers:             c.Informer,
		Authenticator:         g.Authentication.Authenticator,
		APIAudiences:          g.Authentication.APIAudiences,
		Authorizer:            allowAll,
		RuleResolver:          allowAll,
		ServiceAccountIssuer:  tokens,
		EventTTL:              o.EventTTL,
		ServiceClusterIPRange: clusterIPRange,
		ServiceNodePortRange:  nodePorts,
		NodePorts:             nodePortAllocator,
		KubeletClientConfig:   kubeletClient,
		PodLogs:               c.Kubelet.Logs,
		ProxyTransport:        proxyTransport,
		EndpointSliceGetter:   endpointSlices,
	}
	return c, nil
}

// Close releases what Config created (listener, store, temporary state
// directory); Server.Run does it on return. Safe to call more than once.
func (c *Config) Close() {
	c.closeOnce.Do(func() {
		for i := len(c.cleanup) - 1; i >= 0; i-- {
			c.cleanup[i]()
		}
	})
}

// Complete fills in the upstream defaults.
func (c *Config) Complete() CompletedConfig {
	return CompletedConfig{Config: c, generic: c.Generic.Complete(c.Informer), apiExtensions: c.APIExtensions.Complete()}
}

// readCRDs parses the --crds manifests and, unless turned off, the embedded
// Gateway API CRDs.
func readCRDs(o *Options) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	sources, err := crds.ReadPaths(o.CRDs)
	if err != nil {
		return nil, fmt.Errorf("--crds: %w", err)
	}
	if o.GatewayAPI {
		gateway, err := crds.ReadFS(manifests.GatewayAPI, "gateway-api")
		if err != nil {
			return nil, err
		}
		sources = append(gateway, sources...)
	}
	return crds.Parse(sources)
}

// GatewayAPIVersion is the release of the embedded Gateway API CRDs.
func GatewayAPIVersion() string {
	v, err := manifests.GatewayAPI.ReadFile("gateway-api/VERSION")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(v))
}

// LoopbackClientConfig is the in-process client configuration (privileged).
func (c *Config) LoopbackClientConfig() *restclient.Config {
	return restclient.CopyConfig(c.Generic.LoopbackClientConfig)
}

// firstIP is the service range's first usable address, the `kubernetes`
// Service's ClusterIP (10.96.0.1 for the default range).
func firstIP(cidr net.IPNet) (net.IP, error) {
	ip := make(net.IP, len(cidr.IP))
	copy(ip, cidr.IP.Mask(cidr.Mask))
	for i := len(ip) - 1; i >= 0; i-- {
		ip[i]++
		if ip[i] != 0 {
			break
		}
	}
	if !cidr.Contains(ip) {
		return nil, fmt.Errorf("service range %s has no usable address", cidr.String())
	}
	return ip, nil
}

// State is the set of files one server writes.
type State struct {
	Dir                   string
	CAFile                string
	ServingCertFile       string
	ServingKeyFile        string
	AdminCertFile         string
	AdminKeyFile          string
	TokenFile             string
	ServiceAccountKeyFile string
	Kubeconfig            string
	// AdminToken is a bearer token for the admin user (system:masters).
	AdminToken string
}

func newState(dir, kubeconfig string) (State, func(), error) {
	remove := func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "mockernetes-")
		if err != nil {
			return State{}, nil, fmt.Errorf("state directory: %w", err)
		}
		dir = tmp
		remove = func() { _ = os.RemoveAll(tmp) }
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return State{}, nil, fmt.Errorf("state directory: %w", err)
	}
	if kubeconfig == "" {
		kubeconfig = filepath.Join(dir, "kubeconfig")
	}
	token, err := randomToken()
	if err != nil {
		remove()
		return State{}, nil, err
	}
	return State{
		Dir:                   dir,
		CAFile:                filepath.Join(dir, "ca.crt"),
		ServingCertFile:       filepath.Join(dir, "apiserver.crt"),
		ServingKeyFile:        filepath.Join(dir, "apiserver.key"),
		AdminCertFile:         filepath.Join(dir, "admin.crt"),
		AdminKeyFile:          filepath.Join(dir, "admin.key"),
		TokenFile:             filepath.Join(dir, "tokens.csv"),
		ServiceAccountKeyFile: filepath.Join(dir, "sa.key"),
		Kubeconfig:            kubeconfig,
		AdminToken:            token,
	}, remove, nil
}

// loadOrNewCA reuses the CA of an earlier run in the same state directory,
// so that kubeconfigs written then stay valid; otherwise it makes one.
func (s State) loadOrNewCA() (*pki.CA, error) {
	certPEM, certErr := os.ReadFile(s.CAFile)
	keyPEM, keyErr := os.ReadFile(s.caKeyFile())
	if os.IsNotExist(certErr) && os.IsNotExist(keyErr) {
		return pki.NewCA()
	}
	if certErr != nil || keyErr != nil {
		return nil, fmt.Errorf("state directory %s: reading the CA: %v", s.Dir, errors.Join(certErr, keyErr))
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w (remove ca.crt and ca.key for a new CA)", s.Dir, err)
	}
	return ca, nil
}

func (s State) caKeyFile() string { return filepath.Join(s.Dir, "ca.key") }

func (s State) writeCredentials(ca, serving, admin pki.KeyPair, saKey []byte) error {
	files := []struct {
		path string
		data []byte
	}{
		{s.CAFile, ca.CertPEM},
		{s.caKeyFile(), ca.KeyPEM},
		{s.ServingCertFile, serving.CertPEM},
		{s.ServingKeyFile, serving.KeyPEM},
		{s.AdminCertFile, admin.CertPEM},
		{s.AdminKeyFile, admin.KeyPEM},
		{s.ServiceAccountKeyFile, saKey},
		// kube-apiserver's --token-auth-file format: token,user,uid,"groups".
		{s.TokenFile, []byte(s.AdminToken + ",kubernetes-admin,kubernetes-admin,\"system:masters\"\n")},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}
