package server

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	netutils "k8s.io/utils/net"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/egress"
	"github.com/mockernetes/mockernetes/pkg/kubelet"
)

// newGate is the egress gate of one server: the service range, the pod and
// node networks and the advertised address are simulated, as are the names
// and addresses of Node objects; the `kubernetes` Service's endpoint
// (advertise address, serving port) leads to the server's own listener.
func newGate(o *Options, serviceRange net.IPNet, host string, port int, factory informers.SharedInformerFactory, inProcess func(ctx context.Context, network, addr string) (net.Conn, bool, error)) (*egress.Gate, error) {
	simulated := []*net.IPNet{&serviceRange}
	for _, cidr := range []string{clusterconfig.PodNetwork, clusterconfig.NodeNetwork} {
		_, n, err := netutils.ParseCIDRSloppy(cidr)
		if err != nil {
			return nil, err
		}
		simulated = append(simulated, n)
	}
	bits := 32
	if o.AdvertiseAddress.To4() == nil {
		bits = 128
	}
	simulated = append(simulated, &net.IPNet{IP: o.AdvertiseAddress, Mask: net.CIDRMask(bits, bits)})

	nodes := factory.Core().V1().Nodes().Lister()
	return egress.New(egress.Config{
		Simulated: simulated,
		SimulatedName: func(host string) bool {
			list, err := nodes.List(labels.Everything())
			if err != nil {
				return true // unsure: refuse
			}
			for _, n := range list {
				if strings.EqualFold(n.Name, host) {
					return true
				}
				for _, a := range n.Status.Addresses {
					if strings.EqualFold(a.Address, host) {
						return true
					}
				}
			}
			return false
		},
		Self:      map[string]string{net.JoinHostPort(o.AdvertiseAddress.String(), strconv.Itoa(port)): net.JoinHostPort(host, strconv.Itoa(port))},
		Dial:      o.Dial,
		InProcess: inProcess,
	}), nil
}

// inProcess is the part of the cluster network the simulation answers in
// process: the simulated kubelets' port and the pod ports they forward,
// once the kubelets exist (the gate is built before them).
type inProcess struct {
	kubelet atomic.Pointer[kubelet.Kubelet]
}

func (p *inProcess) dial(ctx context.Context, network, addr string) (net.Conn, bool, error) {
	k := p.kubelet.Load()
	if k == nil {
		return nil, false, nil
	}
	return k.Dial(ctx, network, addr)
}
