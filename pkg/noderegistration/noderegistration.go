// Package noderegistration registers the simulated nodes as their kubelets
// do: the Node objects with the status a kubelet reports, their leases in
// kube-node-lease renewed by a heartbeat, the mirror pods of their static
// pods, and the ResourceSlices of their devices with a DeviceClass per
// driver. Running the pods is the simulated kubelet's job (pkg/kubelet).
package noderegistration

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	taintutils "k8s.io/kubernetes/pkg/util/taints"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
)

// Registrar writes the nodes through client.
type Registrar struct {
	client  kubernetes.Interface
	version string
}

// New returns a registrar whose nodes report kubeletVersion.
func New(client kubernetes.Interface, kubeletVersion string) *Registrar {
	return &Registrar{client: client, version: kubeletVersion}
}

// Remove deletes the nodes named (their leases, mirror pods and
// ResourceSlices go with them through their owner references).
func (r *Registrar) Remove(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := r.client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("node %s: %w", name, err)
		}
	}
	return nil
}

// leaseDuration is the kubelet's node lease duration (40 s); it renews the
// lease every quarter of it.
const leaseDuration = 40

// Node returns the Node object the kubelet of node i registers, with the
// status it reports: Ready, no pressure, capacity, addresses, node info.
func Node(i int, spec clusterconfig.NodeSpec, kubeletVersion string) *corev1.Node {
	capacity := spec.Capacity
	if capacity == nil {
		capacity = clusterconfig.DefaultCapacity()
	}
	labels := map[string]string{
		"kubernetes.io/hostname":  spec.Name,
		"kubernetes.io/os":        "linux",
		"kubernetes.io/arch":      "amd64",
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": "amd64",
	}
	for key, v := range spec.Labels {
		labels[key] = v
	}
	now := metav1.Now()
	condition := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, message string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: message, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        spec.Name,
			Labels:      labels,
			Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
		},
		Spec: corev1.NodeSpec{
			PodCIDR:  clusterconfig.PodCIDR(i),
			PodCIDRs: []string{clusterconfig.PodCIDR(i)},
			Taints:   spec.Taints,
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Phase:       corev1.NodeRunning,
			Conditions: []corev1.NodeCondition{
				condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
				condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
				condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
				condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
			},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: clusterconfig.HostIP(i)},
				{Type: corev1.NodeHostName, Address: spec.Name},
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			Images:          spec.Images,
			NodeInfo: corev1.NodeSystemInfo{
				MachineID:               fmt.Sprintf("%032x", i+1),
				SystemUUID:              fmt.Sprintf("00000000-0000-0000-0000-%012x", i+1),
				BootID:                  fmt.Sprintf("00000000-0000-0000-0000-%012x", i+1),
				KernelVersion:           "6.12.0-mockernetes",
				OSImage:                 "Mockernetes",
				ContainerRuntimeVersion: "containerd://2.1.4",
				KubeletVersion:          kubeletVersion,
				OperatingSystem:         "linux",
				Architecture:            "amd64",
			},
		},
	}
}

// Register creates the nodes of specs that do not exist yet (status
// included, as the kubelet's first status update would set it), their
// leases, their static pods' mirror pods and their devices' ResourceSlices.
func (r *Registrar) Register(ctx context.Context, specs []clusterconfig.NodeSpec) error {
	for i, spec := range specs {
		n := Node(i, spec, r.version)
		status := n.Status
		created, err := r.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("node %s: %w", spec.Name, err)
		}
		created.Status = status
		updated, err := r.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("node %s status: %w", spec.Name, err)
		}
		// TaintNodesByCondition admission taints every new node
		// not-ready:NoSchedule; kube-controller-manager's node lifecycle
		// controller lifts it once the node reports Ready, as here.
		if taints, removed := taintutils.DeleteTaintsByKey(updated.Spec.Taints, corev1.TaintNodeNotReady); removed {
			updated.Spec.Taints = taints
			if _, err := r.client.CoreV1().Nodes().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("node %s taints: %w", spec.Name, err)
			}
		}
		if err := r.renewLease(ctx, spec.Name); err != nil {
			return err
		}
	}
	for _, spec := range specs {
		if err := r.MirrorPods(ctx, spec); err != nil {
			return err
		}
	}
	return r.publishDevices(ctx, specs)
}

