package envtest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

var widgets = schema.GroupVersionResource{Group: "test.mockernetes.io", Version: "v1", Resource: "widgets"}

// noLeaks checks, when t ends (after the cleanups registered later), that
// no goroutine started since is left. The one goroutine upstream starts
// once per process (healthz's klog flusher) is started first. Upstream
// clients without a context (the mutating admission policies' OpenAPI
// poll) can be in a one-second retry sleep when the server stops: they get
// five seconds to end.
func noLeaks(t *testing.T) {
	t.Helper()
	_ = healthz.LogHealthz.Check(nil)
	current := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for goleak.Find(current) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		goleak.VerifyNone(t, current)
	})
}

func start(t *testing.T, te *Environment) {
	t.Helper()
	if _, err := te.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := te.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}},
	}
}

// The defaults are envtest's: an API server without controllers, an admin
// Config and KubeConfig, users by client certificate, the CA and address
// through ControlPlane.
func TestEnvtestDefaults(t *testing.T) {
	noLeaks(t)
	te := &Environment{}
	start(t, te)
	ctx := context.Background()

	kc, err := clientcmd.RESTConfigFromKubeConfig(te.KubeConfig)
	if err != nil {
		t.Fatal(err)
	}
	c := kubernetes.NewForConfigOrDie(kc)
	if _, err := c.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("the KubeConfig's client: %v", err)
	}
	api := te.ControlPlane.GetAPIServer()
	if len(api.SecureServing.CA) == 0 || api.SecureServing.Port == "" || te.ControlPlane.APIURL().String() != te.Config.Host {
		t.Errorf("control plane: CA %d bytes, port %q, URL %v, config host %s", len(api.SecureServing.CA), api.SecureServing.Port, te.ControlPlane.APIURL(), te.Config.Host)
	}

	user, err := te.AddUser(User{Name: "alice", Groups: []string{"dev"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	review, err := kubernetes.NewForConfigOrDie(user.Config()).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := review.Status.UserInfo; got.Username != "alice" || !strings.Contains(strings.Join(got.Groups, ","), "dev") {
		t.Errorf("AddUser's identity: %+v", got)
	}

	// RBAC, as envtest's kube-apiserver runs it: alice may do what her
	// group is bound to, and is refused the rest with upstream's 403.
	alice := kubernetes.NewForConfigOrDie(user.Config())
	if _, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) ||
		err.Error() != `pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"` {
		t.Errorf("alice lists pods without a binding: %v", err)
	}
	// (Not the `view` ClusterRole: without the controllers, as in envtest,
	// no clusterrole-aggregation controller fills in its rules.)
	if _, err := c.RbacV1().Roles("default").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "dev-pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "dev"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err == nil, nil
	}); err != nil {
		t.Errorf("alice, bound to pod-reader, lists pods: %v", err)
	}
	if _, err := alice.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice, bound to pod-reader, creates a config map: %v", err)
	}
	if err := testcontrolFor(t, user.Config()).Settle(ctx, time.Second); !apierrors.IsForbidden(err) {
		t.Errorf("alice settles through the test-control API: %v", err)
	}

	// The bootstrap objects are as kube-apiserver makes them: the default
	// ServiceCIDR becomes Ready, with no Warning event on the way.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		cidr, err := c.NetworkingV1().ServiceCIDRs().Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range cidr.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == metav1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Errorf("the default ServiceCIDR's Ready condition: %v", err)
	}
	if events, err := c.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"}); err != nil || len(events.Items) != 0 {
		t.Errorf("Warning events of a fresh cluster: %v %v", err, events)
	}

	// No controllers, as envtest: a Deployment gets no ReplicaSet.
	if _, err := c.AppsV1().Deployments("default").Create(ctx, deployment("web", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := te.Settle(); err != nil {
		t.Fatal(err)
	}
	if rs, err := c.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{}); err != nil || len(rs.Items) != 0 {
		t.Errorf("replicasets without controllers: %v %v", err, rs)
	}
}

// CRDs from CRDDirectoryPaths are served and belong to what Reset returns
// to; objects made after Start do not.
func TestCRDsAndReset(t *testing.T) {
	noLeaks(t)
	te := &Environment{CRDDirectoryPaths: []string{"testdata/crds"}, ErrorIfCRDPathMissing: true}
	start(t, te)
	if len(te.CRDs) != 1 || te.CRDs[0].Name != "widgets.test.mockernetes.io" {
		t.Fatalf("installed CRDs: %v", te.CRDs)
	}
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(te.Config)
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "test.mockernetes.io/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w"}, "spec": map[string]any{"size": int64(0)},
	}}
	if _, err := dyn.Resource(widgets).Namespace("default").Create(ctx, w, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("a Widget of size 0 against the schema's minimum 1: %v", err)
	}
	w.Object["spec"] = map[string]any{"size": int64(3)}
	if _, err := dyn.Resource(widgets).Namespace("default").Create(ctx, w, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := te.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(widgets).Namespace("default").Get(ctx, "w", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Widget after a reset: %v", err)
	}
	if l, err := dyn.Resource(widgets).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("the CRD after a reset: %v %v", err, l)
	}
}

