package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a namespace of the test's own.
func newNamespace(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	name := "e2e-" + rand.String(8)
	if _, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

func pod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
}

func names[T any](items []T, name func(*T) string) []string {
	var out []string
	for i := range items {
		out = append(out, name(&items[i]))
	}
	sort.Strings(out)
	return out
}

func podNames(l *corev1.PodList) string {
	return strings.Join(names(l.Items, func(p *corev1.Pod) string { return p.Name }), ",")
}

func TestCRUDAndSelectors(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	ns := newNamespace(t, c)
	pods := c.CoreV1().Pods(ns)

	// Pods that differ in every field a pod field selector can match.
	// Pods on nodes that do not exist and for a scheduler that does not
	// run, so that neither the scheduler nor the kubelet touches them.
	a := pod("a", map[string]string{"app": "web", "tier": "front"})
	a.Spec.NodeName = "node-a"
	a.Spec.RestartPolicy = corev1.RestartPolicyNever
	b := pod("b", map[string]string{"app": "web", "tier": "back"})
	b.Spec.NodeName = "node-b"
	b.Spec.SchedulerName = "custom-scheduler"
	b.Spec.HostNetwork = true
	b.Spec.ServiceAccountName = "robot"
	cp := pod("c", map[string]string{"app": "db"})
	cp.Spec.SchedulerName = "custom-scheduler"
	// ServiceAccount admission (on, as the serviceaccount controller runs)
	// wants the pod's service account to exist.
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{a, b, cp} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", p.Name, err)
		}
	}
	got, err := pods.Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Status.Phase = corev1.PodRunning
	got.Status.PodIP = "10.244.0.7"
	got.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.7"}}
	if _, err := pods.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Only an unbound pod may carry a nominated node.
	got, err = pods.Get(ctx, "c", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Status.NominatedNodeName = "node-3"
	if _, err := pods.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ label, field, want string }{
		{label: "app=web", want: "a,b"},
		{label: "app in (web,db),tier!=front", want: "b,c"},
		{label: "tier", want: "a,b"},
		{label: "!tier", want: "c"},
		{field: "metadata.name=a", want: "a"},
		{field: "metadata.namespace=" + ns, want: "a,b,c"},
		{field: "spec.nodeName=node-b", want: "b"},
		{field: "spec.nodeName=", want: "c"},
		{field: "spec.nodeName!=node-a", want: "b,c"},
		{field: "spec.restartPolicy=Never", want: "a"},
		{field: "spec.schedulerName=custom-scheduler", want: "b,c"},
		{field: "spec.schedulerName=default-scheduler", want: "a"},
		{field: "spec.serviceAccountName=robot", want: "b"},
		{field: "spec.hostNetwork=true", want: "b"},
		{field: "status.phase=Running", want: "b"},
		{field: "status.phase=Pending", want: "a,c"},
		{field: "status.podIP=10.244.0.7", want: "b"},
		{field: "status.nominatedNodeName=node-3", want: "c"},
		{label: "app=web", field: "status.phase!=Running", want: "a"},
	} {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: tc.label, FieldSelector: tc.field})
		if err != nil {
			t.Errorf("list label=%q field=%q: %v", tc.label, tc.field, err)
			continue
		}
		if got := podNames(l); got != tc.want {
			t.Errorf("list label=%q field=%q = %q, want %q", tc.label, tc.field, got, tc.want)
		}
	}

	// An unknown field label is refused as kube-apiserver refuses it.
	_, err = pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.image=nginx"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `field label not supported: spec.image`) {
		t.Errorf("unsupported field selector: %v", err)
	}

	// Field labels of other resources.
	secrets := c.CoreV1().Secrets(ns)
	for name, typ := range map[string]corev1.SecretType{"s1": corev1.SecretTypeOpaque, "s2": corev1.SecretTypeDockerConfigJson} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Type: typ}
		if typ == corev1.SecretTypeDockerConfigJson {
			s.Data = map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sl, err := secrets.List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeDockerConfigJson)})
	if err != nil || len(sl.Items) != 1 || sl.Items[0].Name != "s2" {
		t.Errorf("secrets by type: %v %v", err, sl)
	}
	nsl, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ns + ",status.phase=Active"})
	if err != nil || len(nsl.Items) != 1 {
		t.Errorf("namespaces by name and phase: %v %v", err, nsl)
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "e1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "a", Namespace: ns},
		Reason:         "Testing", Type: corev1.EventTypeNormal, Message: "m",
	}
	if _, err := c.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	el, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,involvedObject.name=a,reason=Testing,type=Normal"})
	if err != nil || len(el.Items) != 1 {
		t.Errorf("events by involved object: %v %v", err, el)
	}

	// Delete and deletecollection. Pods bound to a node are deleted
	// gracefully (the kubelet would confirm); grace period 0 deletes them
	// at once, as on a real cluster.
	if err := pods.Delete(ctx, "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "c", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=web"}); err != nil {
		t.Fatal(err)
	}
	l, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 2 || l.Items[0].DeletionTimestamp == nil || ptr.Deref(l.Items[0].DeletionGracePeriodSeconds, 0) != 30 {
		t.Fatalf("bound pods after graceful deletecollection: %v %v", err, l)
	}
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{LabelSelector: "app=web"}); err != nil {
		t.Fatal(err)
	}
	if l, err := pods.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("after deletecollection: %v %v", err, l)
	}
}

