package pipe

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// A dialed connection reaches Accept with its tag; bytes cross both ways;
// both ends report the listener's address.
func TestDialAccept(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	l := NewListener(addr)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err := l.Dial(context.Background(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	defer server.Close()
	pc, ok := server.(Conn)
	if !ok || pc.Tag != "node-1" {
		t.Fatalf("server end %T with tag %v, want a Conn tagged node-1", server, pc.Tag)
	}
	for _, a := range []net.Addr{client.LocalAddr(), client.RemoteAddr(), server.LocalAddr(), server.RemoteAddr()} {
		if a.String() != "127.0.0.1:0" {
			t.Errorf("address %q, want the listener's 127.0.0.1:0", a)
		}
	}
	go func() { _, _ = client.Write([]byte("ping")) }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	go func() { _, _ = server.Write([]byte("pong")) }()
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	// Deadlines work, as net/http's servers need them.
	if err := server.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, err := server.Read(buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read past the deadline: %v, want a timeout", err)
	}
}

// Once closed, Accept ends and dials are refused as by a closed port; a
// dial nobody accepts ends with its context.
func TestClosedAndCancelled(t *testing.T) {
	l := NewListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Dial(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial with nobody accepting: %v, want the context's deadline", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept after close: %v, want net.ErrClosed", err)
	}
	if _, err := l.Dial(context.Background(), nil); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after close: %v, want connection refused", err)
	}
}