// MirrorPods creates the mirror pods of a node's static pods that do not
// exist, as the kubelet does (at registration, and again when one is
// deleted): named after the node, owned by it, annotated with the static
// pod's hash and source. A node that is gone has none.
func (r *Registrar) MirrorPods(ctx context.Context, spec clusterconfig.NodeSpec) error {
	if len(spec.StaticPods) == 0 {
		return nil
	}
	node, err := r.client.CoreV1().Nodes().Get(ctx, spec.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", spec.Name, err)
	}
	for _, static := range spec.StaticPods {
		p := static.DeepCopy()
		data, err := json.Marshal(p)
		if err != nil {
			return err
		}
		hash := fmt.Sprintf("%x", sha256.Sum256(data))[:32]
		p.Name = static.Name + "-" + spec.Name
		if p.Namespace == "" {
			p.Namespace = metav1.NamespaceDefault
		}
		p.Spec.NodeName = spec.Name
		p.Annotations = maps.Clone(p.Annotations)
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[corev1.MirrorPodAnnotationKey] = hash
		p.Annotations["kubernetes.io/config.hash"] = hash
		p.Annotations["kubernetes.io/config.seen"] = time.Now().UTC().Format(time.RFC3339Nano)
		p.Annotations["kubernetes.io/config.source"] = "file"
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true)}}
		if len(p.Spec.Tolerations) == 0 {
			p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
		}
		if _, err := r.client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("mirror pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return nil
}

// renewLease keeps the node's lease in kube-node-lease fresh, as the
// kubelet's heartbeat does.
func (r *Registrar) renewLease(ctx context.Context, node string) error {
	leases := r.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: r.nodeOwner(ctx, node)},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), LeaseDurationSeconds: ptr.To[int32](leaseDuration), RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func (r *Registrar) nodeOwner(ctx context.Context, name string) []metav1.OwnerReference {
	n, err := r.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
}

// Heartbeat renews the lease of every node nodes returns each 10 s until
// ctx ends.
func (r *Registrar) Heartbeat(ctx context.Context, nodes func() []clusterconfig.NodeSpec) {
	tick := time.NewTicker(leaseDuration * time.Second / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			for _, spec := range nodes() {
				_ = r.renewLease(ctx, spec.Name)
			}
		}
	}
}

// publishDevices writes the ResourceSlices of the nodes' devices (owned by
// their node, as the kubelet's DRA plugin manager owns them: they go with
// it) and a DeviceClass per driver that has none.
func (r *Registrar) publishDevices(ctx context.Context, specs []clusterconfig.NodeSpec) error {
	drivers := map[string]bool{}
	wanted := map[string]bool{}
	simulated := map[string]bool{}
	for _, spec := range specs {
		simulated[spec.Name] = true
		slices, err := spec.ResourceSlices()
		if err != nil {
			return err
		}
		for _, s := range slices {
			wanted[s.Name] = true
		}
		if len(slices) == 0 {
			continue
		}
		owner := r.nodeOwner(ctx, spec.Name)
		if owner == nil {
			return fmt.Errorf("node %s not found", spec.Name)
		}
		for _, s := range slices {
			drivers[s.Spec.Driver] = true
			s.OwnerReferences = owner
			if err := r.putSlice(ctx, s); err != nil {
				return fmt.Errorf("node %s: ResourceSlice %s: %w", spec.Name, s.Name, err)
			}
		}
	}
	// A node that no longer has a driver's devices (a reset with another
	// cluster config) loses that slice, as a driver's kubelet plugin
	// removes it when it goes.
	existing, err := r.client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, s := range existing.Items {
		node := ptr.Deref(s.Spec.NodeName, "")
		if !simulated[node] || wanted[s.Name] || s.Name != node+"-"+s.Spec.Driver || s.Spec.Pool.Name != node {
			continue
		}
		if err := r.client.ResourceV1().ResourceSlices().Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("ResourceSlice %s: %w", s.Name, err)
		}
	}
	for driver := range drivers {
		_, err := r.client.ResourceV1().DeviceClasses().Create(ctx, &resourcev1.DeviceClass{
			ObjectMeta: metav1.ObjectMeta{Name: driver},
			Spec: resourcev1.DeviceClassSpec{Selectors: []resourcev1.DeviceSelector{{
				CEL: &resourcev1.CELDeviceSelector{Expression: fmt.Sprintf("device.driver == %q", driver)},
			}}},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("DeviceClass %s: %w", driver, err)
		}
	}
	return nil
}

// putSlice creates s or brings the existing one to its spec.
func (r *Registrar) putSlice(ctx context.Context, s *resourcev1.ResourceSlice) error {
	api := r.client.ResourceV1().ResourceSlices()
	_, err := api.Create(ctx, s, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	old, err := api.Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if equalSlices(old, s) {
		return nil
	}
	s.ResourceVersion = old.ResourceVersion
	s.Spec.Pool.Generation = old.Spec.Pool.Generation + 1
	_, err = api.Update(ctx, s, metav1.UpdateOptions{})
	return err
}

func equalSlices(a, b *resourcev1.ResourceSlice) bool {
	bs := b.Spec.DeepCopy()
	bs.Pool.Generation = a.Spec.Pool.Generation
	return equality.Semantic.DeepEqual(a.Spec, *bs)
}
