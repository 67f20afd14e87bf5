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
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/filters"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
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
	aggregatorscheme "k8s.io/kube-aggregator/pkg/apiserver/scheme"
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
	schedulerapi "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/serviceaccount"

	"github.com/mockernetes/mockernetes/manifests"
	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/controllers"
	"github.com/mockernetes/mockernetes/pkg/crds"
	"github.com/mockernetes/mockernetes/pkg/egress"
	"github.com/mockernetes/mockernetes/pkg/history"
	"github.com/mockernetes/mockernetes/pkg/kubelet"
	"github.com/mockernetes/mockernetes/pkg/listcache"
	"github.com/mockernetes/mockernetes/pkg/load"
	"github.com/mockernetes/mockernetes/pkg/pki"
	"github.com/mockernetes/mockernetes/pkg/registry"
	"github.com/mockernetes/mockernetes/pkg/scheduler"
	"github.com/mockernetes/mockernetes/pkg/settle"
	"github.com/mockernetes/mockernetes/pkg/storage"
	"github.com/mockernetes/mockernetes/pkg/system"
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
	// Aggregator is kube-aggregator's config, the server in front of the
	// built-in one: APIServices, /apis and the OpenAPI documents.
	Aggregator *aggregatorapiserver.Config
	// CRDs are installed before the server reports ready.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// Load is applied once the server is otherwise ready, before the reset
	// baseline is taken.
	Load *load.Manifests
	// Controllers run in the server's process once the CRDs are in.
	Controllers controllers.Config
	// Kubelet simulates the nodes (none if it has no nodes).
	Kubelet kubelet.Config
	// Scheduler is kube-scheduler's configuration (nil: its defaults); it
	// runs where there are nodes, unless --controllers leaves it out.
	Scheduler *schedulerapi.KubeSchedulerConfiguration

	// control is the test control around the API handler.
	control *control
	// inProcess is the part of the cluster network the simulation
	// answers in process.
	inProcess *inProcess
	// controlPlane is the control-plane node of --system-pods, which a
	// reset with nodes of its own keeps (nil: none).
	controlPlane *clusterconfig.NodeSpec
	// conns are the listener's connections, closed once a shutdown has
	// drained the requests.
	conns *connTracker
	// ca signs the serving certificate and the users' client certificates.
	ca          *pki.CA
	servingCert pki.KeyPair
	admin       pki.KeyPair

	closeOnce sync.Once
	// cleanup undoes what NewConfig created (temporary state directory,
	// backend, listener) if the server is never run.
	cleanup []func()
	// closeListener closes the listener (a server that never ran).
	closeListener func()
	// loopback carries the in-process clients' requests; tlsLoopback is
	// the loopback client of the HTTPS port, for the webhook and service
	// resolvers that reach the server at its service address.
	loopback    *loopback
	tlsLoopback *restclient.Config
}

// completedConfig is a Config with the upstream defaults filled in.
type completedConfig struct {
	*Config
	generic       genericapiserver.CompletedConfig
	apiExtensions apiextensionsapiserver.CompletedConfig
	aggregator    aggregatorapiserver.CompletedConfig
}

// CompletedConfig can only be made by Config.Complete, so New never sees a
// config whose upstream parts were not completed.
type CompletedConfig struct {
	*completedConfig
}

