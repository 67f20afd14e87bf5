package controllers

import (
	"context"
	"errors"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/namespace/deletion"

	"github.com/mockernetes/mockernetes/pkg/settle"
)

// namespaceController deletes terminating namespaces with upstream's
// deleter (pkg/controller/namespace/deletion, the code behind
// kube-controller-manager's namespace controller), scheduled for tests.
// It is the one deviation from upstream's controllers: upstream waits a fixed
// 5 s after every namespace event (for HA API servers and etcd members to
// catch up, which cannot lag here) and, while content remains, half the
// remaining grace period plus a second between passes; here a pass runs at
// once and again after a short backoff (10 ms, doubling to 1 s).
type namespaceController struct {
	deleter deletion.NamespacedResourcesDeleterInterface
	lister  func(name string) (*v1.Namespace, error)
	synced  cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

func newNamespaceController(ctx context.Context, kubeconfig *restclient.Config, namespaces coreinformers.NamespaceInformer, tracker *settle.Tracker) (*namespaceController, error) {
	client, err := kubernetes.NewForConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	metadataClient, err := metadata.NewForConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	c := &namespaceController{
		deleter: deletion.NewNamespacedResourcesDeleter(ctx, client.CoreV1().Namespaces(), metadataClient, client.CoreV1(),
			client.Discovery().ServerPreferredNamespacedResources, v1.FinalizerKubernetes),
		lister: namespaces.Lister().Get,
		synced: namespaces.Informer().HasSynced,
		queue: settle.Queue(tracker, "namespace", workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](10*time.Millisecond, time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"})),
	}
	enqueue := func(obj any) {
		if ns, ok := obj.(*v1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	if _, err := namespaces.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *namespaceController) Name() string { return "namespace-controller" }

func (c *namespaceController) Run(ctx context.Context) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced) {
		return
	}
	const workers = 5 // kube-controller-manager's --concurrent-namespace-syncs
	for range workers {
		go func() {
			for c.process(ctx) {
			}
		}()
	}
	<-ctx.Done()
}

func (c *namespaceController) process(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	ns, err := c.lister(name)
	if apierrors.IsNotFound(err) {
		c.queue.Forget(name)
		return true
	}
	if err == nil {
		err = c.deleter.Delete(ctx, ns.Name)
	}
	if err == nil {
		c.queue.Forget(name)
		return true
	}
	var remaining *deletion.ResourcesRemainingError
	if !errors.As(err, &remaining) {
		utilruntime.HandleErrorWithContext(ctx, err, "Deletion of namespace failed", "namespace", name)
	} else {
		klog.FromContext(ctx).V(4).Info("Content remaining in namespace", "namespace", name)
	}
	c.queue.AddRateLimited(name)
	return true
}