func TestConflictAndPatches(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	ns := newNamespace(t, c)
	cms := c.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale := cm.DeepCopy()
	cm.Data["a"] = "2"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale.Data["a"] = "3"
	_, err = cms.Update(ctx, stale, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale update: got %v, want 409 Conflict", err)
	}
	want := `Operation cannot be fulfilled on configmaps "cfg": the object has been modified; please apply your changes to the latest version and try again`
	if err.Error() != want {
		t.Errorf("conflict message %q, want %q", err.Error(), want)
	}

	for _, p := range []struct {
		typ   types.PatchType
		patch string
		key   string
	}{
		{types.JSONPatchType, `[{"op":"add","path":"/data/json","value":"j"}]`, "json"},
		{types.MergePatchType, `{"data":{"merge":"m"}}`, "merge"},
		{types.StrategicMergePatchType, `{"data":{"strategic":"s"}}`, "strategic"},
	} {
		out, err := cms.Patch(ctx, "cfg", p.typ, []byte(p.patch), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("%s: %v", p.typ, err)
		}
		if out.Data[p.key] == "" {
			t.Errorf("%s: key %q missing: %v", p.typ, p.key, out.Data)
		}
	}
	// A JSON patch that tests a wrong value fails as upstream: 422.
	_, err = cms.Patch(ctx, "cfg", types.JSONPatchType, []byte(`[{"op":"test","path":"/data/a","value":"nope"}]`), metav1.PatchOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("failed JSON patch test op: %v", err)
	}

	// Server-side apply: two managers, one field, a conflict, then force.
	apply := func(manager, value string, force bool) error {
		ac := corev1ac.ConfigMap("owned", ns).WithData(map[string]string{"shared": value})
		_, err := cms.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: manager, Force: force})
		return err
	}
	if err := apply("alice", "1", false); err != nil {
		t.Fatal(err)
	}
	err = apply("bob", "2", false)
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `conflict with "alice"`) || !strings.Contains(err.Error(), ".data.shared") {
		t.Fatalf("apply conflict: %v", err)
	}
	if err := apply("bob", "2", true); err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	owned, err := cms.Get(ctx, "owned", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if owned.Data["shared"] != "2" || len(owned.ManagedFields) != 1 || owned.ManagedFields[0].Manager != "bob" {
		t.Errorf("after forced apply: data %v managers %+v", owned.Data, owned.ManagedFields)
	}
	// Apply as a raw patch type too (application/apply-patch+yaml).
	if _, err := cms.Patch(ctx, "owned", types.ApplyYAMLPatchType, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\ndata:\n  other: x\n"), metav1.PatchOptions{FieldManager: "carol"}); err != nil {
		t.Errorf("apply patch: %v", err)
	}

	// Dry run leaves nothing behind.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dry-run create persisted: %v", err)
	}
}

