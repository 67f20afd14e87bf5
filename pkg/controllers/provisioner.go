package controllers

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	storageutil "k8s.io/kubernetes/pkg/apis/storage/util"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/settle"
)

// Provisioner is the name of the stand-in provisioner of the default
// StorageClass.
const Provisioner = "mockernetes.io/in-memory"

// DefaultStorageClass is the default StorageClass a fresh server has.
const DefaultStorageClass = "standard"

// WaitForFirstConsumerStorageClass is the StorageClass whose claims are
// provisioned only once a pod using them is scheduled, on the node
// kube-scheduler chose (volumeBindingMode WaitForFirstConsumer, as the
// classes of topology-aware CSI drivers have).
const WaitForFirstConsumerStorageClass = "standard-wffc"

// provisioner is an external provisioner in the sense of
// kube-controller-manager's persistentvolume-binder: for every claim the
// binder hands to Provisioner (annotation volume.kubernetes.io/
// storage-provisioner) it creates a PersistentVolume of the requested size
// and modes, pre-bound to the claim, which the binder then binds; it deletes
// its volumes once released with reclaim policy Delete. No data is stored:
// the volume's source is a hostPath that no kubelet mounts.
type provisioner struct {
	client  kubernetes.Interface
	claims  cache.SharedIndexInformer
	volumes cache.SharedIndexInformer
	queue   workqueue.TypedRateLimitingInterface[string]
}

func newProvisioner(client kubernetes.Interface, factory informers.SharedInformerFactory, tracker *settle.Tracker) (*provisioner, error) {
	p := &provisioner{
		client:  client,
		claims:  factory.Core().V1().PersistentVolumeClaims().Informer(),
		volumes: factory.Core().V1().PersistentVolumes().Informer(),
		queue: settle.Queue(tracker, "provisioner", workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](10*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "provisioner"})),
	}
	claim := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			p.queue.Add("claim/" + key)
		}
	}
	volume := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			p.queue.Add("volume/" + key)
		}
	}
	if _, err := p.claims.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: claim, UpdateFunc: func(_, o any) { claim(o) }}); err != nil {
		return nil, err
	}
	if _, err := p.volumes.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: volume, UpdateFunc: func(_, o any) { volume(o) }}); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *provisioner) Name() string { return "persistentvolume-provisioner" }

// ensureStorageClass creates the default StorageClass, as kind and most
// development clusters have one, and its WaitForFirstConsumer twin.
func (p *provisioner) ensureStorageClass(ctx context.Context) error {
	for _, class := range []*storagev1.StorageClass{{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultStorageClass,
			Annotations: map[string]string{storageutil.IsDefaultStorageClassAnnotation: "true"},
		},
		Provisioner:       Provisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}, {
		ObjectMeta:        metav1.ObjectMeta{Name: WaitForFirstConsumerStorageClass},
		Provisioner:       Provisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}} {
		if _, err := p.client.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

func (p *provisioner) Run(ctx context.Context) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer p.queue.ShutDown()
	if !cache.WaitForNamedCacheSyncWithContext(ctx, p.claims.HasSynced, p.volumes.HasSynced) {
		return
	}
	go func() {
		for p.process(ctx) {
		}
	}()
	<-ctx.Done()
}

func (p *provisioner) process(ctx context.Context) bool {
	key, quit := p.queue.Get()
	if quit {
		return false
	}
	defer p.queue.Done(key)
	var err error
	kind, rest, _ := strings.Cut(key, "/")
	switch kind {
	case "claim":
		err = p.syncClaim(ctx, rest)
	case "volume":
		err = p.syncVolume(ctx, rest)
	}
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Provisioning failed, retrying", "key", key, "err", err)
		p.queue.AddRateLimited(key)
		return true
	}
	p.queue.Forget(key)
	return true
}

func (p *provisioner) syncClaim(ctx context.Context, key string) error {
	obj, exists, err := p.claims.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return err
	}
	claim := obj.(*corev1.PersistentVolumeClaim)
	if claim.Annotations[storagehelpers.AnnStorageProvisioner] != Provisioner || claim.Spec.VolumeName != "" || claim.DeletionTimestamp != nil {
		return nil
	}
	class, err := p.client.StorageV1().StorageClasses().Get(ctx, ptr.Deref(claim.Spec.StorageClassName, ""), metav1.GetOptions{})
	if err != nil {
		return err
	}
	name := "pvc-" + string(claim.UID)
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{storagehelpers.AnnDynamicallyProvisioned: Provisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   claim.Spec.AccessModes,
			VolumeMode:                    ptr.To(ptr.Deref(claim.Spec.VolumeMode, corev1.PersistentVolumeFilesystem)),
			StorageClassName:              class.Name,
			PersistentVolumeReclaimPolicy: ptr.Deref(class.ReclaimPolicy, corev1.PersistentVolumeReclaimDelete),
			MountOptions:                  class.MountOptions,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: "/var/lib/mockernetes/volumes/" + name,
			}},
		},
	}
	// A claim of a WaitForFirstConsumer class names the node
	// kube-scheduler chose: the volume is there, and only there (a local
	// volume's node affinity, as kind's local-path provisioner gives it).
	if name := claim.Annotations[storagehelpers.AnnSelectedNode]; name != "" {
		node, err := p.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		hostname := node.Labels[corev1.LabelHostname]
		if hostname == "" {
			hostname = node.Name
		}
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{hostname}}},
		}}}}
	}
	_, err = p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (p *provisioner) syncVolume(ctx context.Context, name string) error {
	obj, exists, err := p.volumes.GetIndexer().GetByKey(name)
	if err != nil || !exists {
		return err
	}
	pv := obj.(*corev1.PersistentVolume)
	if pv.Annotations[storagehelpers.AnnDynamicallyProvisioned] != Provisioner || pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.DeletionTimestamp != nil {
		return nil
	}
	err = p.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
