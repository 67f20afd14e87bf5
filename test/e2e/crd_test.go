package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget, shortNames: [wd]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    selectableFields:
    - jsonPath: .spec.color
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.size <= self.maxSize"
              message: "size must not exceed maxSize"
            properties:
              color: {type: string, default: blue}
              size: {type: integer}
              maxSize: {type: integer, default: 10}
              replicas: {type: integer}
          status:
            type: object
            properties:
              phase: {type: string}
              replicas: {type: integer}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
  conversion:
    strategy: None
`

var widgets = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

func widget(name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": name}, "spec": spec,
	}}
}

func TestCustomResources(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	ns := newNamespace(t, c)
	ext := apiextensionsclient.NewForConfigOrDie(shared.restConfig(t))
	dyn := shared.dynamic(t)

	if out, err := shared.kubectl(t, kubectlBin, widgetCRD, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		_ = ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctxFor(t), "widgets.example.com", metav1.DeleteOptions{})
	})
	// Established and NamesAccepted, then served.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(ctx2 context.Context) (bool, error) {
		crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx2, "widgets.example.com", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds := map[apiextensionsv1.CustomResourceDefinitionConditionType]bool{}
		for _, cond := range crd.Status.Conditions {
			conds[cond.Type] = cond.Status == apiextensionsv1.ConditionTrue
		}
		if !conds[apiextensionsv1.Established] || !conds[apiextensionsv1.NamesAccepted] {
			return false, nil
		}
		_, err = dyn.Resource(widgets).Namespace(ns).List(ctx2, metav1.ListOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("CRD not served: %v", err)
	}

	crs := dyn.Resource(widgets).Namespace(ns)
	// Defaults from the schema.
	small, err := crs.Create(ctx, widget("small", map[string]any{"size": int64(3), "replicas": int64(1)}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if color, _, _ := unstructured.NestedString(small.Object, "spec", "color"); color != "blue" {
		t.Errorf("defaulted color %q", color)
	}
	if max, _, _ := unstructured.NestedInt64(small.Object, "spec", "maxSize"); max != 10 {
		t.Errorf("defaulted maxSize %d", max)
	}
	// Pruning: unknown fields are dropped.
	pruned, err := crs.Create(ctx, widget("pruned", map[string]any{"size": int64(1), "unknown": "x"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(pruned.Object, "spec", "unknown"); found {
		t.Error("unknown field was not pruned")
	}

	// Schema violation: 422 naming the field.
	_, err = crs.Create(ctx, widget("bad-type", map[string]any{"size": "big"}), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"`) {
		t.Errorf("schema violation: %v", err)
	}
	// CEL rule: 422 with the rule's message.
	_, err = crs.Create(ctx, widget("too-big", map[string]any{"size": int64(11)}), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `Widget.example.com "too-big" is invalid: spec: Invalid value: size must not exceed maxSize`) {
		t.Errorf("CEL violation: %v", err)
	}

	// The status subresource ignores spec changes, the main resource ignores status.
	small.Object["status"] = map[string]any{"phase": "Ready", "replicas": int64(1)}
	_ = unstructured.SetNestedField(small.Object, "red", "spec", "color")
	updated, err := crs.UpdateStatus(ctx, small, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if phase, _, _ := unstructured.NestedString(updated.Object, "status", "phase"); phase != "Ready" {
		t.Errorf("status phase %q", phase)
	}
	if color, _, _ := unstructured.NestedString(updated.Object, "spec", "color"); color != "blue" {
		t.Errorf("status update changed spec.color to %q", color)
	}
	// Scale subresource.
	scale, err := crs.Get(ctx, "small", metav1.GetOptions{}, "scale")
	if err != nil {
		t.Fatal(err)
	}
	if replicas, _, _ := unstructured.NestedInt64(scale.Object, "spec", "replicas"); scale.GetKind() != "Scale" || replicas != 1 {
		t.Errorf("scale: %v", scale.Object)
	}

	// Field selectors: metadata.name and a selectable field.
	if _, err := crs.Create(ctx, widget("green", map[string]any{"color": "green", "size": int64(1)}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for selector, want := range map[string]string{"metadata.name=small": "small", "spec.color=green": "green", "spec.color!=green": "pruned,small"} {
		l, err := crs.List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			t.Errorf("%s: %v", selector, err)
			continue
		}
		var got []string
		for _, item := range l.Items {
			got = append(got, item.GetName())
		}
		if strings.Join(got, ",") != want {
			t.Errorf("field selector %s: %v, want %s", selector, got, want)
		}
	}
	if _, err := crs.List(ctx, metav1.ListOptions{FieldSelector: "spec.size=1"}); !apierrors.IsBadRequest(err) {
		t.Errorf("selector on a field that is not selectable: %v", err)
	}

	// The second version is served with the None conversion strategy.
	v1beta1 := schema.GroupVersionResource{Group: "example.com", Version: "v1beta1", Resource: "widgets"}
	old, err := dyn.Resource(v1beta1).Namespace(ns).Get(ctx, "small", metav1.GetOptions{})
	if err != nil || old.GetAPIVersion() != "example.com/v1beta1" {
		t.Errorf("v1beta1: %v %v", err, old)
	}

	// kubectl: columns, api-resources, explain.
	out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "get", "widgets")
	if err != nil || !regexp.MustCompile(`NAME\s+COLOR\s+SIZE\n`).MatchString(out) || !regexp.MustCompile(`green\s+green\s+1\s+`).MatchString(out) {
		t.Errorf("kubectl get widgets: %v\n%s", err, out)
	}
	for name, bin := range kubectls(t) {
		out, err = shared.kubectl(t, bin, "", "api-resources", "--api-group", "example.com")
		if err != nil || !regexp.MustCompile(`widgets\s+wd\s+example.com/v1\s+true\s+Widget`).MatchString(out) {
			t.Errorf("%s api-resources: %v\n%s", name, err, out)
		}
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "explain", "widgets.spec"); err != nil || !strings.Contains(out, "maxSize") {
		t.Errorf("kubectl explain widgets.spec: %v\n%s", err, out)
	}
	// Server-side apply of a custom resource with kubectl (it needs the
	// CRD's schema in OpenAPI v3 at once).
	applied := "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: applied\nspec:\n  size: 2\n"
	if out, err := shared.kubectl(t, kubectlBin, applied, "-n", ns, "apply", "--server-side", "-f", "-"); err != nil || !strings.Contains(out, "widget.example.com/applied serverside-applied") {
		t.Errorf("kubectl apply --server-side widget: %v\n%s", err, out)
	}
	// The CRD's schema in OpenAPI v2 as well (merged by upstream's CRD
	// OpenAPI controller into the server's document).
	client, err := rest.HTTPClientFor(shared.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		code, body := get(t, client, shared.restConfig(t).Host+"/openapi/v2", "application/json")
		return code == 200 && strings.Contains(string(body), `"com.example.v1.Widget"`), nil
	}); err != nil {
		t.Errorf("OpenAPI v2 lacks com.example.v1.Widget: %v", err)
	}

	// client-go discovery and a deferred RESTMapper.
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Discovery()))
	mapping, err := mapper.RESTMapping(schema.GroupKind{Group: "example.com", Kind: "Widget"}, "v1")
	if err != nil || mapping.Resource != widgets {
		t.Errorf("REST mapping: %v %v", mapping, err)
	}
	groups, err := c.Discovery().ServerGroups()
	found := false
	for _, g := range groups.Groups {
		if g.Name == "example.com" && g.PreferredVersion.Version == "v1" && len(g.Versions) == 2 {
			found = true
		}
	}
	if err != nil || !found {
		t.Errorf("legacy /apis lacks example.com with v1 preferred: %v %+v", err, groups)
	}

	// Deleting the CRD deletes its custom resources.
	if err := ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, "widgets.example.com", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(ctx2 context.Context) (bool, error) {
		_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx2, "widgets.example.com", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("CRD not deleted: %v", err)
	}
	if out, err := shared.kubectl(t, kubectlBin, widgetCRD, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, true, func(ctx2 context.Context) (bool, error) {
		l, err := crs.List(ctx2, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		if len(l.Items) != 0 {
			t.Fatalf("custom resources survived their CRD: %d", len(l.Items))
		}
		return true, nil
	}); err != nil {
		t.Errorf("recreated CRD not served: %v", err)
	}
}

