package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/pki"
)

// Admission webhooks served by the test, called by their URL (and once
// through an ExternalName Service naming localhost) with the real
// AdmissionReview, their matchConditions honoured: a mutation (and its reinvocation), a denial, the
// failure policies against a webhook that is down, a timeout, and a dry
// run, which reaches a webhook whose side effects are None on dry run
// marked as such and stores nothing. (Webhooks with side effects on dry
// run, which a dry run is refused for, cannot be configured in
// admissionregistration.k8s.io/v1.)
func TestAdmissionWebhooks(t *testing.T) {
	s := startTestServer(t)
	c := s.client(t)
	ctx := t.Context()

	var mu sync.Mutex
	calls := map[string]int{}
	var dryRuns []bool
	hook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		calls[r.URL.Path]++
		mu.Unlock()
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		label := func(k, v string) {
			patch := `[{"op":"add","path":"/metadata/labels/` + k + `","value":"` + v + `"}]`
			resp.Patch, resp.PatchType = []byte(patch), ptr.To(admissionv1.PatchTypeJSONPatch)
		}
		switch r.URL.Path {
		case "/first":
			label("first", "yes")
		case "/second":
			label("second", "yes")
		case "/deny":
			resp.Allowed = false
			resp.Result = &metav1.Status{Message: "no config maps named " + review.Request.Name, Code: http.StatusForbidden}
		case "/slow":
			time.Sleep(1500 * time.Millisecond)
		case "/dry-run":
			mu.Lock()
			dryRuns = append(dryRuns, review.Request.DryRun != nil && *review.Request.DryRun)
			mu.Unlock()
		}
		review.Response = resp
		_ = json.NewEncoder(w).Encode(review)
	}))
	// A certificate for the URL (127.0.0.1) and for the Service form
	// (hook.default.svc, the name the API server checks).
	ca, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.ServingCert([]string{"hook.default.svc"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(serving.CertPEM, serving.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	hook.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hook.StartTLS()
	defer hook.Close()
	caBundle := ca.CertPEM
	// The Service form: an ExternalName Service naming localhost, which is
	// where the test's webhook listens.
	hookPort := hook.Listener.Addr().(*net.TCPAddr).Port
	if _, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "hook"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "https://" + down.Addr().String()
	_ = down.Close()

	configMaps := []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}}
	selector := func(name string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"case": name}}
	}
	clientConfig := func(base, path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{URL: ptr.To(base + path), CABundle: caBundle}
	}
	mutating := func(name, path string, reinvoke bool) admissionregistrationv1.MutatingWebhook {
		policy := admissionregistrationv1.NeverReinvocationPolicy
		if reinvoke {
			policy = admissionregistrationv1.IfNeededReinvocationPolicy
		}
		return admissionregistrationv1.MutatingWebhook{Name: name, ClientConfig: clientConfig(hook.URL, path), Rules: configMaps,
			ObjectSelector: selector("mutate"), SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"}, ReinvocationPolicy: &policy}
	}
	validating := func(name, base, path, kase string, policy admissionregistrationv1.FailurePolicyType, sideEffects admissionregistrationv1.SideEffectClass, timeout int32) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{Name: name, ClientConfig: clientConfig(base, path), Rules: configMaps,
			ObjectSelector: selector(kase), FailurePolicy: &policy, SideEffects: &sideEffects,
			AdmissionReviewVersions: []string{"v1"}, TimeoutSeconds: &timeout}
	}
	if _, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "mutate"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{mutating("first.example.com", "/first", true), mutating("second.example.com", "/second", false)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	none, onDryRun := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.SideEffectClassNoneOnDryRun
	deny := validating("deny.example.com", hook.URL, "/deny", "deny", admissionregistrationv1.Fail, none, 10)
	deny.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "not-skipped", Expression: `!object.metadata.name.startsWith("skip-")`}}
	viaService := validating("service.example.com", "", "", "service", admissionregistrationv1.Fail, none, 10)
	viaService.ClientConfig = admissionregistrationv1.WebhookClientConfig{CABundle: caBundle,
		Service: &admissionregistrationv1.ServiceReference{Namespace: "default", Name: "hook", Path: ptr.To("/deny"), Port: ptr.To(int32(hookPort))}}
	// Selected by namespace: every config map of a labelled namespace.
	byNamespace := validating("namespace.example.com", hook.URL, "/deny", "", admissionregistrationv1.Fail, none, 10)
	byNamespace.ObjectSelector = nil
	byNamespace.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"guarded": "yes"}}
	for name, labels := range map[string]map[string]string{"guarded": {"guarded": "yes"}, "open": nil} {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "validate"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			deny,
			viaService,
			byNamespace,
			validating("down-fail.example.com", downURL, "/", "down-fail", admissionregistrationv1.Fail, none, 10),
			validating("down-ignore.example.com", downURL, "/", "down-ignore", admissionregistrationv1.Ignore, none, 10),
			validating("slow.example.com", hook.URL, "/slow", "slow", admissionregistrationv1.Fail, none, 1),
			validating("dry-run.example.com", hook.URL, "/dry-run", "dry-run", admissionregistrationv1.Fail, onDryRun, 10),
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	create := func(name, kase string, opts metav1.CreateOptions) (*corev1.ConfigMap, error) {
		return c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"case": kase}}}, opts)
	}
	// The configurations take effect once the server's informers have them.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := create("probe", "deny", metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsForbidden(err), nil
	}); err != nil {
		t.Fatalf("the webhooks never took effect: %v", err)
	}

	mu.Lock()
	calls = map[string]int{}
	mu.Unlock()
	cm, err := create("mutated", "mutate", metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	first, second := calls["/first"], calls["/second"]
	mu.Unlock()
	if cm.Labels["first"] != "yes" || cm.Labels["second"] != "yes" || first != 2 || second != 1 {
		t.Errorf("mutation: labels %v; first called %d times (want 2: reinvoked after second), second %d", cm.Labels, first, second)
	}

	_, err = create("denied", "deny", metav1.CreateOptions{})
	if want := `admission webhook "deny.example.com" denied the request: no config maps named denied`; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("validating webhook: %v, want %q", err, want)
	}
	if _, err := create("skip-me", "deny", metav1.CreateOptions{}); err != nil {
		t.Errorf("a request the deny webhook's matchConditions exclude: %v", err)
	}
	inNamespace := func(ns string) error {
		_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{})
		return err
	}
	if err := inNamespace("guarded"); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `admission webhook "namespace.example.com" denied the request`) {
		t.Errorf("a config map in the namespace the webhook selects: %v", err)
	}
	if err := inNamespace("open"); err != nil {
		t.Errorf("a config map in another namespace: %v", err)
	}
	_, err = create("via-service", "service", metav1.CreateOptions{})
	if want := `admission webhook "service.example.com" denied the request: no config maps named via-service`; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("a webhook called through an ExternalName Service: %v, want %q", err, want)
	}
	_, err = create("down", "down-fail", metav1.CreateOptions{})
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), `failed calling webhook "down-fail.example.com": failed to call webhook: Post "`+downURL+`/?timeout=10s"`) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("failurePolicy Fail, webhook down: %v", err)
	}
	if _, err := create("down-ignored", "down-ignore", metav1.CreateOptions{}); err != nil {
		t.Errorf("failurePolicy Ignore, webhook down: %v", err)
	}
	start := time.Now()
	_, err = create("slow", "slow", metav1.CreateOptions{})
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), `failed calling webhook "slow.example.com": failed to call webhook: Post "`+hook.URL+`/slow?timeout=1s": context deadline exceeded`) {
		t.Errorf("a webhook slower than its 1 s timeout: %v", err)
	}
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("the timed-out call took %v", took)
	}
	if _, err := create("dry", "dry-run", metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("a dry run: %v", err)
	}
	if _, err := c.CoreV1().ConfigMaps("default").Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dry run's object was stored: %v", err)
	}
	if _, err := create("wet", "dry-run", metav1.CreateOptions{}); err != nil {
		t.Errorf("the same without dry run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dryRuns) != 2 || !dryRuns[0] || dryRuns[1] {
		t.Errorf("the webhook saw dryRun %v, want [true false]", dryRuns)
	}
}

