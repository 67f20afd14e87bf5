package server

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// After closeAll, new connections are refused but Accept reports no error
// until the listener itself closes: upstream's serving goroutine panics on
// an Accept error that comes before its stop channel closes.
func TestConnTrackerRefusesAfterCloseAll(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tracker := trackConns(l)
	type accepted struct {
		c   net.Conn
		err error
	}
	results := make(chan accepted, 4)
	go func() {
		for {
			c, err := tracker.Accept()
			results <- accepted{c, err}
			if err != nil {
				return
			}
		}
	}()

	open, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if r := <-results; r.err != nil {
		t.Fatalf("first Accept: %v", r.err)
	}

	tracker.closeAll()
	if _, err := open.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a tracked connection after closeAll reads %v, want EOF", err)
	}
	late, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	_ = late.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := late.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a connection after closeAll reads %v, want EOF (refused)", err)
	}
	select {
	case r := <-results:
		t.Fatalf("Accept returned (%v, %v) after closeAll with the listener open", r.c, r.err)
	default:
	}

	_ = l.Close()
	select {
	case r := <-results:
		if !errors.Is(r.err, net.ErrClosed) {
			t.Errorf("Accept after the listener closed: %v, want net.ErrClosed", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return after the listener closed")
	}
}
