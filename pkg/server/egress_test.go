package server

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"
)

// dials records every connection the server opens once its egress gate
// let it through.
type dials struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dials) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *dials) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// The server never opens a connection to an address the simulation made
// up: every proxy, kubelet and webhook path is run, and every dial that
// went out is to loopback. A webhook whose URL the test wrote (on
// loopback) is called, which shows that the recorder sees dials.
func TestNoDialToSimulatedAddresses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var seen dials
	srv, _, rc := runServer(t, ctx, func(o *Options) { o.Dial = seen.dial })
	if err := srv.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	ns := "default"

	// A Deployment with a Service, as the first user creates them.
	labels := map[string]string{"app": "web"}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(l.Items) != 1 || l.Items[0].Status.PodIP == "" || l.Items[0].Status.Phase != corev1.PodRunning {
			return false, nil
		}
		pod = l.Items[0]
		s, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
		return err == nil && len(s.Items) == 1 && len(s.Items[0].Endpoints) == 1, nil
	}); err != nil {
		t.Fatalf("running pod with endpoints: %v", err)
	}
	raw := client.CoreV1().RESTClient()
	httpClient, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		res, err := httpClient.Get(rc.Host + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}

	// nodes/proxy: the simulated kubelet answers each path.
	for path, want := range map[string]string{
		"/healthz":       "ok",
		"/pods":          `"name":"` + pod.Name + `"`,
		"/configz":       `"kubeletconfig"`,
		"/stats/summary": `"nodeName": "node-1"`,
		"/metrics":       "kubelet_running_pods 1",
		"/containerLogs/" + ns + "/" + pod.Name + "/web": "web is ready",
	} {
		code, body := get("/api/v1/nodes/node-1/proxy" + path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("nodes/proxy%s: %d, want %q in %.300s", path, code, want, body)
		}
	}
	if code, body := get("/api/v1/nodes/node-1/proxy/no-such-path"); code != http.StatusNotFound || !strings.Contains(body, "404 page not found") {
		t.Errorf("nodes/proxy unknown path: %d %s", code, body)
	}
	if code, body := get("/api/v1/nodes/node-1:10255/proxy/pods"); code != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
		t.Errorf("nodes/proxy on another port: %d %s", code, body)
	}

	// pods/proxy and services/proxy: nothing listens in a simulated pod;
	// the answer is a real API server's when the backend refuses.
	for _, path := range []string{
		"/api/v1/namespaces/" + ns + "/pods/" + pod.Name + "/proxy/",
		"/api/v1/namespaces/" + ns + "/pods/" + pod.Name + ":80/proxy/index.html",
		"/api/v1/namespaces/" + ns + "/services/web/proxy/",
		"/api/v1/namespaces/" + ns + "/services/web:80/proxy/index.html",
	} {
		code, body := get(path)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, `"reason":"ServiceUnavailable"`) ||
			!strings.Contains(body, "error trying to reach service: dial tcp "+pod.Status.PodIP+":80: connect: connection refused") {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	// services/proxy on `kubernetes`: kube-apiserver proxies to pod
	// endpoints only (its registry's isValidAddress), and answers so.
	if code, body := get("/api/v1/namespaces/default/services/kubernetes:443/proxy/version"); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, `no endpoints available for service \"kubernetes\"`) {
		t.Errorf("services/kubernetes proxy /version: %d %s", code, body)
	}

	// Logs, exec, attach and port-forward resolve no node address.
	if b, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx); err != nil || !strings.Contains(string(b), "web is ready") {
		t.Errorf("logs: %v %s", err, b)
	}
	for _, sub := range []string{"exec", "attach", "portforward"} {
		err := raw.Post().Namespace(ns).Resource("pods").Name(pod.Name).SubResource(sub).Param("command", "true").Param("stdout", "true").Param("ports", "80").Do(ctx).Error()
		if !apierrors.IsBadRequest(err) {
			t.Errorf("%s: %v", sub, err)
		}
	}

	// A webhook behind a Service with a ClusterIP only: its call is
	// refused, as when nothing listens, and failurePolicy decides.
	webhookSvc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "hook"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}}}
	if _, err := client.CoreV1().Services(ns).Create(ctx, webhookSvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	called := make(chan struct{}, 100)
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		_ = json.NewDecoder(r.Body).Decode(&review)
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		called <- struct{}{}
		_ = json.NewEncoder(w).Encode(review)
	}))
	defer hook.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw})
	webhook := func(name string, cc admissionregistrationv1.WebhookClientConfig, policy admissionregistrationv1.FailurePolicyType) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name: name, ClientConfig: cc, FailurePolicy: &policy,
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"hooked": name}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
		}
	}
	service := admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: "hook", Port: ptr.To[int32](443)}, CABundle: caBundle}
	if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "hooks"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			webhook("service.fail.example.com", service, admissionregistrationv1.Fail),
			webhook("service.ignore.example.com", service, admissionregistrationv1.Ignore),
			webhook("url.example.com", admissionregistrationv1.WebhookClientConfig{URL: ptr.To(hook.URL), CABundle: caBundle}, admissionregistrationv1.Fail),
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createCM := func(name, hooked string) error {
		_, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"hooked": hooked}}}, metav1.CreateOptions{})
		return err
	}
	// The webhook configuration reaches admission through an informer.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return createCM("probe-"+suffix(), "service.fail.example.com") != nil, nil
	}); err != nil {
		t.Fatal("the webhook configuration never took effect")
	}
	if err := createCM("fail", "service.fail.example.com"); err == nil || !strings.Contains(err.Error(), "connect: connection refused") {
		t.Errorf("service webhook with failurePolicy Fail: %v", err)
	}
	if err := createCM("ignore", "service.ignore.example.com"); err != nil {
		t.Errorf("service webhook with failurePolicy Ignore: %v", err)
	}
	if err := createCM("url", "url.example.com"); err != nil {
		t.Errorf("url webhook: %v", err)
	}
	select {
	case <-called:
	default:
		t.Error("the webhook at the URL the test wrote was never called")
	}

	// An APIService backed by the Deployment's Service: its ClusterIP and
	// its endpoint (the pod's IP) are made up, so the aggregator's
	// availability check and a request to the group fail without a dial.
	agg := aggregatorclient.NewForConfigOrDie(rc)
	if _, err := agg.ApiregistrationV1().APIServices().Create(ctx, &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1.agg.example.com"},
		Spec: apiregistrationv1.APIServiceSpec{Group: "agg.example.com", Version: "v1", GroupPriorityMinimum: 1000, VersionPriority: 15,
			CABundle: caBundle, Service: &apiregistrationv1.ServiceReference{Namespace: ns, Name: "web", Port: ptr.To[int32](80)}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var unavailable *apiregistrationv1.APIServiceCondition
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		a, err := agg.ApiregistrationV1().APIServices().Get(ctx, "v1.agg.example.com", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range a.Status.Conditions {
			if c.Type == apiregistrationv1.Available && c.Status == apiregistrationv1.ConditionFalse && c.Reason == "FailedDiscoveryCheck" {
				unavailable = &c
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("the APIService on a simulated Service never reported FailedDiscoveryCheck")
	}
	t.Logf("APIService on a simulated Service: %s", unavailable.Message)
	if err := raw.Get().AbsPath("/apis/agg.example.com/v1").Do(ctx).Error(); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("request to the APIService on a simulated Service: %v, want 503", err)
	}
	convertedCRD(ctx, t, rc, service)

	if t.Failed() {
		return
	}
	hookAddr := strings.TrimPrefix(hook.URL, "https://")
	var toHook int
	for _, addr := range seen.list() {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("the server dialed %s", addr)
		}
		if addr == hookAddr {
			toHook++
		}
	}
	if toHook == 0 {
		t.Errorf("no dial to the webhook at %s recorded (dials: %v)", hookAddr, seen.list())
	}
}

// convertedCRD serves a CRD in two versions with a conversion webhook
// behind cc: reading the other version fails on the refused connection.
func convertedCRD(ctx context.Context, t *testing.T, rc *rest.Config, cc admissionregistrationv1.WebhookClientConfig) {
	t.Helper()
	version := func(name string, storage bool) apiextensionsv1.CustomResourceDefinitionVersion {
		return apiextensionsv1.CustomResourceDefinitionVersion{Name: name, Served: true, Storage: storage,
			Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr.To(true)}}}
	}
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.hook.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "hook.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names:    apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{version("v1", true), version("v2", false)},
			Conversion: &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{ConversionReviewVersions: []string{"v1"},
					ClientConfig: &apiextensionsv1.WebhookClientConfig{CABundle: cc.CABundle,
						Service: &apiextensionsv1.ServiceReference{Namespace: cc.Service.Namespace, Name: cc.Service.Name, Port: cc.Service.Port}}}},
		},
	}
	if _, err := apiextensionsclient.NewForConfigOrDie(rc).ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(rc)
	v1 := dyn.Resource(schema.GroupVersionResource{Group: "hook.example.com", Version: "v1", Resource: "widgets"}).Namespace("default")
	w := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "hook.example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w"}}}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := v1.Create(ctx, w, metav1.CreateOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatal("custom resource never created")
	}
	_, err := dyn.Resource(schema.GroupVersionResource{Group: "hook.example.com", Version: "v2", Resource: "widgets"}).Namespace("default").Get(ctx, "w", metav1.GetOptions{})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("conversion through a ClusterIP-only webhook: %v", err)
	}
}

