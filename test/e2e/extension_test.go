package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/util/compatibility"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/sample-apiserver/pkg/apis/wardle/v1alpha1"
	wardleapiserver "k8s.io/sample-apiserver/pkg/apiserver"
	sampleopenapi "k8s.io/sample-apiserver/pkg/generated/openapi"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/storage"
)

// extensionServer is k8s.io/sample-apiserver's wardle server (flunders and
// fischers in wardle.example.com) run in the test on loopback, its objects
// in an in-memory store of its own, authenticating and authorizing through
// the Mockernetes server as an extension API server does: it trusts the
// front proxy named in kube-system/extension-apiserver-authentication.
type extensionServer struct {
	port   int
	caCert []byte
	mu     sync.Mutex
	users  map[string][]string // who the requests were from, with groups
}

func (e *extensionServer) seen(name string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.users[name]
}

// startExtensionServer serves with a certificate for localhost and the
// Service name the aggregator verifies (<service>.<namespace>.svc).
func startExtensionServer(t *testing.T, kubeconfig, serviceName string) *extensionServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &extensionServer{port: ln.Addr().(*net.TCPAddr).Port, users: map[string][]string{}}
	o := genericoptions.NewRecommendedOptions("/registry/wardle.example.com", wardleapiserver.Codecs.LegacyCodec(v1alpha1.SchemeGroupVersion))
	o.Etcd = nil // the store is set below
	o.Admission = nil
	o.SecureServing.Listener = ln
	o.SecureServing.BindAddress = net.IPv4(127, 0, 0, 1)
	o.SecureServing.BindPort = e.port
	o.SecureServing.ServerCert.CertDirectory = t.TempDir()
	if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", []string{serviceName}, []net.IP{net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	o.Authentication.RemoteKubeConfigFile = kubeconfig
	o.Authorization.RemoteKubeConfigFile = kubeconfig
	o.CoreAPI.CoreAPIKubeconfigPath = kubeconfig

	cfg := genericapiserver.NewRecommendedConfig(wardleapiserver.Codecs)
	cfg.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	namer := openapi.NewDefinitionNamer(wardleapiserver.Scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(sampleopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title = "Wardle"
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(sampleopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title = "Wardle"
	if err := o.ApplyTo(cfg); err != nil {
		t.Fatal(err)
	}
	// Its flunders live in a store of its own (no etcd here either).
	backend := storage.NewBackend(storage.Options{})
	t.Cleanup(backend.Close)
	etcd := genericoptions.NewEtcdOptions(storagebackend.NewDefaultConfig("/registry/wardle.example.com", wardleapiserver.Codecs.LegacyCodec(v1alpha1.SchemeGroupVersion)))
	etcd.StorageConfig.EncodeVersioner = runtime.NewMultiGroupVersioner(v1alpha1.SchemeGroupVersion, schema.GroupKind{Group: v1alpha1.GroupName})
	cfg.RESTOptionsGetter = backend.Wrap(etcd.CreateRESTOptionsGetter(&genericoptions.SimpleStorageFactory{StorageConfig: etcd.StorageConfig}, nil))
	// Record who each request was from, once authenticated.
	cfg.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, ok := request.UserFrom(r.Context()); ok {
				e.mu.Lock()
				e.users[u.GetName()] = u.GetGroups()
				e.mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
		return genericapiserver.DefaultBuildHandlerChain(record, c)
	}
	srv, err := (&wardleapiserver.Config{GenericConfig: cfg}).Complete().New()
	if err != nil {
		t.Fatal(err)
	}
	if e.caCert, err = os.ReadFile(filepath.Join(o.SecureServing.ServerCert.CertDirectory, "apiserver.crt")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	srv.GenericAPIServer.AddPostStartHookOrDie("start-informers", func(hc genericapiserver.PostStartHookContext) error {
		cfg.SharedInformerFactory.Start(hc.Done())
		return nil
	})
	go func() {
		defer close(done)
		if err := srv.GenericAPIServer.PrepareRun().RunWithContext(ctx); err != nil {
			t.Errorf("extension server: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the extension server did not stop")
		}
	})
	return e
}

// An extension API server registered through an APIService whose Service
// names localhost (an ExternalName Service, which upstream's resolver turns
// into that host) is reached through the Mockernetes server with kubectl
// and client-go, and sees the caller's identity through the front proxy;
// an APIService whose backend cannot be reached reports why.
func TestExtensionAPIServer(t *testing.T) {
	s := startTestServer(t, "--controllers=none", "--gateway-api=false")
	c := s.client(t)
	ns := newNamespace(t, c)
	ext := startExtensionServer(t, s.kubeconfig, "wardle."+ns+".svc")
	if _, err := c.CoreV1().Services(ns).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "wardle"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	port := int32(ext.port)
	agg := aggregatorclient.NewForConfigOrDie(s.restConfig(t))
	if _, err := agg.ApiregistrationV1().APIServices().Create(t.Context(), &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1.wardle.example.com"},
		Spec: apiregistrationv1.APIServiceSpec{
			Group: "wardle.example.com", Version: "v1alpha1", GroupPriorityMinimum: 1000, VersionPriority: 15,
			Service:  &apiregistrationv1.ServiceReference{Namespace: ns, Name: "wardle", Port: &port},
			CABundle: ext.caCert,
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := waitAPIService(t, agg, "v1alpha1.wardle.example.com", apiregistrationv1.ConditionTrue); c.Reason != "Passed" {
		t.Errorf("Available: %+v", c)
	}

	// kubectl finds the resource through discovery and creates, lists and
	// reads flunders on the extension server.
	flunder := `apiVersion: wardle.example.com/v1alpha1
kind: Flunder
metadata:
  name: one
  namespace: ` + ns + `
spec:
  reference: two
`
	var out string
	eventually(t, "kubectl create flunder", func(context.Context) (bool, error) {
		var err error
		out, err = s.kubectl(t, kubectlBin, flunder, "create", "-f", "-")
		return err == nil, nil
	})
	out, err := s.kubectl(t, kubectlBin, "", "get", "flunders", "-n", ns)
	if err != nil || !strings.Contains(out, "one") {
		t.Errorf("kubectl get flunders: %v\n%s", err, out)
	}
	out, err = s.kubectl(t, kubectlBin, "", "api-resources", "--api-group=wardle.example.com")
	if err != nil || !strings.Contains(out, "flunders") || !strings.Contains(out, "fischers") {
		t.Errorf("kubectl api-resources: %v\n%s", err, out)
	}

	// client-go's dynamic client, through the same path.
	flunders := s.dynamic(t).Resource(v1alpha1.SchemeGroupVersion.WithResource("flunders")).Namespace(ns)
	got, err := flunders.Get(t.Context(), "one", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref, _, _ := unstructured.NestedString(got.Object, "spec", "reference"); ref != "two" {
		t.Errorf("flunder spec: %v", got.Object["spec"])
	}
	if _, err := flunders.Create(t.Context(), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "wardle.example.com/v1alpha1", "kind": "Flunder", "metadata": map[string]any{"name": "three"},
	}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("dynamic create: %v", err)
	}
	list, err := flunders.List(t.Context(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 {
		t.Errorf("dynamic list: %v %v", list, err)
	}
	// The extension server saw the admin, whom the aggregator named in its
	// headers with the front proxy's certificate.
	if groups := ext.seen("kubernetes-admin"); !strings.Contains(strings.Join(groups, ","), "system:masters") {
		t.Errorf("the extension server did not see kubernetes-admin in system:masters: %v", ext.users)
	}

	// Deleting the APIService takes the group away again.
	if err := agg.ApiregistrationV1().APIServices().Delete(t.Context(), "v1alpha1.wardle.example.com", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "flunders gone", func(ctx context.Context) (bool, error) {
		_, err := flunders.List(ctx, metav1.ListOptions{})
		return apierrors.IsNotFound(err), nil
	})

	// A backend that cannot be reached: a ClusterIP Service without
	// endpoints (and no EndpointSlice at all: no controllers run here), as a
	// cluster reports it. Its address is made up and never dialed.
	if _, err := c.CoreV1().Services(ns).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := agg.ApiregistrationV1().APIServices().Create(t.Context(), &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1beta1.metrics.example.com"},
		Spec: apiregistrationv1.APIServiceSpec{
			Group: "metrics.example.com", Version: "v1beta1", GroupPriorityMinimum: 100, VersionPriority: 100,
			Service:               &apiregistrationv1.ServiceReference{Namespace: ns, Name: "metrics", Port: ptr.To(int32(443))},
			InsecureSkipTLSVerify: true,
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cond := waitAPIService(t, agg, "v1beta1.metrics.example.com", apiregistrationv1.ConditionFalse)
	if cond.Reason != "EndpointsNotFound" || cond.Message != `cannot find endpointslices for service/metrics in "`+ns+`"` {
		t.Errorf("unreachable APIService: %+v", cond)
	}
	// The aggregator's proxy for the group comes from another informer than
	// the availability condition's, as in kube-apiserver: 404 until then.
	deadline := time.Now().Add(30 * time.Second)
	err = c.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.example.com/v1beta1").Do(t.Context()).Error()
	for apierrors.IsNotFound(err) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		err = c.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.example.com/v1beta1").Do(t.Context()).Error()
	}
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("request to the unavailable APIService: %v, want 503", err)
	}
	out, err = s.kubectl(t, kubectlBin, "", "get", "apiservice", "v1beta1.metrics.example.com")
	if err != nil || !strings.Contains(out, "False (EndpointsNotFound)") {
		t.Errorf("kubectl get apiservice: %v\n%s", err, out)
	}
}
