package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// readyWithConfig runs a server for the test (two minutes at most), waits
// until it is ready, and returns its config too.
func readyWithConfig(t *testing.T) (context.Context, *Server, *Config, *rest.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	srv, cfg, rc := runServer(t, ctx)
	if err := srv.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx, srv, cfg, rc
}

// webDeployment is a Deployment of 3 with quantities in its pods'
// resources, which encoders format lazily.
func webDeployment(labels map[string]string) *appsv1.Deployment {
	replicas := int32(3)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx",
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.5"), corev1.ResourceMemory: resource.MustParse("1.5Gi")},
						Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2000M")},
					}}}}}},
	}
}

// The server's store hands listed objects to the registries read-only
// (storage.Options.ReadOnlyLists), as kube-apiserver's watch cache does.
// This LISTs every kind of object, through every representation a client
// can ask for, and then checks that no cached object in the store changed:
// nothing between the store and the wire writes to listed objects.
func TestListsLeaveStoreIntact(t *testing.T) {
	ctx, _, cfg, rc := readyWithConfig(t)
	cs := kubernetes.NewForConfigOrDie(rc)
	dyn := dynamic.NewForConfigOrDie(rc)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Objects of the kinds whose registries decorate what they read, and
	// Pods with quantities, which encoders format lazily.
	labels := map[string]string{"app": "web"}
	must(cs.AppsV1().Deployments("default").Create(ctx, webDeployment(labels), metav1.CreateOptions{}))
	for _, svc := range []corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels}, Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "headless"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "external"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "nodeport"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}},
	} {
		must(cs.CoreV1().Services("default").Create(ctx, &svc, metav1.CreateOptions{}))
	}
	claim := func(name string, source *corev1.TypedLocalObjectReference) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, DataSource: source,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	}
	must(cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim("data", nil), metav1.CreateOptions{}))
	must(cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim("clone", &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "data"}), metav1.CreateOptions{}))
	must(dyn.Resource(schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}).Namespace("default").Create(ctx,
		&unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
			"metadata": map[string]any{"name": "web", "labels": map[string]any{"app": "web"}},
			"spec":     map[string]any{"rules": []any{map[string]any{"backendRefs": []any{map[string]any{"name": "web", "port": int64(80)}}}}},
		}}, metav1.CreateOptions{}))
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(l.Items) != 3 {
			return false, nil
		}
		for _, p := range l.Items {
			if len(p.Status.ContainerStatuses) == 0 || !p.Status.ContainerStatuses[0].Ready {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("deployment pods not ready: %v", err)
	}

	paths := []string{
		"/api/v1/pods", "/api/v1/services", "/api/v1/persistentvolumeclaims", "/api/v1/configmaps",
		"/api/v1/events", "/api/v1/nodes", "/api/v1/namespaces", "/api/v1/serviceaccounts", "/api/v1/endpoints",
		"/apis/apps/v1/deployments", "/apis/apps/v1/replicasets", "/apis/events.k8s.io/v1/events",
		"/apis/discovery.k8s.io/v1/endpointslices", "/apis/coordination.k8s.io/v1/leases",
		"/apis/rbac.authorization.k8s.io/v1/clusterroles", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
		"/apis/gateway.networking.k8s.io/v1/httproutes", "/apis/gateway.networking.k8s.io/v1beta1/httproutes",
	}
	accepts := []string{
		"application/json",
		"application/vnd.kubernetes.protobuf, application/json",
		"application/json;as=Table;v=v1;g=meta.k8s.io",
		"application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
		"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io, application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
		"application/yaml",
	}
	queries := []map[string]string{{}, {"limit": "2"}, {"labelSelector": "app=web"}, {"labelSelector": "app!=web", "limit": "1"}, {"resourceVersion": "0"}}
	// Concurrently, so that encoders share listed objects as they do when
	// several clients list at once (go test -race watches them).
	var requests atomic.Int64
	listAll := func(path string) error {
		for _, accept := range accepts {
			for _, q := range queries {
				req := cs.CoreV1().RESTClient().Get().AbsPath(path).SetHeader("Accept", accept)
				for k, v := range q {
					req = req.Param(k, v)
				}
				body, err := req.DoRaw(ctx)
				if err != nil {
					return fmt.Errorf("GET %s %v as %q: %v", path, q, accept, err)
				}
				requests.Add(1)
				if len(body) == 0 || strings.HasPrefix(accept, "application/json") && !strings.Contains(string(body), `"resourceVersion"`) {
					return fmt.Errorf("GET %s %v as %q: unexpected body %.200s", path, q, accept, body)
				}
			}
		}
		return nil
	}
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() { errs[i] = listAll(path) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	// The typed clients as controllers and tests use them. A kubelet's LIST
	// of its node's pods is served from the field index the pod registry
	// declares, as the watch cache serves it.
	for prefix, want := range map[string]string{"/registry/pods/": "spec.nodeName", "/registry/resourceslices/": "spec.nodeName"} {
		if got := strings.Join(cfg.Backend.IndexedFields(prefix), ","); got != want {
			t.Errorf("fields indexed under %s: %q, want %q", prefix, got, want)
		}
	}
	for selector, want := range map[string]int{"spec.nodeName=node-1": 3, "spec.nodeName=node-1,metadata.namespace=default": 3, "spec.nodeName=node-9": 0, "spec.nodeName=": 0} {
		l, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: selector, LabelSelector: "app=web"})
		if err != nil || len(l.Items) != want {
			t.Errorf("pods with %s: %v, err %v; want %d", selector, l, err, want)
		}
	}
	must(cs.CoreV1().Services("default").List(ctx, metav1.ListOptions{}))
	must(cs.CoreV1().PersistentVolumeClaims("default").List(ctx, metav1.ListOptions{}))
	must(cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}))

	if err := cfg.Backend.VerifyCache(); err != nil {
		t.Fatalf("after %d LISTs: %v", requests.Load(), err)
	}
}