// A ValidatingAdmissionPolicy with a CEL rule and a parameter denies with
// its message; a MutatingAdmissionPolicy sets a field.
func TestAdmissionPolicies(t *testing.T) {
	s := startTestServer(t)
	c := s.client(t)
	ctx := t.Context()
	adm := c.AdmissionregistrationV1()
	configMaps := &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
		RuleWithOperations: admissionregistrationv1.RuleWithOperations{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}}},
		ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"policed": "yes"}}}
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "naming"}, Data: map[string]string{"prefix": "team-"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.ValidatingAdmissionPolicies().Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "name-prefix"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind:        &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: configMaps,
			Validations: []admissionregistrationv1.Validation{{
				Expression:        "object.metadata.name.startsWith(params.data.prefix)",
				MessageExpression: `"name must start with " + params.data.prefix`,
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.ValidatingAdmissionPolicyBindings().Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "name-prefix-binding"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        "name-prefix",
			ParamRef:          &admissionregistrationv1.ParamRef{Name: "naming", Namespace: "default", ParameterNotFoundAction: ptr.To(admissionregistrationv1.DenyAction)},
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.MutatingAdmissionPolicies().Create(ctx, &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "owner-label"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints:   configMaps,
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
					Expression: `Object{metadata: Object.metadata{labels: {"owner": "platform"}}}`,
				},
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.MutatingAdmissionPolicyBindings().Create(ctx, &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "owner-label-binding"},
		Spec:       admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "owner-label"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	create := func(name string, opts metav1.CreateOptions) (*corev1.ConfigMap, error) {
		return c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"policed": "yes"}}}, opts)
	}
	want := `configmaps "bad-name" is forbidden: ValidatingAdmissionPolicy 'name-prefix' with binding 'name-prefix-binding' denied request: name must start with team-`
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = create("bad-name", metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last != nil && last.Error() == want, nil
	}); err != nil {
		t.Errorf("the policy's denial: %v, want %q", last, want)
	}
	var cm *corev1.ConfigMap
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		cm, last = create("team-web", metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last == nil && cm.Labels["owner"] == "platform", nil
	}); err != nil {
		t.Errorf("the mutating policy's label: %v %v", last, cm)
	}
}

