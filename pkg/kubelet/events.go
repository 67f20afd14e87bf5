package kubelet

import (
	"sync"

	"k8s.io/client-go/tools/record"
)

// nodeEvents are the broadcasters that write the nodes' events: one per
// node, as each real kubelet has its own. A broadcaster queues 1,000 events
// and drops the next ones while its writer is behind; nodes that shared a
// few broadcasters dropped events at fleet size (100 pods on each of 100
// nodes). Events of a node no longer simulated, still in flight, go through
// one broadcaster for them all.
type nodeEvents struct {
	mu     sync.Mutex
	sink   record.EventSink                   // nil until start
	byNode map[string]record.EventBroadcaster // nil once stopped
}

// strays is the key of the broadcaster of nodes no longer simulated (no
// node is named "").
const strays = ""

func newNodeEvents() *nodeEvents {
	return &nodeEvents{byNode: map[string]record.EventBroadcaster{}}
}

// broadcaster is node's, made at its first use and writing at once if the
// kubelet runs.
func (e *nodeEvents) broadcaster(node string) record.EventBroadcaster {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.byNode[node]
	switch {
	case ok:
	case e.byNode == nil: // stopped: what it records goes nowhere
		b = record.NewBroadcaster()
		b.Shutdown()
	default:
		b = record.NewBroadcaster()
		e.byNode[node] = b
		if e.sink != nil {
			b.StartRecordingToSink(e.sink)
		}
	}
	return b
}

// start writes the events of every node, present and future, to sink.
func (e *nodeEvents) start(sink record.EventSink) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sink = sink
	for _, b := range e.byNode {
		b.StartRecordingToSink(sink)
	}
}

// drop shuts down the broadcasters of nodes that are gone.
func (e *nodeEvents) drop(nodes []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, node := range nodes {
		if b, ok := e.byNode[node]; ok && node != strays {
			b.Shutdown()
			delete(e.byNode, node)
		}
	}
}

// stop shuts every broadcaster down.
func (e *nodeEvents) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.byNode {
		b.Shutdown()
	}
	e.byNode = nil
}
