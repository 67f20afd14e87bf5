package server

import (
	"net"
	"sync"
)

// connTracker remembers the open connections of a listener, so that a
// shutdown can close them once the requests have drained: net/http
// otherwise keeps an HTTP/2 connection for a second after its GOAWAY,
// waiting for the client to hang up, and Run would not return until then.
type connTracker struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// closed is set by closeAll: a connection accepted after it (the
	// listener closes a moment later) is closed at once, or a client that
	// keeps sending would hold the shutdown.
	closed bool
}

func trackConns(l net.Listener) *connTracker {
	return &connTracker{Listener: l, conns: map[net.Conn]struct{}{}}
}

func (t *connTracker) Accept() (net.Conn, error) {
	for {
		c, err := t.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, t: t}
		t.mu.Lock()
		closed := t.closed
		if !closed {
			t.conns[tc] = struct{}{}
		}
		t.mu.Unlock()
		if !closed {
			return tc, nil
		}
		// Refused, but the listener stays up until the HTTP server's
		// shutdown closes it: an error here could reach upstream's serving
		// goroutine before its stop channel closes, and it panics then.
		_ = c.Close()
	}
}

// closeAll closes every connection still open, and those accepted later.
func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type trackedConn struct {
	net.Conn
	t    *connTracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
}
