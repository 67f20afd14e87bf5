package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/crds"
	"github.com/mockernetes/mockernetes/pkg/faults"
	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "nginx"}}}}},
	}
}

func readyServer(t *testing.T, ctx context.Context, configure ...func(*Options)) (*Server, *rest.Config, kubernetes.Interface, *testcontrol.Client) {
	t.Helper()
	srv, _, rc := runServer(t, ctx, configure...)
	if err := srv.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	tc, err := testcontrol.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	return srv, rc, kubernetes.NewForConfigOrDie(rc), tc
}

// With settle-on-write, straight-line test code sees what the cluster did
// with each write: no sleeps, no polling.
func TestSettleOnWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, _, client, tc := readyServer(t, ctx, func(o *Options) { o.SettleOnWrite = true })
	ns := "default"

	d, err := client.AppsV1().Deployments(ns).Create(ctx, deployment("web", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The answer is the write's own: nothing the controllers did later.
	if d.Generation != 1 || d.Status.Replicas != 0 {
		t.Errorf("create answered with a later state: generation %d, %d replicas", d.Generation, d.Status.Replicas)
	}
	owner := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID}}
	if _, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", OwnerReferences: owner},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", OwnerReferences: owner},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if p.Status.Phase == corev1.PodRunning && c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if len(pods.Items) != 3 || ready != 3 {
		t.Errorf("right after the writes: %d pods, %d running and ready", len(pods.Items), ready)
	}
	if d, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil || d.Status.ReadyReplicas != 3 {
		t.Errorf("deployment: %v, %+v", err, d.Status)
	}
	if pvc, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{}); err != nil || pvc.Status.Phase != corev1.ClaimBound {
		t.Errorf("claim: %v, %+v", err, pvc.Status)
	}

	// Deleting the owner takes its dependents with it, by the time the
	// delete is answered.
	if err := client.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	if l, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"}); err != nil || len(l.Items) != 0 {
		t.Errorf("replica sets after the delete: %v %d", err, len(l.Items))
	}
	if l, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"}); err != nil || len(l.Items) != 0 {
		t.Errorf("pods after the delete: %v %d", err, len(l.Items))
	}
	if _, err := client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("owned service after the delete: %v", err)
	}
	if _, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("owned claim after the delete: %v", err)
	}

	// A namespace with content is gone when its delete is answered.
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppsV1().Deployments("team").Create(ctx, deployment("api", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps("team").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Namespaces().Delete(ctx, "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Get(ctx, "team", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace after its delete: %v", err)
	}

	// The switch in the admin API turns it off.
	s, err := tc.SetSettings(ctx, testcontrol.Settings{SettleOnWrite: ptr.To(false)})
	if err != nil || s.SettleOnWrite == nil || *s.SettleOnWrite {
		t.Fatalf("settings: %v %+v", err, s)
	}
	// The ReplicaSet controller's pod creates take a second, so that an
	// answer that waited for them (or a LIST after it) would show them;
	// the in-process controllers are otherwise as quick as a client's
	// next request.
	if err := tc.SetFaults(ctx, faults.Rule{Verb: "create", Resource: "pods", Namespace: ns, Internal: true, Latency: "1s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, deployment("late", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=late"}); err != nil || len(l.Items) != 0 {
		t.Errorf("without settle-on-write, the pods exist before the create is answered: %v %d", err, len(l.Items))
	}
	// Settle on its own does the same wait.
	if err := tc.Settle(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if l, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=late"}); err != nil || len(l.Items) != 2 {
		t.Errorf("after settle: %v %d pods", err, len(l.Items))
	}
	if err := tc.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
}

// A settle that cannot finish answers 504 naming what is busy; a pod
// behaviour's delay is not waited for.
func TestSettleTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, _, client, tc := readyServer(t, ctx)
	d := deployment("slow", 1)
	d.Spec.Template.Annotations = map[string]string{"mockernetes.io/start-delay": "1h"}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tc.Settle(ctx, 10*time.Second); err != nil {
		t.Fatalf("a start delay was waited for: %v", err)
	}
	// A namespace kept by a finalizer never goes: the namespace controller
	// keeps retrying.
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stuck"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps("stuck").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Namespaces().Delete(ctx, "stuck", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err := tc.Settle(ctx, 300*time.Millisecond)
	if !apierrors.IsTimeout(err) || !strings.Contains(err.Error(), "queue namespace") {
		t.Errorf("settle with a namespace that cannot go: %v", err)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Code != http.StatusGatewayTimeout {
		t.Errorf("settle time-out: %v", err)
	}
}

