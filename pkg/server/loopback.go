package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"

	restclient "k8s.io/client-go/rest"

	"github.com/mockernetes/mockernetes/pkg/pipe"
)

// loopback carries the API server's requests from its own process (the
// controllers, kube-scheduler, the kubelets, upstream's post-start hooks
// and informers) over in-memory connections, in plain HTTP/1.1, to the
// same handler chain the HTTPS port serves. kube-apiserver's loopback
// client goes through its TLS port; in one process the TLS and HTTP/2
// framing on both ends were about a tenth of the CPU of a busy cluster
// (10,000 pods) and of the start-up's bootstrap writes, and bought nothing:
// the requests are authenticated by the loopback token as before, no port
// is opened and nothing is dialed.
type loopback struct {
	listener *pipe.Listener
	// transport is shared by every loopback client, so that its idle
	// connections serve them all.
	transport *http.Transport
	server    *http.Server
}

func newLoopback() *loopback {
	l := &loopback{listener: pipe.NewListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})}
	l.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return l.listener.Dial(ctx, nil)
		},
		// Never an HTTP proxy of the environment: the dial above is the
		// only way out, whatever the address.
		Proxy:               nil,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	l.server = &http.Server{MaxHeaderBytes: 1 << 20, IdleTimeout: 90 * time.Second}
	return l
}

// config turns the TLS loopback configuration into one for the in-memory
// connections: the same token, user agent and content type.
func (l *loopback) config(tlsConfig *restclient.Config) (*restclient.Config, error) {
	u, err := url.Parse(tlsConfig.Host)
	if err != nil {
		return nil, err
	}
	cfg := restclient.CopyConfig(tlsConfig)
	cfg.Host = "http://" + u.Host
	cfg.TLSClientConfig = restclient.TLSClientConfig{}
	cfg.Transport = l.transport
	return cfg, nil
}

// serve answers the loopback connections with handler until close.
func (l *loopback) serve(handler http.Handler) error {
	l.server.Handler = handler
	err := l.server.Serve(l.listener)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// close ends the loopback connections (watches included) and refuses new
// ones, as the HTTPS port's are closed once a shutdown drained.
func (l *loopback) close() {
	_ = l.listener.Close()
	_ = l.server.Close()
	l.transport.CloseIdleConnections()
}
