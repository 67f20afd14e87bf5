package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	taintutils "k8s.io/kubernetes/pkg/util/taints"
	"k8s.io/utils/ptr"
)

// NodeSpec describes one simulated node.
type NodeSpec struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Taints []corev1.Taint    `json:"taints,omitempty"`
	// Capacity defaults to 8 CPUs, 32 GiB of memory, 110 pods and 100 GiB of
	// ephemeral storage; allocatable equals capacity.
	Capacity corev1.ResourceList `json:"capacity,omitempty"`
	// Images are the container images the node reports as present
	// (kube-scheduler's ImageLocality scores nodes by them).
	Images []corev1.ContainerImage `json:"images,omitempty"`
	// Devices are the node's simulated DRA devices, published by a
	// stand-in driver in ResourceSlices (see devices.go).
	Devices []Device `json:"devices,omitempty"`
	// StaticPods are the node's static pods (a kubelet's manifest
	// directory): the kubelet creates their mirror pods, named
	// <name>-<node>, and runs them.
	StaticPods []corev1.Pod `json:"staticPods,omitempty"`
}

// The well-known topology labels, and the region and zones DefaultNodes
// spreads nodes over.
const (
	LabelZone     = corev1.LabelTopologyZone
	LabelRegion   = corev1.LabelTopologyRegion
	DefaultRegion = "region-1"
)

// DefaultZones are the zones of DefaultNodes, node i in zone i mod 3.
var DefaultZones = []string{"zone-a", "zone-b", "zone-c"}

// The networks the simulated nodes and pods take their addresses from, as
// kind's: nobody listens on them here.
const (
	NodeNetwork = "172.18.0.0/16"
	PodNetwork  = "10.244.0.0/16"
)

// hostIP is node i's address, podCIDR its pods' range, as kind numbers them.
func hostIP(i int) string  { return fmt.Sprintf("172.18.0.%d", i+3) }
func podCIDR(i int) string { return fmt.Sprintf("10.244.%d.0/24", i) }

// DefaultNodes are n nodes named node-1 to node-n, spread over the three
// zones of one region as a cloud cluster's are (topology spread and zone
// affinity have something to work with); the server's default is one, as
// a single-node development cluster has.
func DefaultNodes(n int) []NodeSpec {
	nodes := make([]NodeSpec, n)
	for i := range nodes {
		nodes[i] = NodeSpec{Name: fmt.Sprintf("node-%d", i+1), Labels: map[string]string{
			LabelRegion: DefaultRegion,
			LabelZone:   DefaultZones[i%len(DefaultZones)],
		}}
	}
	return nodes
}

func defaultCapacity() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("8"),
		corev1.ResourceMemory:           resource.MustParse("32Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
}

// leaseDuration is the kubelet's node lease duration (40 s); it renews the
// lease every quarter of it.
const leaseDuration = 40

// node returns the Node object the kubelet registers, with the status it
// reports: Ready, no pressure, capacity, addresses, node info.
func (k *Kubelet) node(i int, spec NodeSpec) *corev1.Node {
	capacity := spec.Capacity
	if capacity == nil {
		capacity = defaultCapacity()
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
			PodCIDR:  podCIDR(i),
			PodCIDRs: []string{podCIDR(i)},
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
				{Type: corev1.NodeInternalIP, Address: hostIP(i)},
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
				KubeletVersion:          k.version,
				OperatingSystem:         "linux",
				Architecture:            "amd64",
			},
		},
	}
}

// nodeSet is the simulated nodes in force: their specs, their index by
// name (it numbers their addresses), and their event recorders (events
// carry the node as their source host).
type nodeSet struct {
	specs     []NodeSpec
	index     map[string]int
	recorders map[string]record.EventRecorder
	images    map[string]*nodeImages
}

// nodeImages are the images a node holds: those its spec lists and those
// it pulled since it was registered.
type nodeImages struct {
	mu      sync.Mutex
	present map[string]bool
}

func (k *Kubelet) newNodeSet(specs []NodeSpec) *nodeSet {
	set := &nodeSet{specs: specs, index: map[string]int{}, recorders: map[string]record.EventRecorder{}, images: map[string]*nodeImages{}}
	for i, n := range specs {
		set.index[n.Name] = i
		set.recorders[n.Name] = k.newRecorder(n.Name)
		images := &nodeImages{present: map[string]bool{}}
		for _, image := range n.Images {
			for _, name := range image.Names {
				images.present[imageRef(name)] = true
			}
		}
		set.images[n.Name] = images
	}
	return set
}