// Reset under running informers: they follow at once, their caches equal a
// fresh LIST, resourceVersions go on increasing, and nothing of the state
// before is simulated afterwards.
func TestReset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, _, client, tc := readyServer(t, ctx)
	factory := informers.NewSharedInformerFactory(client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	cmInformer := factory.Core().V1().ConfigMaps().Informer()
	stop := make(chan struct{})
	defer factory.Shutdown()
	defer close(stop)
	factory.Start(stop)
	factory.WaitForCacheSync(ctx.Done())
	baselineCMs, err := client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := client.AppsV1().Deployments("default").Create(ctx, deployment("web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "extra"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nodePortService := func(name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}}
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, nodePortService("np"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// kube-root-ca.crt exists at the baseline: change it.
	root, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root.Labels = map[string]string{"changed": "yes"}
	if _, err := client.CoreV1().ConfigMaps("default").Update(ctx, root, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tc.Settle(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	before, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil || len(before.Items) != 2 {
		t.Fatalf("pods before the reset: %v %d", err, len(before.Items))
	}
	if err := tc.SetFaults(ctx, faults.Rule{Verb: "get", Resource: "secrets", Code: 500}); err != nil {
		t.Fatal(err)
	}

	if err := tc.Reset(ctx, testcontrol.ResetRequest{}); err != nil {
		t.Fatal(err)
	}
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods after the reset: %v %d", err, len(pods.Items))
	}
	if rvAfter, rvBefore := atoi(pods.ResourceVersion), atoi(before.ResourceVersion); rvAfter <= rvBefore {
		t.Errorf("resourceVersion after the reset %d, before %d", rvAfter, rvBefore)
	}
	cms, err := client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil || cmNames(cms.Items) != cmNames(baselineCMs.Items) {
		t.Errorf("config maps after the reset: %v\n%s\nwant\n%s", err, cmNames(cms.Items), cmNames(baselineCMs.Items))
	}
	if root, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil || root.Labels["changed"] != "" {
		t.Errorf("changed config map not restored: %v %v", err, root.Labels)
	}
	if f, err := tc.Faults(ctx); err != nil || len(f) != 0 {
		t.Errorf("faults after the reset: %v %v", err, f)
	}
	// The NodePort of the Service the reset removed is free again.
	if _, err := client.CoreV1().Services("default").Create(ctx, nodePortService("np-again"), metav1.CreateOptions{}); err != nil {
		t.Errorf("the NodePort of a Service gone with the reset: %v", err)
	}
	// The informers follow without re-listing: their caches are the LIST.
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return len(podInformer.GetStore().List()) == 0 && storeNames(cmInformer.GetStore()) == cmNames(cms.Items), nil
	}); err != nil {
		t.Errorf("informer caches after the reset: %d pods, config maps %s", len(podInformer.GetStore().List()), storeNames(cmInformer.GetStore()))
	}
	// A watch resumed from before the reset is 410 Gone.
	w, err := client.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{ResourceVersion: fmt.Sprint(atoi(before.ResourceVersion) - 1)})
	if err != nil {
		t.Fatal(err)
	}
	if e := <-w.ResultChan(); e.Type != "ERROR" || !apierrors.IsResourceExpired(apierrors.FromObject(e.Object)) {
		t.Errorf("watch from before the reset: %v %v", e.Type, e.Object)
	}
	w.Stop()
	// Nothing of before is simulated: the kubelet writes no status and
	// records no event for the old pods.
	since := time.Now()
	if err := tc.Settle(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	reqs, err := tc.Requests(ctx, url.Values{"resource": {"pods"}, "internal": {"true"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if r.Time.After(since) && r.Verb != "list" && r.Verb != "watch" && r.Verb != "get" {
			t.Errorf("after the reset a component wrote a pod: %+v", r)
		}
	}
	// The cluster works on: a new Deployment runs.
	if _, err := client.AppsV1().Deployments("default").Create(ctx, deployment("web", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tc.Settle(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"}); err != nil || len(l.Items) != 1 || l.Items[0].Status.Phase != corev1.PodRunning {
		t.Errorf("a deployment after the reset: %v %+v", err, l)
	}

	// A reset with other nodes: they run the pods from then on; the next
	// reset brings the server's own back.
	nodeNames := func() string {
		l, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range l.Items {
			names = append(names, n.Name)
		}
		return strings.Join(sorted(names), " ")
	}
	if err := tc.Reset(ctx, testcontrol.ResetRequest{Nodes: []clusterconfig.NodeSpec{{Name: "worker-a"}, {Name: "worker-b", Labels: map[string]string{"disk": "ssd"}}}}); err != nil {
		t.Fatal(err)
	}
	if got := nodeNames(); got != "worker-a worker-b" {
		t.Errorf("nodes after a reset with nodes: %s", got)
	}
	d := deployment("ssd", 2)
	d.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tc.Settle(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=ssd"}); err != nil || len(l.Items) != 2 ||
		l.Items[0].Spec.NodeName != "worker-b" || l.Items[1].Status.Phase != corev1.PodRunning {
		t.Errorf("pods on the new nodes: %v %+v", err, l)
	}
	if err := tc.Reset(ctx, testcontrol.ResetRequest{Nodes: []clusterconfig.NodeSpec{{Name: "Not A Name"}}}); !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "nodes[0].name") {
		t.Errorf("reset with a bad node: %v", err)
	}
	if got := nodeNames(); got != "worker-a worker-b" {
		t.Errorf("nodes after a refused reset: %s", got)
	}
	if err := tc.Reset(ctx, testcontrol.ResetRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := nodeNames(); got != "node-1" {
		t.Errorf("nodes after a plain reset: %s", got)
	}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, deployment("back", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tc.Settle(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=back"}); err != nil || len(l.Items) != 1 ||
		l.Items[0].Spec.NodeName != "node-1" || l.Items[0].Status.Phase != corev1.PodRunning {
		t.Errorf("pods after the nodes came back: %v %+v", err, l)
	}
}

// A reset undoes a scale-up of a Deployment of the baseline: the baseline's
// pods, not replacements. The controllers take the reset in one event at a
// time; one that sees the ReplicaSet back at 2 before two of its 4 pods
// are gone deletes two that the baseline keeps, which the reset must undo.
func TestResetUndoesScale(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, _, client, tc := readyServer(t, ctx)
	if _, err := client.AppsV1().Deployments("default").Create(ctx, deployment("base", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tc.TakeBaseline(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	pods := func() string {
		t.Helper()
		l, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=base"})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range l.Items {
			out = append(out, fmt.Sprintf("%s/%s/%s", p.Name, p.UID, p.Status.Phase))
		}
		return strings.Join(sorted(out), " ")
	}
	want := pods()
	if strings.Count(want, "/Running") != 2 {
		t.Fatalf("baseline pods: %s", want)
	}
	for round := range 8 {
		if _, err := client.AppsV1().Deployments("default").Patch(ctx, "base", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := tc.Settle(ctx, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := tc.Reset(ctx, testcontrol.ResetRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := pods(); got != want {
			t.Fatalf("round %d: pods after the reset %s, want %s", round, got, want)
		}
	}
	// And they stay: nothing acts on them afterwards.
	if err := tc.Settle(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := pods(); got != want {
		t.Errorf("pods a while after the reset %s, want %s", got, want)
	}
}

// What another client writes in reaction to a reset (a test's controller
// that labels a config map whenever the label is missing) stands: the
// reset restores again only what the server's own components wrote.
func TestResetLeavesOthersReactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, _, client, tc := readyServer(t, ctx)
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tc.TakeBaseline(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	label := func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == "watched" && cm.Labels["seen"] == "" {
			_, _ = client.CoreV1().ConfigMaps("default").Patch(ctx, "watched", types.MergePatchType, []byte(`{"metadata":{"labels":{"seen":"yes"}}}`), metav1.PatchOptions{})
		}
	}
	if _, err := factory.Core().V1().ConfigMaps().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: label, UpdateFunc: func(_, obj any) { label(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer factory.Shutdown()
	defer close(stop)
	factory.Start(stop)
	labelled := func() bool {
		cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, "watched", metav1.GetOptions{})
		return err == nil && cm.Labels["seen"] == "yes"
	}
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return labelled(), nil }); err != nil {
		t.Fatal("the test's controller never labelled the config map")
	}
	for range 3 {
		if err := tc.Reset(ctx, testcontrol.ResetRequest{}); err != nil {
			t.Fatalf("reset under a client that reacts to it: %v", err)
		}
		if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return labelled(), nil }); err != nil {
			t.Fatal("the test's controller did not label the config map again after the reset")
		}
	}
}

// Faults reach client-go as real failures: its conflict retry, its 429
// back-off, an informer's resumed watch; history records what the test
// sent.
func TestFaultsAndHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, rc, client, tc := readyServer(t, ctx, func(o *Options) { o.RequestHistoryBodies = true })
	cms := client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "counter"}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// 409 twice: RetryOnConflict gets there on the third try.
	if err := tc.SetFaults(ctx, faults.Rule{Verb: "update", Resource: "configmaps", Name: "counter", Code: 409, Times: 2}); err != nil {
		t.Fatal(err)
	}
	tries := 0
	var conflict error
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tries++
		cm, err := cms.Get(ctx, "counter", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Data["n"] = "1"
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		if err != nil && conflict == nil {
			conflict = err
		}
		return err
	})
	if err != nil || tries != 3 {
		t.Errorf("RetryOnConflict: %v after %d tries", err, tries)
	}
	if want := `Operation cannot be fulfilled on configmaps "counter": the object has been modified; please apply your changes to the latest version and try again`; conflict == nil || conflict.Error() != want {
		t.Errorf("conflict: %v, want %s", conflict, want)
	}
	if rules, err := tc.Faults(ctx); err != nil || len(rules) != 1 || rules[0].Hits != 2 {
		t.Errorf("fault hits: %v %+v", err, rules)
	}

	// 429 with Retry-After: client-go waits and retries by itself.
	if err := tc.SetFaults(ctx, faults.Rule{Verb: "get", Resource: "configmaps", Name: "counter", Code: 429, RetryAfterSeconds: 1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := cms.Get(ctx, "counter", metav1.GetOptions{}); err != nil {
		t.Errorf("get after a 429: %v", err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("Retry-After not honoured: answered in %v", took)
	}

	// 500, 503 and a dropped connection, as real failures.
	if err := tc.SetFaults(ctx,
		faults.Rule{Verb: "create", Resource: "configmaps", Code: 500, Times: 1},
		faults.Rule{Verb: "delete", Resource: "configmaps", Code: 503, Times: 1},
		faults.Rule{Verb: "get", Resource: "secrets", Drop: true, Times: 1},
	); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); !apierrors.IsInternalError(err) {
		t.Errorf("injected 500: %v", err)
	}
	if err := cms.Delete(ctx, "counter", metav1.DeleteOptions{}); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("injected 503: %v", err)
	}
	if _, err := client.CoreV1().Secrets("default").Get(ctx, "none", metav1.GetOptions{}); err == nil || apierrors.ReasonForError(err) != metav1.StatusReasonUnknown {
		t.Errorf("dropped connection: %v", err)
	}

	// A watch ended after 2 events is resumed by its informer, which
	// misses nothing.
	if err := tc.SetFaults(ctx, faults.Rule{Verb: "watch", Resource: "configmaps", UserAgent: "watch-fault", EndWatchAfter: ptr.To(2), Times: 1}); err != nil {
		t.Fatal(err)
	}
	watchConfig := rest.CopyConfig(rc)
	watchConfig.UserAgent = "watch-fault"
	factory := informers.NewSharedInformerFactoryWithOptions(kubernetes.NewForConfigOrDie(watchConfig), 0, informers.WithNamespace("default"))
	informer := factory.Core().V1().ConfigMaps().Informer()
	stop := make(chan struct{})
	defer factory.Shutdown()
	defer close(stop)
	factory.Start(stop)
	factory.WaitForCacheSync(ctx.Done())
	for i := range 5 {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w%d", i), Labels: map[string]string{"w": "y"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		n := 0
		for _, o := range informer.GetStore().List() {
			if o.(*corev1.ConfigMap).Labels["w"] == "y" {
				n++
			}
		}
		return n == 5, nil
	}); err != nil {
		t.Error("the informer did not get every config map after its watch was ended")
	}
	if watches, err := tc.Requests(ctx, url.Values{"verb": {"watch"}, "userAgent": {"watch-fault"}}); err != nil || len(watches) < 2 {
		rules, _ := tc.Faults(ctx)
		t.Errorf("watches of the informer: %v %+v (faults %+v)", err, watches, rules)
	}

	// History: the test's own DELETE with background propagation, once.
	if _, err := client.AppsV1().Deployments("default").Create(ctx, deployment("gone", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.AppsV1().Deployments("default").Delete(ctx, "gone", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	deletes, err := tc.Requests(ctx, url.Values{"verb": {"delete"}, "resource": {"deployments.apps"}, "namespace": {"default"}, "internal": {"false"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(deletes) != 1 || deletes[0].Name != "gone" || deletes[0].Code != http.StatusOK || !strings.Contains(deletes[0].Body, "Background") ||
		deletes[0].User != "kubernetes-admin" || deletes[0].Internal {
		t.Errorf("the test's DELETE in the history: %+v", deletes)
	}
	// The controllers' requests are there, marked.
	if internal, err := tc.Requests(ctx, url.Values{"internal": {"true"}, "resource": {"replicasets"}}); err != nil || len(internal) == 0 {
		t.Errorf("in-process requests: %v %d", err, len(internal))
	}

	// Bad input is a 400 naming the field, and changes nothing.
	for body, field := range map[string]string{
		`{"faults":[{"verb":"get","code":500,"colour":"red"}]}`: `unknown field \"colour\"`,
		`{"faults":[{"verb":"get","code":"500"}]}`:              "faults.code",
		`{"faults":[{"verb":"fetch","code":500}]}`:              "faults[0].verb",
		`{"faults":[{"verb":"get","code":200}]}`:                "faults[0].code",
		`{"faults":[{"verb":"get"}]}`:                           "faults[0]",
	} {
		code, out := rawAdmin(t, rc, http.MethodPut, testcontrol.FaultsPath, body)
		if code != http.StatusBadRequest || !strings.Contains(out, `"kind":"Status"`) || !strings.Contains(out, field) {
			t.Errorf("PUT %s: %d %s", body, code, out)
		}
	}
	if rules, err := tc.Faults(ctx); err != nil || len(rules) != 1 || rules[0].UserAgent != "watch-fault" {
		t.Errorf("faults changed by bad input: %v %+v", err, rules)
	}
	for path, field := range map[string]string{
		testcontrol.RequestsPath + "?since=yesterday": "since",
		testcontrol.RequestsPath + "?colour=red":      "colour",
		testcontrol.SettlePath + "?timeout=soon":      "timeout",
	} {
		method := http.MethodGet
		if strings.HasPrefix(path, testcontrol.SettlePath) {
			method = http.MethodPost
		}
		if code, out := rawAdmin(t, rc, method, path, ""); code != http.StatusBadRequest || !strings.Contains(out, field) {
			t.Errorf("%s %s: %d %s", method, path, code, out)
		}
	}
	if code, out := rawAdmin(t, rc, http.MethodPut, testcontrol.SettingsPath, `{"settleOnWrite":"yes"}`); code != http.StatusBadRequest || !strings.Contains(out, "settleOnWrite") {
		t.Errorf("PUT settings: %d %s", code, out)
	}
	for body, field := range map[string]string{
		`{"user":"alice","group":["dev"]}`: `unknown field \"group\"`,
		`{"groups":["dev"]}`:               "user",
		`{"user":"alice","groups":[""]}`:   "groups[0]",
		`{"user":"alice","groups":"dev"}`:  "groups",
	} {
		if code, out := rawAdmin(t, rc, http.MethodPost, testcontrol.KubeconfigPath, body); code != http.StatusBadRequest || !strings.Contains(out, field) {
			t.Errorf("POST kubeconfig %s: %d %s", body, code, out)
		}
	}
	if code, out := rawAdmin(t, rc, http.MethodGet, "/mockernetes/v1/nothing", ""); code != http.StatusNotFound || !strings.Contains(out, `"kind":"Status"`) {
		t.Errorf("unknown admin path: %d %s", code, out)
	}
	if err := tc.ClearRequests(ctx); err != nil {
		t.Fatal(err)
	}
	if reqs, err := tc.Requests(ctx, url.Values{"internal": {"false"}}); err != nil || len(reqs) != 0 {
		t.Errorf("history after DELETE: %v %d", err, len(reqs))
	}
}

func rawAdmin(t *testing.T, rc *rest.Config, method, path, body string) (int, string) {
	t.Helper()
	c, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, rc.Host+path, strings.NewReader(body))
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func atoi(s string) int64 {
	var n int64
	fmt.Sscan(s, &n)
	return n
}

func cmNames(items []corev1.ConfigMap) string {
	var out []string
	for _, c := range items {
		out = append(out, c.Namespace+"/"+c.Name)
	}
	return strings.Join(sorted(out), " ")
}

func storeNames(s cache.Store) string {
	var out []string
	for _, o := range s.List() {
		c := o.(*corev1.ConfigMap)
		out = append(out, c.Namespace+"/"+c.Name)
	}
	return strings.Join(sorted(out), " ")
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// Snapshot → change → restore brings every object back as it was, uids
// and owner references included; a snapshot that does not parse changes
// nothing.
func TestSnapshotRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, _, client, tc := readyServer(t, ctx, func(o *Options) { o.SettleOnWrite = true })
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AppsV1().Deployments("app").Create(ctx, deployment("web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps("app").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services("app").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		t.Helper()
		var out []string
		add := func(kind string, m metav1.ObjectMeta, spec any) {
			var owners []string
			for _, o := range m.OwnerReferences {
				owners = append(owners, o.Kind+"/"+o.Name+"/"+string(o.UID))
			}
			out = append(out, fmt.Sprintf("%s %s %s %v %v", kind, m.Name, m.UID, owners, spec))
		}
		if l, err := client.AppsV1().Deployments("app").List(ctx, metav1.ListOptions{}); err == nil {
			for _, o := range l.Items {
				add("deployment", o.ObjectMeta, *o.Spec.Replicas)
			}
		}
		if l, err := client.AppsV1().ReplicaSets("app").List(ctx, metav1.ListOptions{}); err == nil {
			for _, o := range l.Items {
				add("replicaset", o.ObjectMeta, *o.Spec.Replicas)
			}
		}
		if l, err := client.CoreV1().Pods("app").List(ctx, metav1.ListOptions{}); err == nil {
			for _, o := range l.Items {
				add("pod", o.ObjectMeta, o.Status.Phase)
			}
		}
		if l, err := client.CoreV1().ConfigMaps("app").List(ctx, metav1.ListOptions{}); err == nil {
			for _, o := range l.Items {
				add("configmap", o.ObjectMeta, o.Data)
			}
		}
		if l, err := client.CoreV1().Services("app").List(ctx, metav1.ListOptions{}); err == nil {
			for _, o := range l.Items {
				add("service", o.ObjectMeta, o.Spec.Ports)
			}
		}
		return strings.Join(sorted(out), "\n")
	}
	before := state()
	snap, err := tc.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := crds.Objects([]crds.Source{{Name: "snapshot", Data: snap}})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[d.GetKind()]++
		if d.GetResourceVersion() != "" || d.GetManagedFields() != nil || d.GetUID() == "" {
			t.Errorf("snapshot object %s %s/%s: resourceVersion %q, managedFields %v, uid %q", d.GetKind(), d.GetNamespace(), d.GetName(), d.GetResourceVersion(), d.GetManagedFields(), d.GetUID())
		}
	}
	if kinds["Deployment"] != 1 || kinds["Pod"] != 2 || kinds["Namespace"] < 5 || kinds["CustomResourceDefinition"] != 8 || docs[0].GetKind() != "CustomResourceDefinition" {
		t.Errorf("snapshot kinds %v, first %s", kinds, docs[0].GetKind())
	}

	// Changes: scale, edit, delete the service and the deployment's pods' owner.
	d, err := client.AppsV1().Deployments("app").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Replicas = ptr.To[int32](4)
	if _, err := client.AppsV1().Deployments("app").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().ConfigMaps("app").Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Services("app").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps("app").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "new"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if state() == before {
		t.Fatal("the changes changed nothing")
	}

	// A snapshot that does not parse, or names a kind nobody serves: 400,
	// nothing changes.
	for _, bad := range []string{"kind: [\n", "apiVersion: example.com/v9\nkind: Nothing\nmetadata:\n  name: x\n"} {
		err := tc.Restore(ctx, []byte(bad))
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "snapshot:1") {
			t.Errorf("restore of %q: %v", bad, err)
		}
	}
	changed := state()
	if err := tc.Restore(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if after := state(); after != before {
		t.Errorf("after the restore:\n%s\nwant\n%s\n(changed: %s)", after, before, changed)
	}
	// The restored NodePort is taken again: another Service cannot have it.
	svc, err := client.CoreV1().Services("app").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	port := svc.Spec.Ports[0].NodePort
	other := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "other"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, NodePort: port}}}}
	if _, err := client.CoreV1().Services("app").Create(ctx, other, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("a second Service got the restored NodePort %d: %v", port, err)
	}
}
