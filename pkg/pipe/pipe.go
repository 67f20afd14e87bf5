// Package pipe is a net.Listener whose connections are dialed in process:
// for a server the process talks to itself through (the API server's own
// clients, the simulated kubelets' HTTPS port) with no port opened and
// nothing dialed on the network.
package pipe

import (
	"context"
	"net"
	"sync"
	"syscall"
)

// Listener hands a server the connections Dial makes.
type Listener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

// NewListener returns a listener whose connections report addr as both
// ends' address (what the server sees as a request's remote address).
func NewListener(addr net.Addr) *Listener {
	return &Listener{conns: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

// Accept waits for the next Dial.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; later dials are refused.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the address given to NewListener.
func (l *Listener) Addr() net.Addr { return l.addr }

// Dial connects to the listener once the server accepts, and is refused as
// a closed TCP port refuses once the listener is closed. The server's end
// is a Conn carrying tag, for the server to tell dialers apart.
func (l *Listener) Dial(ctx context.Context, tag any) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- Conn{Conn: addrConn{server, l.addr}, Tag: tag}:
		return addrConn{client, l.addr}, nil
	case <-l.done:
	case <-ctx.Done():
		_ = client.Close()
		return nil, ctx.Err()
	}
	_ = client.Close()
	return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: l.addr, Err: syscall.ECONNREFUSED}
}

// Conn is the server's end of a connection, with its dialer's tag.
type Conn struct {
	net.Conn
	Tag any
}

// addrConn reports the listener's address for both ends (a pipe's own is
// "pipe", which no server takes for an IP address).
type addrConn struct {
	net.Conn
	addr net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.addr }
func (c addrConn) RemoteAddr() net.Addr { return c.addr }