func TestPaginationAndWatch(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	ns := newNamespace(t, c)
	cms := c.CoreV1().ConfigMaps(ns)
	// The root-CA publisher puts kube-root-ca.crt in every namespace; the
	// pages are of the test's own ConfigMaps.
	for i := range 25 {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i), Labels: map[string]string{"page": "yes"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	opts := metav1.ListOptions{Limit: 10, LabelSelector: "page=yes"}
	pages := 0
	for {
		l, err := cms.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, cm := range l.Items {
			seen = append(seen, cm.Name)
		}
		if l.RemainingItemCount != nil {
			t.Errorf("remainingItemCount %d with a label selector (etcd3 gives none)", *l.RemainingItemCount)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if pages != 3 || len(seen) != 25 || seen[0] != "cm-00" || seen[24] != "cm-24" {
		t.Errorf("pages=%d items=%d (%v)", pages, len(seen), seen)
	}
	// Without a selector a page says how many items remain.
	all, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := cms.List(ctx, metav1.ListOptions{Limit: 10})
	if err != nil || first.RemainingItemCount == nil || *first.RemainingItemCount != int64(len(all.Items)-10) {
		t.Errorf("remainingItemCount %v of %d items: %v", first.RemainingItemCount, len(all.Items), err)
	}
	_, err = cms.List(ctx, metav1.ListOptions{Limit: 10, Continue: "garbage"})
	if !apierrors.IsBadRequest(err) {
		t.Errorf("bad continue token: %v", err)
	}

	// Watch from a resourceVersion: sees exactly the changes after it.
	l, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "new"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Patch(ctx, "new", types.MergePatchType, []byte(`{"data":{"k":"v"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "cm-00", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var events []string
	for len(events) < 3 {
		select {
		case ev := <-w.ResultChan():
			events = append(events, fmt.Sprintf("%s %s", ev.Type, ev.Object.(*corev1.ConfigMap).Name))
		case <-time.After(30 * time.Second):
			t.Fatalf("watch: got %v before timing out", events)
		}
	}
	if want := "ADDED new,MODIFIED new,DELETED cm-00"; strings.Join(events, ",") != want {
		t.Errorf("watch events %v, want %s", events, want)
	}
}

func TestInformer(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	ns := newNamespace(t, c)
	factory := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().ConfigMaps().Informer()
	events := make(chan string, 100)
	mine := func(obj any) bool { cm, ok := obj.(*corev1.ConfigMap); return ok && cm.Name == "x" }
	if _, err := inf.AddEventHandler(cache.FilteringResourceEventHandler{FilterFunc: mine, Handler: cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { events <- "add " + obj.(*corev1.ConfigMap).Name },
		UpdateFunc: func(_, obj any) { events <- "update " + obj.(*corev1.ConfigMap).Data["k"] },
		DeleteFunc: func(obj any) { events <- "delete" },
	}}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	defer factory.Shutdown()
	defer close(stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	cms := c.CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Patch(ctx, "x", types.MergePatchType, []byte(`{"data":{"k":"v"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "x", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case e := <-events:
			got = append(got, e)
		case <-time.After(30 * time.Second):
			t.Fatalf("informer saw only %v", got)
		}
	}
	if strings.Join(got, ",") != "add x,update v,delete" {
		t.Errorf("informer events %v", got)
	}
}

// A watch-list (streaming list) as client-go informers use it.
func TestWatchList(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	ns := newNamespace(t, c)
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "one"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	yes := true
	w, err := c.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{
		SendInitialEvents: &yes, AllowWatchBookmarks: true,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var added []string
	for {
		select {
		case ev := <-w.ResultChan():
			switch ev.Type {
			case watch.Added:
				added = append(added, ev.Object.(*corev1.ConfigMap).Name)
			case watch.Bookmark:
				m, _ := json.Marshal(ev.Object.(*corev1.ConfigMap).Annotations)
				if !strings.Contains(string(m), metav1.InitialEventsAnnotationKey) {
					t.Fatalf("bookmark without the initial-events-end annotation: %s", m)
				}
				if strings.Join(added, ",") != "kube-root-ca.crt,one" && strings.Join(added, ",") != "one" {
					t.Errorf("initial events %v", added)
				}
				return
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no initial-events-end bookmark; saw %v", added)
		}
	}
}
