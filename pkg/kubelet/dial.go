package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/pipe"
	"github.com/mockernetes/mockernetes/pkg/pki"
)

// kubeletPort is the port the simulated kubelets listen on (in process).
const kubeletPort = 10250

// Dial is the part of the cluster network the simulation serves in
// process, for the API server's dialer: a simulated node's kubelet port
// (at the node's name or InternalIP) reaches this kubelet's HTTPS server
// through a pipe, and a live pod's port that a rule forwards reaches the
// address the rule names. ok is false for every other address: nothing is
// dialed for it here.
func (k *Kubelet) Dial(ctx context.Context, network, addr string) (net.Conn, bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, false, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return nil, false, nil
	}
	if n == kubeletPort {
		for i, spec := range k.nodes().specs {
			if strings.EqualFold(host, spec.Name) || host == clusterconfig.HostIP(i) {
				conn, err := k.listener.Dial(ctx, spec.Name)
				return conn, true, err
			}
		}
	}
	ref, ok := k.ips.holder(host)
	if !ok {
		return nil, false, nil
	}
	pod, err := k.pods.Pods(ref.namespace).Get(ref.name)
	if err != nil || pod.UID != ref.uid {
		return nil, false, nil
	}
	target, ok := k.forwardTarget(pod, int32(n))
	if !ok {
		return nil, false, nil
	}
	conn, err := k.config.Dial(ctx, network, target)
	return conn, true, err
}

// serve runs the kubelets' HTTPS server (every node's, told apart by the
// node each connection was dialed for) on the in-process listener until
// ctx ends. Its certificate is self-signed, as a kubelet's is when it is
// given none; the API server does not verify it unless given a CA, as
// kube-apiserver without --kubelet-certificate-authority does not.
func (k *Kubelet) serve(ctx context.Context) error {
	ca, err := pki.NewNamedCA("kubelet-ca")
	if err != nil {
		return err
	}
	pair, err := ca.ServingCert([]string{"kubelet"}, nil)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			node, _ := r.Context().Value(nodeKey{}).(string)
			h, ok := k.Handler(node)
			if !ok {
				http.NotFound(w, r)
				return
			}
			h.ServeHTTP(w, r)
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if t, ok := c.(*tls.Conn); ok {
				c = t.NetConn()
			}
			if p, ok := c.(pipe.Conn); ok {
				ctx = context.WithValue(ctx, nodeKey{}, p.Tag)
			}
			return ctx
		},
		ReadHeaderTimeout: time.Minute,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
		_ = k.listener.Close()
	}()
	err = srv.Serve(tls.NewListener(k.listener, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}))
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

type nodeKey struct{}

// kubeletAddr is the address the kubelets' in-process connections report.
type kubeletAddr struct{}

func (kubeletAddr) Network() string { return "pipe" }
func (kubeletAddr) String() string  { return "kubelet" }
