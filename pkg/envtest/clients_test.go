package envtest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// client-go informers, the dynamic client and controller-runtime's cached
// client (a field index, server-side apply) against one Environment with
// the whole cluster: an applied Deployment's pods run on the simulated
// node and are Ready, and every client sees them; after a Reset every
// cache follows the cluster back to empty.
func TestClients(t *testing.T) {
	noLeaks(t)
	te := &Environment{Controllers: []string{"*"}}
	start(t, te)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	mgr, err := manager.New(te.Config, manager.Options{
		Scheme:                 te.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, "spec.nodeName", func(o client.Object) []string {
		return []string{o.(*corev1.Pod).Spec.NodeName}
	}); err != nil {
		t.Fatal(err)
	}
	managerDone := make(chan error, 1)
	go func() { managerDone <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-managerDone; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the manager's cache did not sync")
	}
	cached := mgr.GetClient()

	clientset := kubernetes.NewForConfigOrDie(te.Config)
	factory := informers.NewSharedInformerFactory(clientset, 0)
	podLister := factory.Core().V1().Pods().Lister()
	factory.Start(ctx.Done())
	defer func() {
		cancel()
		factory.Shutdown()
	}()
	factory.WaitForCacheSync(ctx.Done())

	// Server-side apply through controller-runtime.
	labelsWeb := map[string]string{"app": "web"}
	apply := appsv1ac.Deployment("web", "default").WithSpec(appsv1ac.DeploymentSpec().
		WithReplicas(2).
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(labelsWeb)).
		WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labelsWeb).WithSpec(corev1ac.PodSpec().
			WithContainers(corev1ac.Container().WithName("web").WithImage("nginx")))))
	if err := cached.Apply(ctx, apply, client.FieldOwner("envtest-test"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}

	readyOnNode := func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := cached.List(ctx, &pods, client.InNamespace("default"), client.MatchingFields{"spec.nodeName": "node-1"}); err != nil {
			return false, err
		}
		ready := 0
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == 2, nil
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, readyOnNode); err != nil {
		t.Fatalf("two Ready pods on node-1 in the cached client's field index: %v", err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		pods, err := podLister.Pods("default").List(labels.SelectorFromSet(labelsWeb))
		return err == nil && len(pods) == 2, nil
	}); err != nil {
		t.Errorf("the client-go informer's pods: %v", err)
	}
	dyn := dynamic.NewForConfigOrDie(te.Config)
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	d, err := dyn.Resource(deployments).Namespace("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	managers := map[string]string{}
	for _, f := range d.GetManagedFields() {
		managers[f.Manager] = string(f.Operation)
	}
	if managers["envtest-test"] != string(metav1.ManagedFieldsOperationApply) {
		t.Errorf("managed fields of the applied Deployment: %v", managers)
	}

	// A reset: the informers re-list and every cache empties.
	if err := te.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := cached.List(ctx, &pods, client.InNamespace("default")); err != nil {
			return false, err
		}
		informed, err := podLister.Pods("default").List(labels.Everything())
		return err == nil && len(pods.Items) == 0 && len(informed) == 0, nil
	}); err != nil {
		t.Errorf("caches after a reset: %v", err)
	}
}
