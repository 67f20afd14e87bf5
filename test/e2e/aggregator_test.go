package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorclient "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"
)

// The groups of the legacy /apis list of kube-apiserver 1.37.2 with its
// default group versions, in its order (the aggregator's group priorities).
var defaultAPIGroupOrder = []string{
	"apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch",
	"certificates.k8s.io", "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
	"apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io", "discovery.k8s.io", "resource.k8s.io",
	"flowcontrol.apiserver.k8s.io", "storagemigration.k8s.io",
}

// crdGroupVersions are the served group versions of the cluster's CRDs.
func crdGroupVersions(t *testing.T, cfg *rest.Config) []string {
	t.Helper()
	crds, err := apiextensionsclient.NewForConfigOrDie(cfg).ApiextensionsV1().CustomResourceDefinitions().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var gvs []string
	for _, crd := range crds.Items {
		for _, v := range crd.Spec.Versions {
			if v.Served && !slices.Contains(gvs, crd.Spec.Group+"/"+v.Name) {
				gvs = append(gvs, crd.Spec.Group+"/"+v.Name)
			}
		}
	}
	return gvs
}

// The chain kube-apiserver builds: the aggregator lists every local group
// version as an APIService, answers kubectl api-versions and the legacy
// /apis list as kube-apiserver does, and componentstatuses reports on the
// in-process components. Its own server: other tests add CRDs.
func TestAggregatorLocalAPIServices(t *testing.T) {
	s := startTestServer(t)
	cfg := s.restConfig(t)
	crdGVs := crdGroupVersions(t, cfg)
	if len(crdGVs) == 0 {
		t.Fatal("no CRD group versions (the Gateway API CRDs are preloaded)")
	}

	// kubectl api-versions: the built-in group versions, apiregistration's
	// among them, and the CRDs'.
	out, err := s.kubectl(t, kubectlBin, "", "api-versions")
	if err != nil {
		t.Fatalf("kubectl api-versions: %v: %s", err, out)
	}
	want := append(slices.Clone(defaultGroupVersions), crdGVs...)
	sort.Strings(want)
	if got := strings.Fields(out); !slices.Equal(got, want) {
		t.Errorf("kubectl api-versions:\n got %v\nwant %v", got, want)
	}

	// The legacy group list, which older clients and the Python client's
	// DynamicClient read: every group, in kube-apiserver's order, the CRD
	// groups after the built-in ones.
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, client, cfg.Host+"/apis", "application/json")
	var groups metav1.APIGroupList
	if err := json.Unmarshal(body, &groups); code != http.StatusOK || err != nil {
		t.Fatalf("/apis: %d %v %.200s", code, err, body)
	}
	var names []string
	for _, g := range groups.Groups {
		names = append(names, g.Name)
	}
	if len(names) < len(defaultAPIGroupOrder) || !slices.Equal(names[:len(defaultAPIGroupOrder)], defaultAPIGroupOrder) {
		t.Errorf("/apis groups:\n got %v\nwant %v, then the CRD groups", names, defaultAPIGroupOrder)
	}
	if !slices.Contains(names, "gateway.networking.k8s.io") {
		t.Errorf("/apis lacks the CRD group gateway.networking.k8s.io: %v", names)
	}

	// kubectl get apiservices: one Local APIService per group version,
	// Available.
	agg := aggregatorclient.NewForConfigOrDie(cfg)
	list, err := agg.ApiregistrationV1().APIServices().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var apiServices []string
	for _, a := range list.Items {
		apiServices = append(apiServices, a.Name)
		if a.Spec.Service != nil {
			t.Errorf("APIService %s has a service", a.Name)
		}
		if !available(&a) {
			t.Errorf("APIService %s not Available: %+v", a.Name, a.Status.Conditions)
		}
	}
	var wantServices []string
	for _, gv := range want {
		group, version, found := strings.Cut(gv, "/")
		if !found {
			group, version = "", gv
		}
		if group == "apiregistration.k8s.io" {
			continue // the aggregator's own group has no APIService
		}
		wantServices = append(wantServices, version+"."+group)
	}
	sort.Strings(apiServices)
	sort.Strings(wantServices)
	if !slices.Equal(apiServices, wantServices) {
		t.Errorf("APIServices:\n got %v\nwant %v", apiServices, wantServices)
	}
	if n := len(wantServices) - len(crdGVs); n != 22 {
		t.Errorf("%d local built-in APIServices, kube-apiserver 1.37.2 has 22", n)
	}
	out, err = s.kubectl(t, kubectlBin, "", "get", "apiservices")
	if err != nil || !strings.Contains(out, "v1.apps ") || !strings.Contains(out, "v2.autoscaling ") || !strings.Contains(out, "Local") {
		t.Errorf("kubectl get apiservices: %v\n%s", err, out)
	}

	// componentstatuses, as kube-apiserver reports them (with its
	// deprecation warning): all healthy here.
	statuses, err := s.client(t).CoreV1().ComponentStatuses().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	health := map[string]string{}
	for _, cs := range statuses.Items {
		for _, c := range cs.Conditions {
			if c.Type == corev1.ComponentHealthy {
				health[cs.Name] = string(c.Status) + " " + c.Message + c.Error
			}
		}
	}
	wantHealth := map[string]string{"scheduler": "True ok", "controller-manager": "True ok", "etcd-0": "True ok"}
	if !maps.Equal(health, wantHealth) {
		t.Errorf("componentstatuses: %v, want %v", health, wantHealth)
	}
	out, err = s.kubectl(t, kubectlBin, "", "get", "componentstatuses")
	if err != nil || !strings.Contains(out, "ComponentStatus is deprecated") || !strings.Contains(out, "etcd-0") || !strings.Contains(out, "Healthy") {
		t.Errorf("kubectl get componentstatuses: %v\n%s", err, out)
	}
	cs, err := s.client(t).CoreV1().ComponentStatuses().Get(t.Context(), "scheduler", metav1.GetOptions{})
	if err != nil || cs.Name != "scheduler" {
		t.Errorf("get componentstatus scheduler: %v %v", cs, err)
	}
}