// matchPolicy: a webhook registered for v1 of a resource served in v1 and
// v2 is called for a v2 request when Equivalent, not when Exact.
func TestWebhookMatchPolicy(t *testing.T) {
	s := startTestServer(t, "--controllers", "none")
	c := s.client(t)
	ctx := t.Context()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr.To(true)}}},
				{Name: "v2", Served: true, Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr.To(true)}}},
			},
		},
	}
	if _, err := apiextensionsclient.NewForConfigOrDie(s.restConfig(t)).ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		_ = json.NewDecoder(r.Body).Decode(&review)
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: false,
			Result: &metav1.Status{Message: "seen as " + review.Request.Kind.Version, Code: http.StatusForbidden}}
		_ = json.NewEncoder(w).Encode(review)
	}))
	defer hook.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw})
	webhook := func(name string, policy admissionregistrationv1.MatchPolicyType) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{Name: name + ".example.com", MatchPolicy: &policy,
			ClientConfig:   admissionregistrationv1.WebhookClientConfig{URL: ptr.To(hook.URL), CABundle: caBundle},
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"case": name}},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"example.com"}, APIVersions: []string{"v1"}, Resources: []string{"gadgets"}}}},
			SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"}}
	}
	if _, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "match-policy"},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{webhook("exact", admissionregistrationv1.Exact), webhook("equivalent", admissionregistrationv1.Equivalent)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	v2 := s.dynamic(t).Resource(schema.GroupVersionResource{Group: "example.com", Version: "v2", Resource: "gadgets"}).Namespace("default")
	create := func(name string) error {
		_, err := v2.Create(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v2", "kind": "Gadget",
			"metadata": map[string]any{"name": name, "labels": map[string]any{"case": name}}}}, metav1.CreateOptions{})
		return err
	}
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		last = create("equivalent")
		return last != nil && strings.Contains(last.Error(), `admission webhook "equivalent.example.com" denied the request: seen as v1`), nil
	}); err != nil {
		t.Errorf("a v2 request through an Equivalent webhook for v1: %v", last)
	}
	if err := create("exact"); err != nil {
		t.Errorf("a v2 request and an Exact webhook for v1: %v", err)
	}
}
