// Package settle tells when a simulated cluster is quiet: nothing written
// for a short window, no in-process component's request in flight, every
// watch drained, every work queue of the server's own components (the
// simulated kubelet and scheduler, the namespace controller, the
// provisioner) empty, idle and with no retry pending, and every event they
// recorded written. Delays a test asked
// for (a start or ready delay, a crash-loop back-off) are scheduled with
// AddAfter and are not waited for.
//
// kube-controller-manager's controllers keep their queues private; they are
// seen through what they do: each step of theirs is an API request from an
// in-process client, started within moments of the watch event that caused
// it. The quiet window is that moment.
package settle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/util/workqueue"
)

// DefaultQuiet is the window without writes or in-process requests after
// which a cluster whose queues are idle counts as settled: the time an
// upstream controller may take from its informer's event to the request it
// causes. Code built with the race detector runs several times slower, so
// there the windows are raceSlowdown times as long (a test suite run with
// -race has the library in-process, instrumented too).
const DefaultQuiet = 20 * time.Millisecond * raceSlowdown

// RestoredQuiet is the window after a write of the server's own that puts
// back a state the components have already settled on (a reset): what
// they do about it is catch up with deletions and put-backs, which the
// drained watches, their queues and their requests show; the window only
// covers handing the events to their informers.
const RestoredQuiet = 5 * time.Millisecond * raceSlowdown

// Store is what the tracker reads of the store.
type Store interface {
	LastWrite() time.Time
	// WatchesDrained: the watches opened by in-process components have
	// delivered every event (a client of the test that stopped reading its
	// watch must not hold the cluster busy).
	WatchesDrained(selected func(context.Context) bool) bool
	// LastRevision is the revision of the last write to resource gr.
	LastRevision(gr schema.GroupResource) int64
}

// Tracker follows one server's activity. The zero value is not usable: use
// New.
type Tracker struct {
	store Store
	quiet time.Duration

	mu        sync.Mutex
	queues    []*queueState
	events    []*Events
	informers []*informerState
	checks    []func() string
	// inflight counts the in-process components' requests in flight.
	inflight map[string]int
	// lastRequest is when an in-process request last ended (Unix ns).
	lastRequest atomic.Int64
	// writes counts the in-process components' successful writes.
	writes atomic.Int64
}

// Wrote records a successful write of an in-process component (before its
// request ends).
func (t *Tracker) Wrote() { t.writes.Add(1) }

// Writes is the number of successful writes of the in-process components
// so far: compared before and after, whether they wrote in between.
func (t *Tracker) Writes() int64 { return t.writes.Load() }

// New returns a tracker over store with the given quiet window
// (DefaultQuiet if zero).
func New(store Store, quiet time.Duration) *Tracker {
	if quiet <= 0 {
		quiet = DefaultQuiet
	}
	return &Tracker{store: store, quiet: quiet, inflight: map[string]int{}}
}

// RequestStarted records an in-process component's request (not a watch or
// another long-running one), described for a time-out's message; call the
// returned function when it ends.
func (t *Tracker) RequestStarted(what string) (done func()) {
	t.mu.Lock()
	t.inflight[what]++
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		if t.inflight[what]--; t.inflight[what] <= 0 {
			delete(t.inflight, what)
		}
		t.mu.Unlock()
		t.lastRequest.Store(time.Now().UnixNano())
	}
}

// Busy returns what keeps the cluster from being settled now, nil if
// nothing does.
func (t *Tracker) Busy() []string {
	busy, _ := t.busy(t.quiet)
	return busy
}

// pollEvery is how often settle looks again while something other than a
// quiet window keeps the cluster busy.
const pollEvery = time.Millisecond

// busy is Busy with writeQuiet as the window after the store's last write.
// It also says when to look again: when the last quiet window ends if only
// windows keep the cluster busy (nothing else can end sooner), else after
// pollEvery.
func (t *Tracker) busy(writeQuiet time.Duration) (busy []string, again time.Duration) {
	now := time.Now()
	polled := false
	window := func(since, quiet time.Duration, what string) {
		if since < quiet {
			busy = append(busy, fmt.Sprintf("%s %v ago", what, since.Round(time.Microsecond)))
			again = max(again, quiet-since)
		}
	}
	other := func(s string) {
		if s != "" {
			busy = append(busy, s)
			polled = true
		}
	}
	window(now.Sub(t.store.LastWrite()), writeQuiet, "store written")
	window(now.Sub(time.Unix(0, t.lastRequest.Load())), t.quiet, "in-process request ended")
	t.mu.Lock()
	for agent, n := range t.inflight {
		other(fmt.Sprintf("%d in-process request(s) in flight: %s", n, agent))
	}
	for _, q := range t.queues {
		other(q.busy())
	}
	for _, e := range t.events {
		other(e.busy(now))
	}
	for _, st := range t.informers {
		s, remaining := st.busy(t.store, now, writeQuiet)
		if remaining > 0 {
			busy = append(busy, s)
			again = max(again, remaining)
		} else {
			other(s)
		}
	}
	checks := t.checks
	t.mu.Unlock()
	for _, check := range checks {
		other(check())
	}
	if !t.store.WatchesDrained(Internal) {
		other("watch events not yet delivered")
	}
	if polled {
		again = pollEvery
	}
	slices.Sort(busy)
	return busy, again
}

