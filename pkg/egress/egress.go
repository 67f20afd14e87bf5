// Package egress is the one gate every outbound connection of the server
// goes through. A simulated cluster is made of addresses nobody owns here:
// pod IPs, node addresses and host names, ClusterIPs, the control plane's
// advertised address. On a user's network those can be real machines, so the
// server never dials them. It dials only what a user wrote explicitly (a
// webhook's URL, the host of an ExternalName Service) and loopback, and the
// advertised API server address leads back to the server's own listener.
//
// The gate is upstream's: an egressselector.EgressSelector whose dialers
// kube-apiserver already threads through every dialing path (the proxy
// transport, kubelet connections, webhook clients, authentication and
// tracing), so a path that takes its dialer from the selector cannot forget
// the rule.
package egress

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/server/egressselector"
	"k8s.io/apiserver/pkg/util/webhook"
)

// Config says which addresses the simulation made up.
type Config struct {
	// Simulated are the networks the simulation hands addresses out of
	// (ClusterIPs, pod IPs, node addresses); a dial there is refused.
	Simulated []*net.IPNet
	// SimulatedName reports whether a host name is one the simulation made
	// up (a node's name or address); nil means none. Names under the
	// cluster domain (.svc, .cluster.local) are always refused.
	SimulatedName func(host string) bool
	// Self maps the API server's advertised host:port (the `kubernetes`
	// Service's endpoint) to its real listener address.
	Self map[string]string
	// InProcess serves the cluster addresses the simulation answers in
	// process (a simulated kubelet's port, a pod port forwarded to a
	// test's listener): ok is false for the others, which the gate then
	// decides. Only addresses taken from cluster objects are offered.
	InProcess func(ctx context.Context, network, addr string) (conn net.Conn, ok bool, err error)
	// Dial opens connections that passed the gate (net.Dialer if nil).
	// Tests set it to see every connection the server makes.
	Dial utilnet.DialFunc
}

// Gate decides every outbound connection.
type Gate struct {
	config Config
}

// New returns the gate for c.
func New(c Config) *Gate {
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	return &Gate{config: c}
}

// Selector is the egress selector to set as the generic server's
// EgressSelector: control-plane traffic (URLs users wrote) and cluster
// traffic (addresses resolved from cluster objects) go through the gate,
// etcd traffic is refused (there is no etcd).
func (g *Gate) Selector() *egressselector.EgressSelector {
	return egressselector.NewEgressSelectorWithMap(map[egressselector.EgressType]utilnet.DialFunc{
		egressselector.ControlPlane: g.dialer(controlPlane),
		egressselector.Cluster:      g.dialer(cluster),
		egressselector.Etcd:         g.dialer(etcd),
	})
}

// Resolver wraps the resolver of webhook and APIService Services: a
// Service that resolves to an address the simulation made up (its
// ClusterIP) is refused right there, as a dial to it would be, before a
// client is built that might reach it through an HTTP proxy of the
// environment. An ExternalName Service's host, which a user wrote, passes.
func (g *Gate) Resolver(inner webhook.ServiceResolver) webhook.ServiceResolver {
	return resolver{g, inner}
}

type resolver struct {
	g     *Gate
	inner webhook.ServiceResolver
}

func (r resolver) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	u, err := r.inner.ResolveEndpoint(namespace, name, port)
	if err != nil {
		return nil, err
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	if _, err := r.g.route(cluster, addr); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: stringAddr{"tcp", addr}, Err: err}
	}
	return u, nil
}

// Check says why a URL a user wrote may not be dialed (nil if it may),
// for clients built outside the selector whose dialer cannot be set
// (kube-scheduler's extenders): they are checked once, up front.
func (g *Gate) Check(u *url.URL) error {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	_, err := g.route(controlPlane, net.JoinHostPort(u.Hostname(), port))
	return err
}

// ClusterDial is the dialer for addresses resolved from cluster objects,
// for transports built outside the selector.
func (g *Gate) ClusterDial() utilnet.DialFunc { return g.dialer(cluster) }

type origin int

const (
	// controlPlane: a URL a user wrote (webhook clientConfig.url).
	controlPlane origin = iota
	// cluster: an address resolved from cluster objects (Services,
	// endpoints, nodes, pods).
	cluster
	etcd
)

// Dial is the dialer for addresses a user wrote (a port-forward rule's
// target), for clients built outside the selector.
func (g *Gate) Dial() utilnet.DialFunc { return g.dialer(controlPlane) }

func (g *Gate) dialer(o origin) utilnet.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if o == cluster && g.config.InProcess != nil {
			if conn, ok, err := g.config.InProcess(ctx, network, addr); ok {
				return conn, err
			}
		}
		target, err := g.route(o, addr)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: stringAddr{network, addr}, Err: err}
		}
		return g.config.Dial(ctx, network, target)
	}
}

// route is the rule: the address to dial for addr, or why not.
func (g *Gate) route(o origin, addr string) (string, error) {
	if self, ok := g.config.Self[addr]; ok {
		return self, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if o == etcd {
		return "", refused("there is no etcd")
	}
	if ip := net.ParseIP(host); ip != nil {
		switch {
		case ip.IsLoopback():
			return addr, nil
		case g.simulatedIP(ip):
			return "", refused("a simulated address: nothing listens there")
		case o == cluster:
			// Cluster objects (endpoints, node addresses) are data, not
			// places this process connects to.
			return "", refused("an address taken from cluster objects: mockernetes does not connect to it")
		}
		return addr, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" {
		return addr, nil
	}
	if strings.HasSuffix(name, ".svc") || strings.Contains(name, ".svc.") || strings.HasSuffix(name, ".cluster.local") ||
		(g.config.SimulatedName != nil && g.config.SimulatedName(name)) {
		return "", refused("a simulated host name: nothing listens there")
	}
	return addr, nil
}

func (g *Gate) simulatedIP(ip net.IP) bool {
	for _, n := range g.config.Simulated {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// refused is the error a dial to a simulated address gets: a refused
// connection, as a real cluster's API server sees from a backend where
// nothing listens, saying why.
func refused(why string) error {
	return &os.SyscallError{Syscall: "connect", Err: refusal(why)}
}

type refusal string

func (r refusal) Error() string {
	return syscall.ECONNREFUSED.Error() + " (" + string(r) + ")"
}

// Is lets errors.Is(err, syscall.ECONNREFUSED) hold, as for a real refusal.
func (r refusal) Is(target error) bool { return target == syscall.ECONNREFUSED }

type stringAddr struct{ network, addr string }

func (a stringAddr) Network() string { return a.network }
func (a stringAddr) String() string  { return a.addr }