func TestMissingCRDPath(t *testing.T) {
	noLeaks(t)
	te := &Environment{CRDDirectoryPaths: []string{"testdata/none"}, ErrorIfCRDPathMissing: true}
	if _, err := te.Start(); err == nil || !strings.Contains(err.Error(), "testdata/none") {
		t.Errorf("Start with a missing CRD path: %v", err)
	}
}

// Two Environments at once in one process, each with its own objects and
// controllers; Stop under open watches returns promptly and leaves no
// goroutine.
func TestTwoEnvironmentsInParallel(t *testing.T) {
	noLeaks(t)
	envs := []*Environment{{Controllers: []string{"*"}}, {Controllers: []string{"*"}}}
	var wg sync.WaitGroup
	errs := make([]error, len(envs))
	for i, te := range envs {
		wg.Go(func() { _, errs[i] = te.Start() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("environment %d: %v", i, err)
		}
	}
	ctx := context.Background()
	clients := []kubernetes.Interface{kubernetes.NewForConfigOrDie(envs[0].Config), kubernetes.NewForConfigOrDie(envs[1].Config)}
	if _, err := clients[0].AppsV1().Deployments("default").Create(ctx, deployment("only-first", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		l, err := clients[0].CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=only-first"})
		return err == nil && len(l.Items) == 2, nil
	}); err != nil {
		t.Fatalf("pods of the first environment: %v", err)
	}
	if l, err := clients[1].CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("the second environment has pods: %v %v", err, l)
	}
	var watches []<-chan struct{}
	for _, c := range clients {
		w, err := c.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ended := make(chan struct{})
		go func() {
			for range w.ResultChan() {
			}
			close(ended)
		}()
		watches = append(watches, ended)
	}
	for i, te := range envs {
		if err := te.Stop(); err != nil {
			t.Errorf("stop %d: %v", i, err)
		}
	}
	for i, ended := range watches {
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Errorf("the watch on environment %d did not end", i)
		}
	}
}

// UseExistingCluster installs into the cluster of Config, and Reset works
// when that cluster is a Mockernetes server: it returns to the end of that
// Start, CRD included.
func TestUseExistingCluster(t *testing.T) {
	noLeaks(t)
	first := &Environment{}
	start(t, first)
	yes := true
	second := &Environment{UseExistingCluster: &yes, Config: first.Config, CRDDirectoryPaths: []string{"testdata/crds"}}
	start(t, second)
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(first.Config)
	if _, err := dyn.Resource(widgets).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the CRD installed through the second environment: %v", err)
	}
	c := kubernetes.NewForConfigOrDie(first.Config)
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "gone"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := second.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ConfigMaps("default").Get(ctx, "gone", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a reset through the existing cluster: %v", err)
	}
	if _, err := dyn.Resource(widgets).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the CRD of the second Start after a reset: %v", err)
	}
}

func testcontrolFor(t *testing.T, cfg *rest.Config) *testcontrol.Client {
	t.Helper()
	c, err := testcontrol.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Anonymous requests under RBAC are system:anonymous, allowed what
// system:public-info-viewer grants; authorization-mode set through
// APIServer.Configure() is honoured.
func TestAuthorizationModes(t *testing.T) {
	noLeaks(t)
	rbac := &Environment{}
	start(t, rbac)
	anonymous := &rest.Config{Host: rbac.Config.Host, TLSClientConfig: rest.TLSClientConfig{CAData: rbac.Config.CAData}}
	anon := kubernetes.NewForConfigOrDie(anonymous)
	if _, err := anon.Discovery().ServerVersion(); err != nil {
		t.Errorf("anonymous /version: %v", err)
	}
	ctx := context.Background()
	if _, err := anon.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "system:anonymous" cannot list resource "pods"`) {
		t.Errorf("anonymous pods: %v", err)
	}

	allow := &Environment{}
	allow.ControlPlane.GetAPIServer().Configure().Set("authorization-mode", "AlwaysAllow")
	start(t, allow)
	bob, err := allow.AddUser(User{Name: "bob"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.NewForConfigOrDie(bob.Config()).CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("bob under AlwaysAllow: %v", err)
	}
	anonymous.Host, anonymous.CAData = allow.Config.Host, allow.Config.CAData
	if _, err := kubernetes.NewForConfigOrDie(anonymous).CoreV1().Pods("").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("anonymous under AlwaysAllow: %v", err)
	}
}
