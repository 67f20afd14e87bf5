package egress

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"k8s.io/apiserver/pkg/server/egressselector"
)

type fixedResolver string

func (f fixedResolver) ResolveEndpoint(_, _ string, _ int32) (*url.URL, error) {
	return url.Parse(string(f))
}

// The rule, address by address: what the simulation made up is refused
// with a refused connection and never dialed; loopback, the advertised
// address (to the listener) and what users wrote go through.
func TestRule(t *testing.T) {
	cidr := func(s string) *net.IPNet {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var dialed []string
	g := New(Config{
		Simulated:     []*net.IPNet{cidr("10.96.0.0/12"), cidr("10.244.0.0/16"), cidr("172.18.0.0/16")},
		SimulatedName: func(h string) bool { return h == "node-1" },
		Self:          map[string]string{"172.18.0.2:6443": "127.0.0.1:41000"},
		Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
			dialed = append(dialed, addr)
			return nil, errors.New("recorded")
		},
	})
	cluster, user := g.dialer(cluster), g.dialer(controlPlane)
	for _, c := range []struct {
		dial    func(context.Context, string, string) (net.Conn, error)
		addr    string
		reached string // "" when refused
	}{
		{cluster, "10.244.0.2:80", ""},
		{cluster, "10.96.0.10:443", ""},
		{cluster, "172.18.0.3:10250", ""},
		{cluster, "node-1:10250", ""},
		{cluster, "NODE-1.:10250", ""},
		{cluster, "web.default.svc:443", ""},
		{cluster, "web.default.svc.cluster.local:443", ""},
		{cluster, "192.168.1.10:443", ""}, // an endpoint a user typed: data, not a destination
		{cluster, "127.0.0.1:8443", "127.0.0.1:8443"},
		{cluster, "[::1]:8443", "[::1]:8443"},
		{cluster, "localhost:8443", "localhost:8443"},
		{cluster, "172.18.0.2:6443", "127.0.0.1:41000"},
		{cluster, "webhook.example.com:443", "webhook.example.com:443"}, // an ExternalName host
		{user, "192.168.1.10:443", "192.168.1.10:443"},                  // a webhook URL a user wrote
		{user, "10.244.0.2:443", ""},
		{user, "node-1:443", ""},
		{g.dialer(etcd), "127.0.0.1:2379", ""},
	} {
		dialed = nil
		_, err := c.dial(context.Background(), "tcp", c.addr)
		switch {
		case c.reached == "" && (len(dialed) != 0 || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "dial tcp "+c.addr+": connect: connection refused (")):
			t.Errorf("%s: dialed %v, err %v; want refused", c.addr, dialed, err)
		case c.reached != "" && (len(dialed) != 1 || dialed[0] != c.reached):
			t.Errorf("%s: dialed %v, want %s", c.addr, dialed, c.reached)
		}
	}

	// A Service resolving to a ClusterIP is refused before any client
	// exists; an ExternalName host resolves.
	if _, err := g.Resolver(fixedResolver("https://10.96.5.5:443")).ResolveEndpoint("ns", "svc", 443); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("ClusterIP service: %v", err)
	}
	if u, err := g.Resolver(fixedResolver("https://hooks.example.com:8443")).ResolveEndpoint("ns", "svc", 8443); err != nil || u.Host != "hooks.example.com:8443" {
		t.Errorf("ExternalName service: %v %v", u, err)
	}
	// The selector hands the gate out for every network context.
	sel := g.Selector()
	for _, e := range []egressselector.EgressType{egressselector.ControlPlane, egressselector.Cluster, egressselector.Etcd} {
		if d, err := sel.Lookup(e.AsNetworkContext()); err != nil || d == nil {
			t.Errorf("%v: no dialer (%v)", e, err)
		}
	}
}

// What the simulation answers in process is offered only addresses taken
// from cluster objects; what it declines is decided by the rule, and a
// URL a user wrote never reaches it.
func TestInProcess(t *testing.T) {
	var offered, dialed []string
	served, _ := net.Pipe()
	defer served.Close()
	g := New(Config{
		Simulated: []*net.IPNet{{IP: net.IP{10, 244, 0, 0}, Mask: net.CIDRMask(16, 32)}},
		InProcess: func(_ context.Context, _, addr string) (net.Conn, bool, error) {
			offered = append(offered, addr)
			return served, addr == "10.244.0.2:80", nil
		},
		Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
			dialed = append(dialed, addr)
			return nil, errors.New("recorded")
		},
	})
	if conn, err := g.ClusterDial()(context.Background(), "tcp", "10.244.0.2:80"); conn != served || err != nil {
		t.Errorf("served in process: %v %v", conn, err)
	}
	if _, err := g.ClusterDial()(context.Background(), "tcp", "10.244.0.3:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("declined, then refused by the rule: %v", err)
	}
	if _, err := g.Dial()(context.Background(), "tcp", "10.244.0.2:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a user's URL to a pod address: %v", err)
	}
	if strings.Join(offered, ",") != "10.244.0.2:80,10.244.0.3:80" || len(dialed) != 0 {
		t.Errorf("offered %v, dialed %v", offered, dialed)
	}
}