// A server without controllers reports its scheduler and controller
// manager unhealthy, saying why.
func TestComponentStatusesWithoutControllers(t *testing.T) {
	s := startTestServer(t, "--controllers=none", "--gateway-api=false")
	statuses, err := s.client(t).CoreV1().ComponentStatuses().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]corev1.ComponentCondition{}
	for _, cs := range statuses.Items {
		got[cs.Name] = cs.Conditions[0]
	}
	for _, name := range []string{"scheduler", "controller-manager"} {
		if c := got[name]; c.Status != corev1.ConditionFalse || !strings.Contains(c.Error, "--controllers=none") {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if c := got["etcd-0"]; c.Status != corev1.ConditionTrue {
		t.Errorf("etcd-0: %+v", c)
	}
	out, err := s.kubectl(t, kubectlBin, "", "get", "cs")
	if err != nil || !strings.Contains(out, "Unhealthy") {
		t.Errorf("kubectl get cs: %v\n%s", err, out)
	}
}

func available(a *apiregistrationv1.APIService) bool {
	for _, c := range a.Status.Conditions {
		if c.Type == apiregistrationv1.Available {
			return c.Status == apiregistrationv1.ConditionTrue
		}
	}
	return false
}

// waitAPIService waits until the APIService has an Available condition
// with the given status and returns it.
func waitAPIService(t *testing.T, agg aggregatorclient.Interface, name string, status apiregistrationv1.ConditionStatus) apiregistrationv1.APIServiceCondition {
	t.Helper()
	var last []apiregistrationv1.APIServiceCondition
	var lastErr error
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		a, err := agg.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
		if lastErr = err; err == nil {
			last = a.Status.Conditions
			for _, c := range last {
				if c.Type == apiregistrationv1.Available && c.Status == status {
					return c
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("APIService %s not Available=%s after a minute: %+v %v", name, status, last, lastErr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The server's own writes carry the field managers a cluster shows: the
// bootstrap objects and a CRD's status are kube-apiserver's, a Deployment's
// ReplicaSet kube-controller-manager's, a pod's status the kubelet's.
func TestFieldManagers(t *testing.T) {
	c := shared.client(t)
	managers := func(fields []metav1.ManagedFieldsEntry) []string {
		var names []string
		for _, f := range fields {
			names = append(names, f.Manager+"/"+string(f.Operation)+"/"+f.Subresource)
		}
		return names
	}
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		ns, err := c.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m := managers(ns.ManagedFields); len(m) == 0 || !strings.HasPrefix(m[0], "kube-apiserver/") {
			t.Errorf("namespace %s: managers %v, want kube-apiserver", name, m)
		}
	}

	// A CRD created by the test: its status comes from the server.
	crds := apiextensionsclient.NewForConfigOrDie(shared.restConfig(t)).ApiextensionsV1().CustomResourceDefinitions()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gizmos.managers.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "managers.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gizmos", Singular: "gizmo", Kind: "Gizmo", ListKind: "GizmoList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true)}}}},
		},
	}
	if _, err := crds.Create(t.Context(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = crds.Delete(context.Background(), crd.Name, metav1.DeleteOptions{}) })
	eventually(t, "CRD status by kube-apiserver", func(ctx context.Context) (bool, error) {
		got, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return slices.Contains(managers(got.ManagedFields), "kube-apiserver/Update/status"), nil
	})

	ns := newNamespace(t, c)
	if _, err := c.AppsV1().Deployments(ns).Create(t.Context(), deployment("fm", "nginx:1.27", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ReplicaSet and pod written by the controller manager and the kubelet", func(ctx context.Context) (bool, error) {
		rss, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(rss.Items) != 1 {
			return false, err
		}
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 1 {
			return false, err
		}
		rs, pod := managers(rss.Items[0].ManagedFields), managers(pods.Items[0].ManagedFields)
		return slices.Contains(rs, "kube-controller-manager/Update/") && slices.Contains(pod, "kube-controller-manager/Update/") &&
			slices.Contains(pod, "kubelet/Update/status"), nil
	})
}