// pulls says whether node's kubelet pulls c's image before starting it, as
// the kubelet's image manager decides: always for PullAlways, for
// IfNotPresent when the node does not hold it yet (it does afterwards).
// Never starts from what is there: a simulated node holds every image.
func (k *Kubelet) pulls(node string, c corev1.Container) bool {
	switch c.ImagePullPolicy {
	case corev1.PullAlways:
		return true
	case corev1.PullNever:
		return false
	}
	images, ok := k.nodes().images[node]
	if !ok {
		return true
	}
	ref := imageRef(c.Image)
	images.mu.Lock()
	defer images.mu.Unlock()
	if images.present[ref] {
		return false
	}
	images.present[ref] = true
	return true
}

func (k *Kubelet) nodes() *nodeSet { return k.set.Load() }

// recorder records the events of node's kubelet (a node removed meanwhile
// still gets its own).
func (k *Kubelet) recorder(node string) record.EventRecorder {
	if r, ok := k.nodes().recorders[node]; ok {
		return r
	}
	return k.newRecorder(node)
}

// newRecorder records node's events through its broadcaster.
func (k *Kubelet) newRecorder(node string) record.EventRecorder {
	h := fnv.New32a()
	_, _ = h.Write([]byte(node))
	broadcaster := k.events[h.Sum32()%uint32(len(k.events))]
	return k.written.Recorder(broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: node}))
}

// Nodes returns the simulated nodes in force.
func (k *Kubelet) Nodes() []NodeSpec { return k.nodes().specs }

// SetNodes replaces the simulated nodes: nodes no longer named are deleted
// (their leases go with them through their owner reference), new ones
// registered. Pods bound to a node that went are no longer run.
func (k *Kubelet) SetNodes(ctx context.Context, specs []NodeSpec) error {
	if len(specs) == 0 {
		return fmt.Errorf("nodes: at least one node is required")
	}
	if err := (File{Nodes: specs}).Validate(); err != nil {
		return err
	}
	old := k.nodes()
	k.set.Store(k.newNodeSet(specs))
	for _, spec := range old.specs {
		if _, kept := k.nodes().index[spec.Name]; kept {
			continue
		}
		if err := k.client.CoreV1().Nodes().Delete(ctx, spec.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("node %s: %w", spec.Name, err)
		}
	}
	return k.registerNodes(ctx)
}

// registerNodes creates the nodes (status included, as the kubelet's first
// status update would set it) and their leases.
func (k *Kubelet) registerNodes(ctx context.Context) error {
	for i, spec := range k.nodes().specs {
		n := k.node(i, spec)
		status := n.Status
		created, err := k.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("node %s: %w", spec.Name, err)
		}
		created.Status = status
		updated, err := k.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("node %s status: %w", spec.Name, err)
		}
		// TaintNodesByCondition admission taints every new node
		// not-ready:NoSchedule; kube-controller-manager's node lifecycle
		// controller lifts it once the node reports Ready, as here.
		if taints, removed := taintutils.DeleteTaintsByKey(updated.Spec.Taints, corev1.TaintNodeNotReady); removed {
			updated.Spec.Taints = taints
			if _, err := k.client.CoreV1().Nodes().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("node %s taints: %w", spec.Name, err)
			}
		}
		if err := k.renewLease(ctx, spec.Name); err != nil {
			return err
		}
	}
	for _, spec := range k.nodes().specs {
		if err := k.createMirrorPods(ctx, spec); err != nil {
			return err
		}
	}
	return k.publishDevices(ctx)
}

// createMirrorPods creates the mirror pods of a node's static pods, as the
// kubelet does: named after the node, owned by it, annotated with the
// static pod's hash and source.
func (k *Kubelet) createMirrorPods(ctx context.Context, spec NodeSpec) error {
	if len(spec.StaticPods) == 0 {
		return nil
	}
	node, err := k.client.CoreV1().Nodes().Get(ctx, spec.Name, metav1.GetOptions{})
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
		if _, err := k.client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("mirror pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	return nil
}

// renewLease keeps the node's lease in kube-node-lease fresh, as the
// kubelet's heartbeat does.
func (k *Kubelet) renewLease(ctx context.Context, node string) error {
	leases := k.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: k.nodeOwner(ctx, node)},
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

func (k *Kubelet) nodeOwner(ctx context.Context, name string) []metav1.OwnerReference {
	n, err := k.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
}

// heartbeat renews every node's lease each 10 s until ctx ends.
func (k *Kubelet) heartbeat(ctx context.Context) {
	tick := time.NewTicker(leaseDuration * time.Second / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			for _, spec := range k.nodes().specs {
				_ = k.renewLease(ctx, spec.Name)
			}
		}
	}
}
