package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// The group versions kube-apiserver 1.37 serves by default
// (pkg/controlplane DefaultAPIResourceConfigSource, stable versions only,
// and the aggregator's own).
var defaultGroupVersions = []string{
	"v1",
	"admissionregistration.k8s.io/v1",
	"apiextensions.k8s.io/v1",
	"apiregistration.k8s.io/v1",
	"apps/v1",
	"authentication.k8s.io/v1",
	"authorization.k8s.io/v1",
	"autoscaling/v1",
	"autoscaling/v2",
	"batch/v1",
	"certificates.k8s.io/v1",
	"coordination.k8s.io/v1",
	"discovery.k8s.io/v1",
	"events.k8s.io/v1",
	"flowcontrol.apiserver.k8s.io/v1",
	"networking.k8s.io/v1",
	"node.k8s.io/v1",
	"policy/v1",
	"rbac.authorization.k8s.io/v1",
	"resource.k8s.io/v1",
	"scheduling.k8s.io/v1",
	"storage.k8s.io/v1",
	"storagemigration.k8s.io/v1",
}

func get(t *testing.T, client *http.Client, url, accept string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

func TestDiscoveryAndOpenAPI(t *testing.T) {
	cfg := shared.restConfig(t)
	c := shared.client(t)
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}

	v, err := c.Discovery().ServerVersion()
	if err != nil || v.GitVersion != k8sVersion || v.Major != "1" {
		t.Errorf("version: %+v %v", v, err)
	}
	for _, path := range []string{"/healthz", "/livez", "/readyz"} {
		if code, body := get(t, client, cfg.Host+path, ""); code != http.StatusOK || string(body) != "ok" {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}

	// Every default group version, through the aggregated discovery that
	// client-go 1.37 uses.
	groups, resources, err := c.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, g := range groups {
		for _, gv := range g.Versions {
			served[gv.GroupVersion] = true
		}
	}
	var missing, extra []string
	for _, gv := range defaultGroupVersions {
		if !served[gv] {
			missing = append(missing, gv)
		}
		delete(served, gv)
	}
	// Groups of CRDs (Gateway API, other tests' CRDs) are not built-in.
	crds, err := apiextensionsclient.NewForConfigOrDie(cfg).ApiextensionsV1().CustomResourceDefinitions().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fromCRDs := map[string]bool{}
	for _, crd := range crds.Items {
		fromCRDs[crd.Spec.Group] = true
	}
	for gv := range served {
		if !fromCRDs[strings.Split(gv, "/")[0]] {
			extra = append(extra, gv)
		}
	}
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("group versions: missing %v, not served by default upstream %v", missing, extra)
	}
	count := 0
	for _, r := range resources {
		count += len(r.APIResources)
	}
	if count < 100 {
		t.Errorf("only %d resources discovered", count)
	}
	code, body := get(t, client, cfg.Host+"/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
	if code != http.StatusOK || !strings.Contains(string(body), `"kind":"APIGroupDiscoveryList"`) {
		t.Errorf("aggregated discovery: %d %.200s", code, body)
	}

	// A RESTMapper and the dynamic client work from that discovery.
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Discovery()))
	mapping, err := mapper.RESTMapping(schema.GroupKind{Group: "apps", Kind: "Deployment"})
	if err != nil || mapping.Resource.Resource != "deployments" || mapping.Scope.Name() != "namespace" {
		t.Errorf("rest mapping: %+v %v", mapping, err)
	}
	ns := newNamespace(t, c)
	dyn := shared.dynamic(t)
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "dyn"}, "data": map[string]any{"k": "v"},
	}}
	if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Errorf("dynamic create: %v", err)
	}

	// OpenAPI v2 and v3.
	code, body = get(t, client, cfg.Host+"/openapi/v2", "application/json")
	if code != http.StatusOK || !strings.Contains(string(body), `"io.k8s.api.apps.v1.Deployment"`) {
		t.Errorf("openapi v2: %d %.200s", code, body)
	}
	paths, err := c.Discovery().OpenAPIV3().Paths()
	if err != nil {
		t.Fatal(err)
	}
	apps, ok := paths["apis/apps/v1"]
	if !ok {
		t.Fatalf("openapi v3 paths lack apis/apps/v1: %v", paths)
	}
	schemaJSON, err := apps.Schema("application/json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(schemaJSON, &doc); err != nil || doc.Components.Schemas["io.k8s.api.apps.v1.DeploymentSpec"] == nil {
		t.Errorf("openapi v3 apps/v1: %v, %d schemas", err, len(doc.Components.Schemas))
	}
}

// Field validation: Strict refuses unknown fields, Warn warns, Ignore drops.
func TestFieldValidation(t *testing.T) {
	cfg := shared.restConfig(t)
	var warnings []string
	cfg.WarningHandlerWithContext = warningCollector{&warnings}
	c := shared.client(t)
	ns := newNamespace(t, c)
	rc, err := rest.RESTClientFor(withCoreCodec(cfg))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"},"data":{"k":"v"},"bogus":1}`
	post := func(name, validation string) error {
		return rc.Post().Namespace(ns).Resource("configmaps").Param("fieldValidation", validation).
			Body([]byte(strings.Replace(body, "%s", name, 1))).SetHeader("Content-Type", "application/json").
			Do(t.Context()).Error()
	}
	err = post("strict", "Strict")
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `strict decoding error: unknown field "bogus"`) {
		t.Errorf("Strict: %v", err)
	}
	if err := post("warn", "Warn"); err != nil {
		t.Errorf("Warn: %v", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `unknown field "bogus"`) {
		t.Errorf("Warn warnings: %q", warnings)
	}
	warnings = nil
	if err := post("ignore", "Ignore"); err != nil || len(warnings) != 0 {
		t.Errorf("Ignore: %v %q", err, warnings)
	}
	for _, name := range []string{"warn", "ignore"} {
		if _, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Get(t.Context(), "strict", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("strict object was created: %v", err)
	}
}

type warningCollector struct{ into *[]string }

func (w warningCollector) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	*w.into = append(*w.into, text)
}

func withCoreCodec(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.GroupVersion = &corev1.SchemeGroupVersion
	cfg.APIPath = "/api"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return cfg
}
