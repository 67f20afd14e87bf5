package kubelet

import (
	"context"
	"fmt"
	"maps"
	"slices"

	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	resourceapi "k8s.io/kubernetes/pkg/apis/resource"
	_ "k8s.io/kubernetes/pkg/apis/resource/install" // the conversions validation needs
	resourcevalidation "k8s.io/kubernetes/pkg/apis/resource/validation"
	"k8s.io/utils/ptr"
)

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

// slices are the ResourceSlices of node: one pool per driver, named after
// the node, in one slice.
func (spec NodeSpec) slices() ([]*resourcev1.ResourceSlice, error) {
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
	slices, err := spec.slices()
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

// publishDevices writes the ResourceSlices of the nodes' devices (owned by
// their node, as the kubelet's DRA plugin manager owns them: they go with
// it) and a DeviceClass per driver that has none.
func (k *Kubelet) publishDevices(ctx context.Context) error {
	drivers := map[string]bool{}
	wanted := map[string]bool{}
	for _, spec := range k.nodes().specs {
		slices, err := spec.slices()
		if err != nil {
			return err
		}
		for _, s := range slices {
			wanted[s.Name] = true
		}
		if len(slices) == 0 {
			continue
		}
		owner := k.nodeOwner(ctx, spec.Name)
		if owner == nil {
			return fmt.Errorf("node %s not found", spec.Name)
		}
		for _, s := range slices {
			drivers[s.Spec.Driver] = true
			s.OwnerReferences = owner
			if err := k.putSlice(ctx, s); err != nil {
				return fmt.Errorf("node %s: ResourceSlice %s: %w", spec.Name, s.Name, err)
			}
		}
	}
	// A node that no longer has a driver's devices (a reset with another
	// cluster config) loses that slice, as a driver's kubelet plugin
	// removes it when it goes.
	existing, err := k.client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, s := range existing.Items {
		node := ptr.Deref(s.Spec.NodeName, "")
		if !k.Runs(node) || wanted[s.Name] || s.Name != node+"-"+s.Spec.Driver || s.Spec.Pool.Name != node {
			continue
		}
		if err := k.client.ResourceV1().ResourceSlices().Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("ResourceSlice %s: %w", s.Name, err)
		}
	}
	for driver := range drivers {
		_, err := k.client.ResourceV1().DeviceClasses().Create(ctx, &resourcev1.DeviceClass{
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
func (k *Kubelet) putSlice(ctx context.Context, s *resourcev1.ResourceSlice) error {
	api := k.client.ResourceV1().ResourceSlices()
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