// suffix is a short unique suffix.
func suffix() string { return strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "") }

// kube-scheduler's extenders are dialed by clients of their own, outside
// the gate: an extender at a simulated address is refused when the server
// is configured; one on loopback is called for each pod scheduled.
func TestSchedulerExtenders(t *testing.T) {
	var mu sync.Mutex
	var filtered []string
	extender := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var args struct {
			Pod   corev1.Pod      `json:"pod"`
			Nodes json.RawMessage `json:"nodes"`
		}
		if err := json.NewDecoder(r.Body).Decode(&args); err != nil || r.URL.Path != "/scheduler/filter" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		filtered = append(filtered, args.Pod.Name)
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]json.RawMessage{"nodes": args.Nodes})
	}))
	defer extender.Close()
	configFor := func(urlPrefix string) string {
		file := t.TempDir() + "/scheduler.yaml"
		config := "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nextenders:\n- urlPrefix: " + urlPrefix + "\n  filterVerb: filter\n"
		if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	for _, prefix := range []string{"http://10.96.0.50:8080/scheduler", "http://node-1/scheduler", "https://web.default.svc/scheduler"} {
		o := NewOptions()
		o.SchedulerConfig = configFor(prefix)
		o.Complete()
		if errs := o.Validate(); len(errs) > 0 {
			t.Fatal(errs)
		}
		cfg, err := o.Config()
		if err == nil {
			cfg.Close()
			t.Errorf("extender %s: accepted", prefix)
		} else if !strings.Contains(err.Error(), "simulated") {
			t.Errorf("extender %s: %v, want a refusal naming a simulated address", prefix, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, _, rc := runServer(t, ctx, func(o *Options) {
		o.SchedulerConfig = configFor(extender.URL + "/scheduler")
		o.SettleOnWrite = true
	})
	if err := srv.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(rc)
	if _, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "extended"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := client.CoreV1().Pods("default").Get(ctx, "extended", metav1.GetOptions{})
	if err != nil || p.Spec.NodeName != "node-1" {
		t.Errorf("pod scheduled through the extender: %v, node %q", err, p.Spec.NodeName)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(filtered) != 1 || filtered[0] != "extended" {
		t.Errorf("extender calls: %v", filtered)
	}
}