// Check adds a component's own look at its work (one whose queues are not
// workqueues, as kube-scheduler's): busy returns what is in progress, ""
// when nothing is.
func (t *Tracker) Check(busy func() string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.checks = append(t.checks, busy)
	t.mu.Unlock()
}

// Internal reports whether a request context is an in-process
// component's: its user is the loopback client's.
func Internal(ctx context.Context) bool {
	u, ok := request.UserFrom(ctx)
	return ok && u.GetName() == user.APIServerUser
}

// TimeoutError is returned by Settle when the cluster did not settle in
// time; it says what was still busy.
type TimeoutError struct {
	After time.Duration
	Busy  []string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("cluster not settled after %v: %s", e.After, strings.Join(e.Busy, "; "))
}

// Settle returns once the cluster is quiet, a *TimeoutError after timeout,
// or ctx's error. On an already quiet cluster it returns at once.
func (t *Tracker) Settle(ctx context.Context, timeout time.Duration) error {
	return t.settle(ctx, timeout, t.quiet)
}

// SettleRestored is Settle after the server itself restored a state the
// components had settled on (see RestoredQuiet): the window after that
// write is shorter.
func (t *Tracker) SettleRestored(ctx context.Context, timeout time.Duration) error {
	return t.settle(ctx, timeout, min(t.quiet, RestoredQuiet))
}

func (t *Tracker) settle(ctx context.Context, timeout, writeQuiet time.Duration) error {
	deadline := time.Now().Add(timeout)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		busy, again := t.busy(writeQuiet)
		if len(busy) == 0 {
			// Look twice: an event being handed over between two
			// components is seen by one of the two looks.
			if busy, again = t.busy(writeQuiet); len(busy) == 0 {
				return nil
			}
		}
		now := time.Now()
		if !now.Before(deadline) {
			return &TimeoutError{After: timeout, Busy: busy}
		}
		again = min(again, deadline.Sub(now))
		if timer == nil {
			timer = time.NewTimer(again)
		} else {
			timer.Reset(again)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// Queue wraps a component's work queue so that the tracker sees it (t may be
// nil: nothing is tracked): items
// waiting or being processed, and retries (AddRateLimited) until they are
// taken again. Items added with AddAfter (a delay the simulation was asked
// for) are not waited for.
func Queue[T comparable](t *Tracker, name string, q workqueue.TypedRateLimitingInterface[T]) workqueue.TypedRateLimitingInterface[T] {
	if t == nil {
		return q
	}
	state := &queueState{name: name, len: q.Len}
	tq := &trackedQueue[T]{TypedRateLimitingInterface: q, state: state, retrying: map[T]struct{}{}}
	state.retries = tq.retries
	t.mu.Lock()
	t.queues = append(t.queues, state)
	t.mu.Unlock()
	return tq
}

type queueState struct {
	name       string
	len        func() int
	retries    func() int
	processing atomic.Int64
}

func (s *queueState) busy() string {
	waiting, processing, retrying := s.len(), s.processing.Load(), s.retries()
	if waiting == 0 && processing == 0 && retrying == 0 {
		return ""
	}
	return fmt.Sprintf("queue %s: %d waiting, %d processing, %d retrying", s.name, waiting, processing, retrying)
}

type trackedQueue[T comparable] struct {
	workqueue.TypedRateLimitingInterface[T]
	state *queueState

	mu       sync.Mutex
	retrying map[T]struct{}
}

func (q *trackedQueue[T]) retries() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.retrying)
}

func (q *trackedQueue[T]) Get() (T, bool) {
	item, shutdown := q.TypedRateLimitingInterface.Get()
	if !shutdown {
		// Counted before the retry is forgotten: never idle in between.
		q.state.processing.Add(1)
		q.mu.Lock()
		delete(q.retrying, item)
		q.mu.Unlock()
	}
	return item, shutdown
}

func (q *trackedQueue[T]) Done(item T) {
	q.TypedRateLimitingInterface.Done(item)
	q.state.processing.Add(-1)
}

func (q *trackedQueue[T]) AddRateLimited(item T) {
	q.mu.Lock()
	q.retrying[item] = struct{}{}
	q.mu.Unlock()
	q.TypedRateLimitingInterface.AddRateLimited(item)
}