func TestInvalidCRDs(t *testing.T) {
	ext := apiextensionsclient.NewForConfigOrDie(shared.restConfig(t))
	ctx := ctxFor(t)
	base := func() *apiextensionsv1.CustomResourceDefinition {
		return &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "things.example.org"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "example.org", Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "Thing", ListKind: "ThingList", Plural: "things", Singular: "thing"},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}},
				}},
			},
		}
	}
	nonStructural := base()
	nonStructural.Spec.Versions[0].Schema.OpenAPIV3Schema = &apiextensionsv1.JSONSchemaProps{
		Type:       "object",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": {Description: "no type"}},
	}
	_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, nonStructural, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields") {
		t.Errorf("non-structural schema: %v", err)
	}
	badName := base()
	badName.Name = "wrong.example.org"
	_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, badName, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `metadata.name: Invalid value: "wrong.example.org": must be spec.names.plural+"."+spec.group`) {
		t.Errorf("bad name: %v", err)
	}
}

// HTTPRoute with the gateway-api Go types, through the dynamic client.
func TestHTTPRoute(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	ns := newNamespace(t, c)
	routes := shared.dynamic(t).Resource(gatewayv1.SchemeGroupVersion.WithResource("httproutes")).Namespace(ns)
	toUnstructured := func(route *gatewayv1.HTTPRoute) *unstructured.Unstructured {
		route.APIVersion, route.Kind = gatewayv1.SchemeGroupVersion.String(), "HTTPRoute"
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(route)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: obj}
	}
	prefix := gatewayv1.PathMatchPathPrefix
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gateway"}}},
			Hostnames:       []gatewayv1.Hostname{"web.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches:     []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: &prefix, Value: ptr.To("/")}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: ptr.To[gatewayv1.PortNumber](80)}}}},
			}},
		},
	}
	created, err := routes.Create(ctx, toUnstructured(route), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var back gatewayv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(created.Object, &back); err != nil {
		t.Fatal(err)
	}
	// Schema defaults of the Gateway API CRD (parentRef group and kind, backendRef kind, weight).
	pr := back.Spec.ParentRefs[0]
	br := back.Spec.Rules[0].BackendRefs[0]
	if ptr.Deref(pr.Group, "") != gatewayv1.GroupName || ptr.Deref(pr.Kind, "") != "Gateway" ||
		ptr.Deref(br.Kind, "") != "Service" || ptr.Deref(br.Weight, 0) != 1 {
		t.Errorf("HTTPRoute defaults: parentRef %+v backendRef %+v", pr, br)
	}
	if _, err := routes.Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if l, err := routes.List(ctx, metav1.ListOptions{LabelSelector: "app=web"}); err != nil || len(l.Items) != 1 {
		t.Errorf("list: %v %v", err, l)
	}

	// A Gateway API CEL rule: a path match value must start with "/".
	bad := route.DeepCopy()
	bad.Name = "bad"
	bad.Spec.Rules[0].Matches[0].Path.Value = ptr.To("no-slash")
	_, err = routes.Create(ctx, toUnstructured(bad), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']") {
		t.Errorf("CEL rule not enforced: %v", err)
	}

	if err := routes.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := routes.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: %v", err)
	}

	// The same with kubectl.
	manifest := "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: kubectl-route\nspec:\n  parentRefs:\n  - name: gateway\n  hostnames: [kubectl.example.com]\n"
	for _, args := range [][]string{{"apply", "-f", "-"}, {"get", "httproutes"}, {"delete", "httproute", "kubectl-route"}} {
		out, err := shared.kubectl(t, kubectlBin, manifest, append([]string{"-n", ns}, args...)...)
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		if args[0] == "get" && !regexp.MustCompile(`kubectl-route\s+\["kubectl.example.com"\]`).MatchString(out) {
			t.Errorf("kubectl get httproutes:\n%s", out)
		}
	}
}

