package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
)

// hostSink is an event sink that holds the writes of one node's events
// until released, and reports every write.
type hostSink struct {
	held    string
	release chan struct{}
	written chan *corev1.Event
}

func (s *hostSink) write(e *corev1.Event) (*corev1.Event, error) {
	if e.Source.Host == s.held {
		<-s.release
	}
	s.written <- e
	return e, nil
}

func (s *hostSink) Create(e *corev1.Event) (*corev1.Event, error) { return s.write(e) }
func (s *hostSink) Update(e *corev1.Event) (*corev1.Event, error) { return s.write(e) }
func (s *hostSink) Patch(e *corev1.Event, _ []byte) (*corev1.Event, error) {
	return s.write(e)
}

// TestNodeEventsPerNode checks that each node writes its events on its
// own, as each real kubelet does: a node whose writes are stuck holds up
// no other node's, including one added after the start; a node removed
// gets a new broadcaster if it comes back, and none is kept after stop.
func TestNodeEventsPerNode(t *testing.T) {
	sink := &hostSink{held: "node-a", release: make(chan struct{}), written: make(chan *corev1.Event, 10)}
	e := newNodeEvents()
	record := func(node, reason string) {
		r := e.broadcaster(node).NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: node})
		r.Event(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p-" + reason, Namespace: "default", UID: types.UID("u-" + reason)}}, corev1.EventTypeNormal, reason, "m")
	}
	a := e.broadcaster("node-a")
	if e.broadcaster("node-a") != a || e.broadcaster("node-b") == a {
		t.Fatal("a node's broadcaster is not its own")
	}
	e.start(sink)
	released := false
	defer func() {
		if !released {
			close(sink.release)
		}
		e.stop()
	}()

	record("node-a", "Stuck")
	time.Sleep(50 * time.Millisecond) // node-a's writer is now held
	record("node-b", "Started")
	record("node-c", "Pulled") // a node added after the start
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case ev := <-sink.written:
			if ev.Source.Host == "node-a" {
				t.Fatalf("node-a's event written while held")
			}
			got[ev.Source.Host+"/"+ev.Reason] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("other nodes' events waited behind node-a's: written %v", got)
		}
	}
	if !got["node-b/Started"] || !got["node-c/Pulled"] {
		t.Fatalf("written %v, want node-b/Started and node-c/Pulled", got)
	}
	close(sink.release)
	released = true
	select {
	case ev := <-sink.written:
		if ev.Source.Host != "node-a" || ev.Reason != "Stuck" {
			t.Fatalf("written %s/%s, want node-a/Stuck", ev.Source.Host, ev.Reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node-a's event not written once released")
	}

	b := e.broadcaster("node-b")
	e.drop([]string{"node-b"})
	if e.broadcaster("node-b") == b {
		t.Fatal("a removed node kept its broadcaster")
	}
	e.stop()
	e.mu.Lock()
	kept := len(e.byNode)
	e.mu.Unlock()
	if e.broadcaster("node-d"); kept != 0 || len(e.byNode) != 0 {
		t.Fatalf("broadcasters kept after stop: %d", max(kept, len(e.byNode)))
	}
}
