package clusterconfig

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	resourceapi "k8s.io/kubernetes/pkg/apis/resource"
	_ "k8s.io/kubernetes/pkg/apis/resource/install" // the conversions validation needs
	resourcevalidation "k8s.io/kubernetes/pkg/apis/resource/validation"
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
	// stand-in driver in ResourceSlices.
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

// HostIP is node i's address, podCIDR its pods' range, as kind numbers them.
func HostIP(i int) string  { return fmt.Sprintf("172.18.0.%d", i+3) }
func PodCIDR(i int) string { return fmt.Sprintf("10.244.%d.0/24", i) }

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

// DefaultCapacity is a node's capacity unless its spec sets one.
func DefaultCapacity() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("8"),
		corev1.ResourceMemory:           resource.MustParse("32Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
}

// Device is a simulated DRA device of a node, or Count alike ones (named
// Name-0, Name-1, ...). A DRA driver's kubelet plugin publishes the devices
// of its node in a ResourceSlice; the stand-in driver here publishes these,
// so that kube-scheduler allocates ResourceClaims from them as on a real
// cluster. No device is prepared: the pod simply runs.
type Device struct {
	// Driver is the DRA driver's name (a DNS subdomain, e.g.
	// gpu.example.com). A DeviceClass of that name selecting its devices
	// is created unless one exists, as a driver's installation does.
	Driver     string                                                  `json:"driver"`
	Name       string                                                  `json:"name"`
	Count      int                                                     `json:"count,omitempty"`
	Attributes map[resourcev1.QualifiedName]resourcev1.DeviceAttribute `json:"attributes,omitempty"`
	Capacity   map[resourcev1.QualifiedName]resource.Quantity          `json:"capacity,omitempty"`
}

// maxDevices bounds the devices of one node and driver (a ResourceSlice
// holds at most 128).
const maxDevices = resourcev1.ResourceSliceMaxDevices

// ResourceSlices are the ResourceSlices of the node: one pool per driver, named after
// the node, in one slice.
func (spec NodeSpec) ResourceSlices() ([]*resourcev1.ResourceSlice, error) {
	byDriver := map[string][]resourcev1.Device{}
	for i, d := range spec.Devices {
		if d.Count < 0 || d.Count > maxDevices {
			return nil, fmt.Errorf("devices[%d].count: %d is not between 0 and %d", i, d.Count, maxDevices)
		}
		names := []string{d.Name}
		if d.Count > 1 {
			names = names[:0]
			for n := range d.Count {
				names = append(names, fmt.Sprintf("%s-%d", d.Name, n))
			}
		}
		for _, name := range names {
			device := resourcev1.Device{Name: name, Attributes: maps.Clone(d.Attributes)}
			for key, q := range d.Capacity {
				if device.Capacity == nil {
					device.Capacity = map[resourcev1.QualifiedName]resourcev1.DeviceCapacity{}
				}
				device.Capacity[key] = resourcev1.DeviceCapacity{Value: q}
			}
			byDriver[d.Driver] = append(byDriver[d.Driver], device)
		}
	}
	var out []*resourcev1.ResourceSlice
	for _, driver := range slices.Sorted(maps.Keys(byDriver)) {
		out = append(out, &resourcev1.ResourceSlice{
			ObjectMeta: metav1.ObjectMeta{Name: spec.Name + "-" + driver},
			Spec: resourcev1.ResourceSliceSpec{
				Driver:   driver,
				Pool:     resourcev1.ResourcePool{Name: spec.Name, Generation: 1, ResourceSliceCount: 1},
				NodeName: ptr.To(spec.Name),
				Devices:  byDriver[driver],
			},
		})
	}
	return out, nil
}

// validateDevices checks a node's devices as the API server will check
// their ResourceSlices, so that a bad cluster config fails at start.
func (spec NodeSpec) validateDevices() error {
	slices, err := spec.ResourceSlices()
	if err != nil {
		return err
	}
	for _, s := range slices { // upstream's validation bounds the devices too
		var internal resourceapi.ResourceSlice
		if err := legacyscheme.Scheme.Convert(s, &internal, nil); err != nil {
			return err
		}
		if errs := resourcevalidation.ValidateResourceSlice(&internal); len(errs) > 0 {
			return fmt.Errorf("devices of driver %q: %w", s.Spec.Driver, errs.ToAggregate())
		}
	}
	return nil
}
