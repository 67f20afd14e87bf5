package kubelet

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
)

// nodeSet is the simulated nodes in force: their specs, their index by
// name (it numbers their addresses), and their event recorders (events
// carry the node as their source host).
type nodeSet struct {
	specs     []clusterconfig.NodeSpec
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

func (k *Kubelet) newNodeSet(specs []clusterconfig.NodeSpec) *nodeSet {
	set := &nodeSet{specs: specs, index: map[string]int{}, recorders: map[string]record.EventRecorder{}, images: map[string]*nodeImages{}}
	for i, n := range specs {
		set.index[n.Name] = i
		set.recorders[n.Name] = k.recorderOn(n.Name, n.Name)
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
// still gets its own, through the broadcaster of the nodes gone).
func (k *Kubelet) recorder(node string) record.EventRecorder {
	if r, ok := k.nodes().recorders[node]; ok {
		return r
	}
	return k.recorderOn(strays, node)
}

// recorderOn records node's events through the broadcaster of key (the
// node's own, or strays).
func (k *Kubelet) recorderOn(key, node string) record.EventRecorder {
	broadcaster := k.events.broadcaster(key)
	return k.written.Recorder(broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: node}))
}

// Nodes returns the simulated nodes in force.
func (k *Kubelet) Nodes() []clusterconfig.NodeSpec { return k.nodes().specs }

// SetNodes replaces the simulated nodes: nodes no longer named are deleted,
// new ones registered. Pods bound to a node that went are no longer run.
func (k *Kubelet) SetNodes(ctx context.Context, specs []clusterconfig.NodeSpec) error {
	if len(specs) == 0 {
		return fmt.Errorf("nodes: at least one node is required")
	}
	if err := (clusterconfig.File{Nodes: specs}).Validate(); err != nil {
		return err
	}
	old := k.nodes()
	k.set.Store(k.newNodeSet(specs))
	var gone []string
	for _, spec := range old.specs {
		if _, kept := k.nodes().index[spec.Name]; !kept {
			gone = append(gone, spec.Name)
		}
	}
	k.events.drop(gone)
	if err := k.registrar.Remove(ctx, gone); err != nil {
		return err
	}
	return k.registrar.Register(ctx, specs)
}