// --crds installs manifests before ready; --gateway-api=false leaves
// Gateway API out.
func TestPreloadedCRDs(t *testing.T) {
	dir := t.TempDir()
	manifests := filepath.Join(dir, "crds")
	if err := os.Mkdir(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	// Two documents in one file, one of them not a CRD (skipped, as envtest does).
	if err := os.WriteFile(filepath.Join(manifests, "widgets.yaml"), []byte("# widgets\n---\n"+widgetCRD+"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ignored\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startTestServer(t, "--crds", manifests, "--gateway-api=false")
	// Served the moment the server is ready.
	if _, err := s.dynamic(t).Resource(widgets).Namespace("default").List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("preloaded CRD not served at ready: %v", err)
	}
	groups, err := s.client(t).Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups {
		if g.Name == gatewayv1.GroupName {
			t.Error("Gateway API installed despite --gateway-api=false")
		}
	}
}

func TestBadCRDManifest(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	content := "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: a.example.com\n---\n# second\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: [unclosed\n"
	if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runCLI(t, "serve", "--port", "0", "--state-dir", filepath.Join(dir, "state"), "--crds", bad)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "mockernetes: "+bad+":10: ") {
		t.Errorf("bad manifest: exit %d, stderr %q; want exit 1 and one line naming %s:10", code, stderr, bad)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "kubeconfig")); !os.IsNotExist(err) {
		t.Errorf("a kubeconfig was written before the manifest error: %v", err)
	}
}