// Config builds the server's Config from options that Complete and
// Validate went through, in the steps kube-apiserver's BuildGenericConfig
// takes: inputs, state and credentials, serving, the shared informers and
// egress, OpenAPI, storage, authentication and authorization, admission,
// registries. On error everything created so far is released.
func (o *Options) Config() (_ *Config, err error) {
	if !o.validated {
		return nil, errors.New("server options: call Complete and Validate before Config")
	}
	b := &configBuilder{o: o, c: &Config{AdvertiseAddress: o.AdvertiseAddress}}
	defer func() {
		if err != nil {
			b.c.Close()
		}
	}()
	for _, step := range []func() error{
		b.inputs,
		b.stateAndCredentials,
		b.serving,
		b.informersAndEgress,
		b.openAPI,
		b.storage,
		b.authentication,
		b.admission,
		b.registries,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return b.c, nil
}

// configBuilder carries what one step of Options.Config makes for the
// later ones.
type configBuilder struct {
	o *Options
	c *Config
	g *genericapiserver.Config

	cluster        clusterconfig.File
	clusterIPRange net.IPNet
	nodePorts      utilnet.PortRange
	version        *pinnedVersion
	saKey          []byte
	host           string
	port           int
	client         kubernetes.Interface
	gate           *egress.Gate
	storageFactory *serverstorage.DefaultStorageFactory
	tokens         serviceaccount.TokenGenerator
	proxyTransport *http.Transport
	resolver       webhook.ServiceResolver
	selection      controllers.Selection
}

// inputs reads the files first: one that does not parse stops the server
// before anything is created or listens.
func (b *configBuilder) inputs() error {
	o, c := b.o, b.c
	var err error
	if c.CRDs, err = readCRDs(o); err != nil {
		return err
	}
	loadSources, err := crds.ReadPaths(o.Load)
	if err != nil {
		return fmt.Errorf("--load: %w", err)
	}
	if c.Load, err = load.Parse(loadSources); err != nil {
		return fmt.Errorf("--load %w", err)
	}
	// Their CRDs are installed with the others, before the controllers
	// start (the garbage collector's first discovery sees them).
	c.CRDs = append(c.CRDs, c.Load.CRDs()...)
	if o.SchedulerConfig != "" {
		if c.Scheduler, err = scheduler.LoadFile(o.SchedulerConfig); err != nil {
			return fmt.Errorf("--scheduler-config %w", err)
		}
	}
	if o.ClusterConfig != "" {
		if b.cluster, err = clusterconfig.ReadFile(o.ClusterConfig); err != nil {
			return fmt.Errorf("--cluster-config %w", err)
		}
	}
	if len(o.NodeSpecs) > 0 {
		b.cluster.Nodes = o.NodeSpecs
	}
	b.cluster.PodBehaviours = append(b.cluster.PodBehaviours, o.PodBehaviours...)
	b.clusterIPRange, _ = o.clusterIPRange() // validated
	b.nodePorts, _ = o.nodePortRange()
	b.c.ServiceIP, err = firstIP(b.clusterIPRange)
	return err
}

// stateAndCredentials writes the state directory: CA, serving and admin
// certificates, the admin token and the service-account key, which the
// upstream authenticators read from disk.
func (b *configBuilder) stateAndCredentials() error {
	o, c := b.o, b.c
	state, removeState, err := newState(o.StateDir, o.Kubeconfig)
	if err != nil {
		return err
	}
	c.cleanup = append(c.cleanup, removeState)
	c.State = state
	if c.ca, err = state.loadOrNewCA(); err != nil {
		return err
	}
	servingIPs := []net.IP{o.BindAddress, c.ServiceIP, o.AdvertiseAddress, net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if o.BindAddress.IsUnspecified() {
		servingIPs = servingIPs[1:]
	}
	if c.servingCert, err = c.ca.ServingCert([]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, servingIPs); err != nil {
		return err
	}
	if c.admin, err = c.ca.ClientCert("kubernetes-admin", "system:masters"); err != nil {
		return err
	}
	if b.saKey, err = pki.NewSigningKey(); err != nil {
		return err
	}
	frontProxyCA, err := pki.NewNamedCA("front-proxy-ca")
	if err != nil {
		return err
	}
	frontProxyClient, err := frontProxyCA.ClientCert(frontProxyClientName)
	if err != nil {
		return err
	}
	return state.writeCredentials(c.ca.KeyPair, c.servingCert, c.admin, frontProxyCA.KeyPair, frontProxyClient, b.saKey)
}

// serving makes the generic server's config, the listener, the loopback
// client and the kubeconfig.
func (b *configBuilder) serving() error {
	o, c := b.o, b.c
	b.version = newPinnedVersion(KubernetesVersion())
	g := genericapiserver.NewConfig(legacyscheme.Codecs)
	b.g = g
	g.EffectiveVersion = b.version
	g.MergedResourceConfig = registry.DefaultResourceConfig()
	g.PublicAddress = o.AdvertiseAddress

	// The listener is made here: upstream's options skip serving on port 0.
	listener, _, err := genericoptions.CreateListener("tcp", net.JoinHostPort(o.BindAddress.String(), strconv.Itoa(o.Port)), net.ListenConfig{})
	if err != nil {
		return err
	}
	c.conns = trackConns(listener)
	listener = c.conns
	c.closeListener = func() { _ = listener.Close() }
	servingOpts := genericoptions.NewSecureServingOptions()
	servingOpts.BindAddress = o.BindAddress
	servingOpts.Listener = listener
	if servingOpts.ServerCert.GeneratedCert, err = dynamiccertificates.NewStaticCertKeyContent("serving-cert", c.servingCert.CertPEM, c.servingCert.KeyPEM); err != nil {
		return err
	}
	if err := servingOpts.ApplyTo(&g.SecureServing); err != nil {
		return err
	}
	// The loopback client, as SecureServingOptionsWithLoopback sets it up
	// (an SNI certificate for its fake server name, a random token), with
	// an ECDSA certificate from the cluster CA: upstream's RSA self-signed
	// one costs 80 ms of start-up.
	loopback, err := c.ca.ServingCert([]string{genericapiserver.LoopbackClientServerNameOverride}, nil)
	if err != nil {
		return err
	}
	loopbackSNI, err := dynamiccertificates.NewStaticSNICertKeyContent("loopback", loopback.CertPEM, loopback.KeyPEM, genericapiserver.LoopbackClientServerNameOverride)
	if err != nil {
		return err
	}
	g.SecureServing.SNICerts = append([]dynamiccertificates.SNICertKeyContentProvider{loopbackSNI}, g.SecureServing.SNICerts...)
	if g.LoopbackClientConfig, err = g.SecureServing.NewLoopbackClientConfig(uuid.NewString(), c.ca.CertPEM); err != nil {
		return err
	}
	b.port = listener.Addr().(*net.TCPAddr).Port
	b.host = o.BindAddress.String()
	if o.BindAddress.IsUnspecified() {
		b.host = "127.0.0.1"
	}
	c.URL = "https://" + net.JoinHostPort(b.host, strconv.Itoa(b.port))
	g.ExternalAddress = net.JoinHostPort(b.host, strconv.Itoa(b.port))
	if err := c.State.writeKubeconfig(c.URL, c.ca.CertPEM, c.admin); err != nil {
		return err
	}
	// Loopback clients speak protobuf, uncompressed, as kube-apiserver's do,
	// and drop the API's warnings as kube-apiserver's (the process-wide
	// default handler is the embedding program's, e.g. a test's).
	g.LoopbackClientConfig.ContentConfig.ContentType = "application/vnd.kubernetes.protobuf"
	g.LoopbackClientConfig.DisableCompression = true
	g.LoopbackClientConfig.WarningHandler = restclient.NoWarnings{}
	g.LoopbackClientConfig.UserAgent = userAgent("kube-apiserver")
	// Every in-process client goes through the in-memory connections; the
	// TLS one stays for what must reach the HTTPS port (a webhook or
	// APIService whose service is `kubernetes`).
	c.tlsLoopback = g.LoopbackClientConfig
	c.loopback = newLoopback()
	c.cleanup = append(c.cleanup, c.loopback.close)
	if g.LoopbackClientConfig, err = c.loopback.config(c.tlsLoopback); err != nil {
		return err
	}
	b.client, err = kubernetes.NewForConfig(g.LoopbackClientConfig)
	return err
}

// informersAndEgress makes the shared informers of the admission plugins,
// authenticators and registries, and the one gate every outbound
// connection goes through (pkg/egress), handed to each dialing path as
// kube-apiserver hands its egress selector.
func (b *configBuilder) informersAndEgress() error {
	b.c.Informer = informers.NewSharedInformerFactoryWithOptions(b.client, 10*time.Minute, informers.WithTransform(controllers.TrimManagedFields))
	var err error
	b.c.inProcess = &inProcess{}
	if b.gate, err = newGate(b.o, b.clusterIPRange, b.host, b.port, b.c.Informer, b.c.inProcess.dial); err != nil {
		return err
	}
	b.g.EgressSelector = b.gate.Selector()
	return nil
}

// openAPI sets up the OpenAPI documents, discovery and which requests are
// long-running.
func (b *configBuilder) openAPI() error {
	g := b.g
	getOpenAPIDefinitions := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	namer := openapinamer.NewDefinitionNamer(legacyscheme.Scheme, apiextensionsapiserver.Scheme, aggregatorscheme.Scheme)
	g.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(getOpenAPIDefinitions, namer)
	g.OpenAPIConfig.Info.Title = "Kubernetes"
	g.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(getOpenAPIDefinitions, namer)
	g.OpenAPIV3Config.Info.Title = "Kubernetes"
	names := definitionNames(namer.GetDefinitionName)
	g.OpenAPIConfig.GetDefinitionName, g.OpenAPIV3Config.GetDefinitionName = names, names
	longRunning := filters.BasicLongRunningRequestCheck(
		sets.NewString("watch", "proxy"),
		sets.NewString("attach", "exec", "proxy", "log", "portforward"),
	)
	// Settle and reset bound themselves (their ?timeout= is theirs, not
	// the request deadline upstream reads from that parameter).
	g.LongRunningFunc = func(r *http.Request, info *apirequest.RequestInfo) bool {
		return longRunning(r, info) || r.URL.Path == testcontrol.SettlePath || r.URL.Path == testcontrol.ResetPath || r.URL.Path == testcontrol.SnapshotPath || r.URL.Path == testcontrol.BaselinePath
	}
	g.AggregatedDiscoveryGroupManager = aggregated.NewResourceManager("apis")
	g.DisabledPostStartHooks.Insert(replacedPostStartHooks...)
	g.SkipOpenAPIInstallation = true // installOpenAPI builds the v2 spec off the start-up path
	return nil
}

// storage is kube-apiserver's storage factory (codecs, storage versions,
// key prefixes) with the in-memory backend in place of etcd, and the test
// control that watches the backend.
func (b *configBuilder) storage() error {
	o, c, g := b.o, b.c, b.g
	storageFactoryConfig := kubeapiserver.NewStorageFactoryConfigEffectiveVersion(b.version)
	storageFactoryConfig.APIResourceConfig = g.MergedResourceConfig
	storageFactoryConfig.DefaultResourceEncoding.SetEffectiveVersion(b.version)
	var err error
	// Built-in objects are stored as protobuf, as kube-apiserver stores
	// them (its --storage-media-type default): decoding a stored pod for an
	// update costs a fraction of decoding its JSON.
	etcd := genericoptions.NewEtcdOptions(storagebackend.NewDefaultConfig("/registry", nil))
	etcd.DefaultStorageMediaType = "application/vnd.kubernetes.protobuf"
	if b.storageFactory, err = storageFactoryConfig.Complete(etcd).New(); err != nil {
		return err
	}
	// Lists are handed to the registries read-only, and a watch event's
	// object is shared by its watchers and encoded once per format, as
	// kube-apiserver's watch cache hands them out: the registries and
	// handlers only encode them, and a large LIST or a watch with many
	// watchers costs what it costs there.
	c.Backend = storage.NewBackend(storage.Options{HistoryWindow: o.HistoryWindow, BookmarkInterval: time.Minute, ReadOnlyLists: true, SharedWatchObjects: true})
	c.cleanup = append(c.cleanup, c.Backend.Close)
	c.control = &control{
		history:     history.New(o.RequestHistorySize, o.RequestHistoryBodies),
		tracker:     settle.New(c.Backend, 0),
		longRunning: g.LongRunningFunc,
	}
	c.control.settleOnWrite.Store(o.SettleOnWrite)
	c.control.writeTimeout.Store(int64(o.SettleOnWriteTimeout))
	g.RESTOptionsGetter = &storage.RESTOptionsGetter{
		StorageFactory:          b.storageFactory,
		Backend:                 c.Backend,
		EnableGarbageCollection: true,
		DeleteCollectionWorkers: 1,
	}
	return nil
}

// authentication accepts client certificates from the cluster CA, the
// admin bearer token and service-account tokens; anonymous requests are
// refused under AlwaysAllow and are system:anonymous under the other modes,
// as kube-apiserver has it. Authorization is kube-apiserver's, by
// --authorization-mode (system:masters always allowed).
func (b *configBuilder) authentication() error {
	c, g, o := b.c, b.g, b.o
	authz := kubeoptions.NewBuiltInAuthorizationOptions()
	authz.Modes = o.AuthorizationModes
	authn := kubeoptions.NewBuiltInAuthenticationOptions().WithAnonymous().WithClientCert().WithRequestHeader().WithTokenFile().WithServiceAccounts()
	authn.ApplyAuthorization(authz)
	authn.ClientCert.ClientCA = c.State.CAFile
	// The front proxy's headers, as kubeadm sets them.
	authn.RequestHeader.ClientCAFile = c.State.FrontProxyCAFile
	authn.RequestHeader.AllowedNames = []string{frontProxyClientName}
	authn.RequestHeader.UsernameHeaders = []string{"X-Remote-User"}
	authn.RequestHeader.GroupHeaders = []string{"X-Remote-Group"}
	authn.RequestHeader.ExtraHeaderPrefixes = []string{"X-Remote-Extra-"}
	authn.TokenFile.TokenFile = c.State.TokenFile
	authn.ServiceAccounts.KeyFiles = []string{c.State.ServiceAccountKeyFile}
	authn.ServiceAccounts.Issuers = []string{ServiceAccountIssuer}
	authn.ServiceAccounts.Lookup = true
	drained := wait.ContextForChannel(g.DrainedNotify())
	if err := authn.ApplyTo(drained, &g.Authentication, g.SecureServing, g.EgressSelector, g.OpenAPIConfig, g.OpenAPIV3Config, b.client, c.Informer, g.APIServerID); err != nil {
		return fmt.Errorf("authentication: %w", err)
	}
	clientCA, err := authn.ClientCert.GetClientCAContentProvider()
	if err != nil {
		return err
	}
	c.AuthTrust = clusterauthenticationtrust.ClusterAuthenticationInfo{ClientCA: clientCA}
	// A client certificate's verification is reused across its requests.
	if clientCA != nil {
		g.Authentication.Authenticator = newCertAuthCache(g.Authentication.Authenticator, clientCA)
	}
	// Published in kube-system/extension-apiserver-authentication, where
	// extension API servers read whom to trust (kube-apiserver's BuildGenericConfig).
	requestHeader, err := authn.RequestHeader.ToAuthenticationRequestHeaderConfig()
	if err != nil {
		return err
	}
	if requestHeader != nil {
		c.AuthTrust.RequestHeaderCA = requestHeader.CAContentProvider
		c.AuthTrust.RequestHeaderAllowedNames = requestHeader.AllowedClientNames
		c.AuthTrust.RequestHeaderExtraHeaderPrefixes = requestHeader.ExtraHeaderPrefixes
		c.AuthTrust.RequestHeaderGroupHeaders = requestHeader.GroupHeaders
		c.AuthTrust.RequestHeaderUsernameHeaders = requestHeader.UsernameHeaders
		c.AuthTrust.RequestHeaderUIDHeaders = requestHeader.UIDHeaders
	}
	authzConfig, err := authz.ToAuthorizationConfig(c.Informer)
	if err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	if g.Authorization.Authorizer, g.RuleResolver, err = authzConfig.New(drained, g.APIServerID); err != nil {
		return fmt.Errorf("authorization: %w", err)
	}

	signingKey, err := keyutil.ParsePrivateKeyPEM(b.saKey)
	if err != nil {
		return err
	}
	b.tokens, err = serviceaccount.JWTTokenGenerator(ServiceAccountIssuer, signingKey)
	return err
}

// admission is kube-apiserver's chain: its plugins, order and default-on
// set, with the proxy transport and service resolver of webhooks dialing
// through the egress gate.
func (b *configBuilder) admission() error {
	o, c, g := b.o, b.c, b.g
	// The transport of the proxy subresources and service-resolved
	// webhooks dials through the gate, as kube-apiserver's dials through its
	// egress selector. Its targets are cluster addresses, never reached
	// through an HTTP proxy of the environment (that would connect past the
	// gate).
	b.proxyTransport = controlplaneapiserver.CreateProxyTransport()
	b.proxyTransport.DialContext = b.gate.ClusterDial()
	b.proxyTransport.Proxy = nil
	resolver := aggregatorapiserver.NewClusterIPServiceResolver(c.Informer.Core().V1().Services().Lister())
	if loopback, err := url.Parse(c.tlsLoopback.Host); err == nil {
		resolver = aggregatorapiserver.NewLoopbackServiceResolver(resolver, loopback)
	}
	b.resolver = b.gate.Resolver(resolver)
	kubeInitializers, err := (&kubeadmission.Config{}).New()
	if err != nil {
		return err
	}
	genericInitializers, err := (&controlplaneadmission.Config{
		ExternalInformers:    c.Informer,
		LoopbackClientConfig: g.LoopbackClientConfig,
		APIResourceConfig:    b.storageFactory.APIResourceConfigSource,
	}).New(b.proxyTransport, g.EgressSelector, b.resolver, g.TracerProvider)
	if err != nil {
		return fmt.Errorf("admission initializers: %w", err)
	}
	dynamicClient, err := dynamic.NewForConfig(g.LoopbackClientConfig)
	if err != nil {
		return err
	}
	admission := kubeoptions.NewAdmissionOptions()
	admission.GenericAdmission.EnablePlugins = o.EnableAdmissionPlugins
	admission.GenericAdmission.DisablePlugins = o.DisableAdmissionPlugins
	b.selection, _ = controllers.Select(o.Controllers) // validated
	if !b.selection.Enabled(names.ServiceAccountController) && !slices.Contains(o.EnableAdmissionPlugins, serviceAccountAdmission) {
		admission.GenericAdmission.DisablePlugins = append(slices.Clone(o.DisableAdmissionPlugins), serviceAccountAdmission)
	}
	if errs := admission.Validate(); len(errs) > 0 {
		return utilerrors.NewAggregate(errs)
	}
	if err := admission.ApplyTo(g, c.Informer, b.client, dynamicClient, utilfeature.DefaultFeatureGate, b.version,
		append(genericInitializers, kubeInitializers...)...); err != nil {
		return fmt.Errorf("admission: %w", err)
	}
	// Privileged containers are allowed, as kubeadm and kind configure
	// kube-apiserver (its own default is off). Process-wide and set once
	// upstream; every server here wants the same value.
	capabilities.Setup(true, 0)
	return nil
}

// checkExtenders refuses kube-scheduler extenders at addresses the egress
// gate refuses, or named after a simulated node (not registered yet): their
// HTTP clients dial without the gate.
func checkExtenders(gate *egress.Gate, c *schedulerapi.KubeSchedulerConfiguration, nodes []clusterconfig.NodeSpec) error {
	if c == nil {
		return nil
	}
	for i, e := range c.Extenders {
		u, err := url.Parse(e.URLPrefix)
		if err == nil {
			err = gate.Check(u)
		}
		if err == nil && slices.ContainsFunc(nodes, func(n clusterconfig.NodeSpec) bool { return strings.EqualFold(n.Name, u.Hostname()) }) {
			err = errors.New("a simulated node's name: nothing listens there")
		}
		if err != nil {
			return fmt.Errorf("--scheduler-config: extenders[%d].urlPrefix %q: %w", i, e.URLPrefix, err)
		}
	}
	return nil
}

// systemPods adds what kind creates (pkg/system): the control-plane node
// to nodes, the add-ons before the --load manifests.
func (b *configBuilder) systemPods(nodes []clusterconfig.NodeSpec) ([]clusterconfig.NodeSpec, error) {
	v := system.Values{Cluster: ContextName, Advertise: b.o.AdvertiseAddress, ServiceRange: b.clusterIPRange, Version: KubernetesVersion()}
	controlPlane, err := system.ControlPlaneNode(v)
	if err != nil {
		return nil, err
	}
	b.c.controlPlane = &controlPlane
	addOns, err := system.AddOns(v)
	if err != nil {
		return nil, err
	}
	system, err := load.Parse(addOns)
	if err != nil {
		return nil, err
	}
	b.c.Load = load.Join(system, b.c.Load)
	return append(slices.Clip(nodes), controlPlane), nil
}

// registries configures what New installs: the upstream registries, the
// CRD server behind them, the controllers and the simulated kubelet, and
// the handler chain with the test control inside it.
func (b *configBuilder) registries() error {
	o, c, g := b.o, b.c, b.g
	endpointSlices, err := proxy.NewEndpointSliceIndexerGetter(c.Informer.Discovery().V1().EndpointSlices())
	if err != nil {
		return err
	}
	c.Generic = g
	c.Controllers = controllers.Config{Kubeconfig: g.LoopbackClientConfig, UserAgent: userAgent("kube-controller-manager"), Selection: b.selection, RootCAFile: c.State.CAFile, Tracker: c.control.tracker}
	nodes := clusterconfig.DefaultNodes(o.Nodes)
	if len(b.cluster.Nodes) > 0 {
		nodes = b.cluster.Nodes
	}
	if o.SystemPods && !b.selection.None() && len(nodes) > 0 {
		if nodes, err = b.systemPods(nodes); err != nil {
			return err
		}
	}
	if err := checkExtenders(b.gate, c.Scheduler, nodes); err != nil {
		return err
	}
	if (!b.selection.None() || b.selection.Scheduler()) && len(nodes) > 0 {
		scale := o.TimeScale
		if (scale == 0 || scale == 1) && b.cluster.TimeScale > 0 {
			scale = b.cluster.TimeScale
		}
		c.Kubelet = kubelet.Config{Nodes: nodes, Rules: b.cluster.PodBehaviours, KubeletVersion: KubernetesVersion(), Logs: kubelet.NewLogs(), Tracker: c.control.tracker, TimeScale: scale,
			Dial: b.gate.Dial(), AllowLocalExec: o.AllowLocalExec}
	}
	c.APIExtensions = newAPIExtensionsConfig(g, c.Informer, c.Backend, b.resolver,
		webhook.NewDefaultAuthenticationInfoResolverWrapper(b.proxyTransport, g.EgressSelector, c.tlsLoopback, g.TracerProvider))
	// The test control sits inside upstream's filters (after
	// authentication, request info, priority and fairness), around the
	// whole handler: built-in APIs, CRDs and the admin API. The CRD
	// server's copy of the config keeps the default chain (delegated
	// requests skip it).
	g.BuildHandlerChainFunc = func(h http.Handler, gc *genericapiserver.Config) http.Handler {
		return genericapiserver.DefaultBuildHandlerChain(c.control.filter(h), gc)
	}
	// The aggregator serves every request first: its copy keeps this chain.
	c.Aggregator = newAggregatorConfig(g, c.Informer, c.Backend, b.resolver, b.proxyTransport, c.State)
	nodePortAllocator, err := portallocator.NewInMemory(b.nodePorts)
	if err != nil {
		return fmt.Errorf("node port allocator: %w", err)
	}
	kubeletClient := registry.DefaultKubeletClientConfig()
	kubeletClient.Lookup = g.EgressSelector.Lookup
	c.Registry = registry.Config{
		StorageFactory:        b.storageFactory,
		LoopbackClientConfig:  g.LoopbackClientConfig,
		Informers:             c.Informer,
		Authenticator:         g.Authentication.Authenticator,
		APIAudiences:          g.Authentication.APIAudiences,
		Authorizer:            g.Authorization.Authorizer,
		RuleResolver:          g.RuleResolver,
		ServiceAccountIssuer:  b.tokens,
		EventTTL:              o.EventTTL,
		ServiceClusterIPRange: b.clusterIPRange,
		ServiceNodePortRange:  b.nodePorts,
		NodePorts:             nodePortAllocator,
		KubeletClientConfig:   kubeletClient,
		ProxyTransport:        b.proxyTransport,
		EndpointSliceGetter:   endpointSlices,
		ListCache:             listcache.New(0),
	}
	if c.Kubelet.Logs != nil { // an interface: no typed nil
		c.Registry.PodLogs = c.Kubelet.Logs
	}
	return nil
}

// Close releases what Config created (listener, store, temporary state
// directory); Server.Run does it on return. Safe to call more than once.
func (c *Config) Close() {
	if c.closeListener != nil {
		c.closeListener()
	}
	c.release()
}

// release releases what Config created except the listener, which a
// running HTTP server owns until its shutdown closes it (closed under it,
// upstream's serving goroutine panics).
func (c *Config) release() {
	c.closeOnce.Do(func() {
		for i := len(c.cleanup) - 1; i >= 0; i-- {
			c.cleanup[i]()
		}
	})
}

// Complete fills in the upstream defaults.
func (c *Config) Complete() CompletedConfig {
	return CompletedConfig{&completedConfig{Config: c, generic: c.Generic.Complete(c.Informer), apiExtensions: c.APIExtensions.Complete(),
		aggregator: c.Aggregator.Complete()}}
}

// readCRDs parses the --crds manifests and, unless turned off, the embedded
// Gateway API CRDs, and adds the CRDs given as values.
func readCRDs(o *Options) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	sources, err := crds.ReadPaths(o.CRDs)
	if err != nil {
		return nil, fmt.Errorf("--crds: %w", err)
	}
	parsed, err := crds.Parse(sources)
	if err != nil {
		return nil, err
	}
	if o.GatewayAPI {
		gateway, err := crds.ParseJSON(manifests.GatewayAPICRDs)
		if err != nil {
			return nil, fmt.Errorf("the embedded Gateway API CRDs: %w", err)
		}
		parsed = append(gateway, parsed...)
	}
	for _, crd := range o.CustomResourceDefinitions {
		parsed = append(parsed, crd.DeepCopy())
	}
	return parsed, nil
}

// GatewayAPIVersion is the release of the embedded Gateway API CRDs.
func GatewayAPIVersion() string { return manifests.GatewayAPIVersion() }

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
	// The front proxy's CA and client certificate: the aggregator presents
	// the certificate to extension API servers, which trust the user it
	// names in its X-Remote-* headers (kubeadm's front-proxy-ca and
	// front-proxy-client).
	FrontProxyCAFile         string
	FrontProxyClientCertFile string
	FrontProxyClientKeyFile  string
	Kubeconfig               string
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
		Dir:                      dir,
		CAFile:                   filepath.Join(dir, "ca.crt"),
		ServingCertFile:          filepath.Join(dir, "apiserver.crt"),
		ServingKeyFile:           filepath.Join(dir, "apiserver.key"),
		AdminCertFile:            filepath.Join(dir, "admin.crt"),
		AdminKeyFile:             filepath.Join(dir, "admin.key"),
		TokenFile:                filepath.Join(dir, "tokens.csv"),
		ServiceAccountKeyFile:    filepath.Join(dir, "sa.key"),
		FrontProxyCAFile:         filepath.Join(dir, "front-proxy-ca.crt"),
		FrontProxyClientCertFile: filepath.Join(dir, "front-proxy-client.crt"),
		FrontProxyClientKeyFile:  filepath.Join(dir, "front-proxy-client.key"),
		Kubeconfig:               kubeconfig,
		AdminToken:               token,
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

func (s State) writeCredentials(ca, serving, admin, frontProxyCA, frontProxyClient pki.KeyPair, saKey []byte) error {
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
		{s.FrontProxyCAFile, frontProxyCA.CertPEM},
		{s.FrontProxyClientCertFile, frontProxyClient.CertPEM},
		{s.FrontProxyClientKeyFile, frontProxyClient.KeyPEM},
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