// JSON and protobuf LISTs of built-in kinds are written from the encodings
// kept of each object version (pkg/listcache). What a client reads must be
// what the store holds at the list's revision: the same objects as the
// YAML LIST at that revision (encoded by upstream, no cache), after
// updates, deletions and re-creations under the same names.
func TestListsFromCache(t *testing.T) {
	ctx, srv, cfg, rc := readyWithConfig(t)
	cs := kubernetes.NewForConfigOrDie(rc)
	protoConfig := rest.CopyConfig(rc)
	protoConfig.ContentType = "application/vnd.kubernetes.protobuf"
	protoConfig.AcceptContentTypes = "application/vnd.kubernetes.protobuf"
	protoClient := kubernetes.NewForConfigOrDie(protoConfig)
	labels := map[string]string{"app": "web"}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, webDeployment(labels), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: labels},
			Data:       map[string]string{"i": fmt.Sprint(i)},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Settle(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}

	// check lists every kind as JSON twice and as protobuf at the first
	// JSON list's revision, and compares what the three hold.
	check := func(step string) {
		t.Helper()
		type kind struct {
			path  string
			proto func(opts metav1.ListOptions) (runtime.Object, error)
			json  func() runtime.Object
		}
		kinds := []kind{
			{"/api/v1/namespaces/default/configmaps", func(o metav1.ListOptions) (runtime.Object, error) {
				return protoClient.CoreV1().ConfigMaps("default").List(ctx, o)
			}, func() runtime.Object { return &corev1.ConfigMapList{} }},
			{"/api/v1/pods", func(o metav1.ListOptions) (runtime.Object, error) { return protoClient.CoreV1().Pods("").List(ctx, o) },
				func() runtime.Object { return &corev1.PodList{} }},
			{"/apis/apps/v1/replicasets", func(o metav1.ListOptions) (runtime.Object, error) {
				return protoClient.AppsV1().ReplicaSets("").List(ctx, o)
			}, func() runtime.Object { return &appsv1.ReplicaSetList{} }},
			{"/api/v1/events", func(o metav1.ListOptions) (runtime.Object, error) {
				return protoClient.CoreV1().Events("").List(ctx, o)
			},
				func() runtime.Object { return &corev1.EventList{} }},
			{"/api/v1/nodes", func(o metav1.ListOptions) (runtime.Object, error) { return protoClient.CoreV1().Nodes().List(ctx, o) },
				func() runtime.Object { return &corev1.NodeList{} }},
		}
		for _, k := range kinds {
			first, err := cs.CoreV1().RESTClient().Get().AbsPath(k.path).SetHeader("Accept", "application/json").DoRaw(ctx)
			if err != nil {
				t.Fatalf("%s: %s: %v", step, k.path, err)
			}
			fromJSON := k.json()
			if err := json.Unmarshal(first, fromJSON); err != nil {
				t.Fatalf("%s: %s: %v", step, k.path, err)
			}
			rv := fromJSON.(metav1.ListInterface).GetResourceVersion()
			again, err := cs.CoreV1().RESTClient().Get().AbsPath(k.path).Param("resourceVersion", rv).Param("resourceVersionMatch", "Exact").
				SetHeader("Accept", "application/json").DoRaw(ctx)
			if err != nil {
				t.Fatalf("%s: %s: %v", step, k.path, err)
			}
			if !bytes.Equal(first, again) {
				t.Errorf("%s: %s: two JSON LISTs at revision %s differ:\n%s\n%s", step, k.path, rv, first, again)
			}
			fromProto, err := k.proto(metav1.ListOptions{ResourceVersion: rv, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
			if err != nil {
				t.Fatalf("%s: %s: %v", step, k.path, err)
			}
			// YAML is encoded by upstream alone (not cached).
			asYAML, err := cs.CoreV1().RESTClient().Get().AbsPath(k.path).Param("resourceVersion", rv).Param("resourceVersionMatch", "Exact").
				SetHeader("Accept", "application/yaml").DoRaw(ctx)
			if err != nil {
				t.Fatalf("%s: %s: %v", step, k.path, err)
			}
			fromYAML := k.json()
			if err := yaml.Unmarshal(asYAML, fromYAML); err != nil {
				t.Fatalf("%s: %s: %v", step, k.path, err)
			}
			for _, l := range []runtime.Object{fromProto, fromJSON, fromYAML} {
				l.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
			}
			if !apiequality.Semantic.DeepEqual(fromJSON, fromYAML) {
				t.Errorf("%s: %s at revision %s: the JSON LIST and the YAML LIST differ:\n%s", step, k.path, rv, cmp.Diff(fromYAML, fromJSON))
			}
			if !apiequality.Semantic.DeepEqual(fromProto, fromYAML) {
				t.Errorf("%s: %s at revision %s: the protobuf LIST and the YAML LIST differ:\n%s", step, k.path, rv, cmp.Diff(fromYAML, fromProto))
			}
		}
	}
	check("first")
	hits, misses := cfg.Registry.ListCache.Stats()
	if hits == 0 || misses == 0 {
		t.Fatalf("list cache: %d hits, %d misses; both expected", hits, misses)
	}

	// An update, a deletion, a re-creation under the same name, a scale.
	if _, err := cs.CoreV1().ConfigMaps("default").Patch(ctx, "cm-1", types.MergePatchType, []byte(`{"data":{"i":"updated"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, "cm-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, "cm-3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-3"}, Data: map[string]string{"i": "again"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments("default").Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Settle(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	check("after changes")
	l, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, cm := range l.Items {
		got[cm.Name] = cm.Data["i"]
	}
	if len(l.Items) != 28 || got["cm-1"] != "updated" || got["cm-5"] != "5" {
		t.Errorf("config maps listed after the changes: %v", got)
	}
	all, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range all.Items {
		if cm.Name == "cm-2" {
			t.Error("deleted cm-2 listed")
		}
		if cm.Name == "cm-3" && cm.Data["i"] != "again" {
			t.Errorf("cm-3 listed as %v, want its new version", cm.Data)
		}
	}
	if h, _ := cfg.Registry.ListCache.Stats(); h <= hits {
		t.Errorf("no LIST after the changes came from the cache (%d hits before, %d after)", hits, h)
	}
}
