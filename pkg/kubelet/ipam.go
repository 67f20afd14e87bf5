package kubelet

import (
	"fmt"
	"net"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ipam hands out pod IPs from each node's pod CIDR as the host-local IPAM
// plugin does: the next free address after the last one given out, so that
// a freed address is reused only after the others; an address is held
// while its pod lives and freed when the pod completes or goes. Two live
// pods never share an address.
type ipam struct {
	mu    sync.Mutex
	nodes map[string]*nodeIPs
	// byPod is where each pod's address is held.
	byPod map[types.UID]podAddress
	// byIP is the pod holding each address (the pod CIDRs do not overlap).
	byIP map[string]podRef
}

// podRef names a pod.
type podRef struct {
	uid             types.UID
	namespace, name string
}

func refOf(p *corev1.Pod) podRef { return podRef{p.UID, p.Namespace, p.Name} }

type podAddress struct {
	node string
	ip   string
}

// nodeIPs are the addresses of one node's pod CIDR (10.244.<index>.0/24).
type nodeIPs struct {
	index int
	used  map[string]bool
	last  int // host part of the last address given out
}

// firstHost and lastHost bound the host part of a /24 pod CIDR as
// host-local's range does: .1 is the bridge's gateway, .255 broadcast.
const firstHost, lastHost = 2, 254

func newIPAM() *ipam {
	return &ipam{nodes: map[string]*nodeIPs{}, byPod: map[types.UID]podAddress{}, byIP: map[string]podRef{}}
}

// node is the pool of node name (index: its place in the node set, which
// gives its CIDR); a node that moved to another index gets a new pool.
func (a *ipam) node(name string, index int) *nodeIPs {
	n := a.nodes[name]
	if n == nil || n.index != index {
		n = &nodeIPs{index: index, used: map[string]bool{}, last: firstHost - 1}
		a.nodes[name] = n
	}
	return n
}

// allocate returns pod's address on node, holding it (the same one when
// asked again).
func (a *ipam) allocate(node string, index int, pod podRef) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if held, ok := a.byPod[pod.uid]; ok && held.node == node {
		return held.ip, nil
	}
	n := a.node(node, index)
	for i := range lastHost - firstHost + 1 {
		host := firstHost + (n.last-firstHost+1+i)%(lastHost-firstHost+1)
		ip := fmt.Sprintf("10.244.%d.%d", index, host)
		if n.used[ip] {
			continue
		}
		n.used[ip], n.last = true, host
		a.byPod[pod.uid], a.byIP[ip] = podAddress{node, ip}, pod
		return ip, nil
	}
	return "", fmt.Errorf("failed to allocate for range 0: no IP addresses available in range set: 10.244.%d.1-10.244.%d.254", index, index)
}

// reserve holds an address a pod already reports (a pod restored from a
// snapshot, or run before the kubelet restarted).
func (a *ipam) reserve(node string, index int, pod *corev1.Pod) {
	ip := net.ParseIP(pod.Status.PodIP).To4()
	if ip == nil || ip[0] != 10 || ip[1] != 244 || int(ip[2]) != index || ip[3] < firstHost || ip[3] > lastHost {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.byPod[pod.UID]; ok {
		return
	}
	n := a.node(node, index)
	if n.used[pod.Status.PodIP] {
		return
	}
	n.used[pod.Status.PodIP] = true
	a.byPod[pod.UID], a.byIP[pod.Status.PodIP] = podAddress{node, pod.Status.PodIP}, refOf(pod)
}

// release frees pod's address.
func (a *ipam) release(pod types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	held, ok := a.byPod[pod]
	if !ok {
		return
	}
	delete(a.byPod, pod)
	delete(a.byIP, held.ip)
	if n := a.nodes[held.node]; n != nil {
		delete(n.used, held.ip)
	}
}

// holder is the pod holding ip, if any.
func (a *ipam) holder(ip string) (podRef, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ref, ok := a.byIP[ip]
	return ref, ok
}
