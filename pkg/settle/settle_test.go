package settle

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	fcache "k8s.io/client-go/tools/cache/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

type fakeStore struct {
	lastWrite atomic.Int64
	drained   atomic.Bool
	podsRev   atomic.Int64
}

func (f *fakeStore) LastRevision(gr schema.GroupResource) int64 {
	if gr.Resource == "pods" {
		return f.podsRev.Load()
	}
	return 0
}

func (f *fakeStore) LastWrite() time.Time { return time.Unix(0, f.lastWrite.Load()) }
func (f *fakeStore) WatchesDrained(func(context.Context) bool) bool {
	return f.drained.Load()
}

// What keeps a cluster busy, signal by signal, and what does not: a delay
// scheduled with AddAfter.
func TestBusy(t *testing.T) {
	store := &fakeStore{}
	store.drained.Store(true)
	tr := New(store, 20*time.Millisecond)
	q := Queue(tr, "kubelet", workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Hour, time.Hour)))
	defer q.ShutDown()
	if busy := tr.Busy(); len(busy) != 0 {
		t.Fatalf("idle tracker busy: %v", busy)
	}
	ctx := context.Background()
	if err := tr.Settle(ctx, time.Second); err != nil {
		t.Fatalf("settle when idle: %v", err)
	}

	q.AddAfter("delayed", time.Hour)
	if busy := tr.Busy(); len(busy) != 0 {
		t.Errorf("a delay a test asked for is waited for: %v", busy)
	}
	q.Add("pod")
	want := func(what string) {
		t.Helper()
		if busy := strings.Join(tr.Busy(), "; "); !strings.Contains(busy, what) {
			t.Errorf("busy %q, want %q", busy, what)
		}
	}
	want("queue kubelet: 1 waiting, 0 processing, 0 retrying")
	item, _ := q.Get()
	want("queue kubelet: 0 waiting, 1 processing, 0 retrying")
	q.AddRateLimited(item) // retried in an hour: busy until then
	q.Done(item)
	want("queue kubelet: 0 waiting, 0 processing, 1 retrying")
	err := tr.Settle(ctx, 30*time.Millisecond)
	var timeout *TimeoutError
	if !errors.As(err, &timeout) || !strings.Contains(err.Error(), "1 retrying") {
		t.Errorf("settle with a retry pending: %v", err)
	}
	q.Forget(item)

	// A fresh tracker: the other signals.
	tr = New(store, 20*time.Millisecond)
	store.lastWrite.Store(time.Now().UnixNano())
	want("store written")
	store.lastWrite.Store(0)
	done := tr.RequestStarted("deployment-controller")
	want(`1 in-process request(s) in flight: deployment-controller`)
	done()
	want("in-process request ended")
	store.drained.Store(false)
	want("watch events not yet delivered")
	store.drained.Store(true)
	start := time.Now()
	if err := tr.Settle(ctx, time.Second); err != nil || time.Since(start) < 10*time.Millisecond {
		t.Errorf("settle after a request: %v in %v (the quiet window not waited)", err, time.Since(start))
	}
}

// After a restore of the server's own, the window after the write is
// RestoredQuiet; an in-process request still gets the whole window.
func TestSettleRestored(t *testing.T) {
	store := &fakeStore{}
	store.drained.Store(true)
	tr := New(store, time.Hour)
	ctx := context.Background()
	store.lastWrite.Store(time.Now().UnixNano())
	if err := tr.Settle(ctx, 50*time.Millisecond); err == nil {
		t.Error("settle within the quiet window after a write")
	}
	if err := tr.SettleRestored(ctx, time.Second); err != nil {
		t.Errorf("settle after a restore: %v", err)
	}
	tr.RequestStarted("garbage-collector")()
	if err := tr.SettleRestored(ctx, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "in-process request ended") {
		t.Errorf("settle after a restore and a component's request: %v", err)
	}
}

type nopSink struct{}

func (nopSink) Create(e *corev1.Event) (*corev1.Event, error)          { return e, nil }
func (nopSink) Update(e *corev1.Event) (*corev1.Event, error)          { return e, nil }
func (nopSink) Patch(e *corev1.Event, _ []byte) (*corev1.Event, error) { return e, nil }

// An event recorded keeps the cluster busy until the sink wrote it, or for
// EventGrace if it never gets there (client-go dropped it).
func TestEvents(t *testing.T) {
	store := &fakeStore{}
	store.drained.Store(true)
	tr := New(store, time.Millisecond)
	ev := tr.Events("kubelet")
	rec := ev.Recorder(record.NewFakeRecorder(10))
	sink := ev.Sink(nopSink{})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}

	rec.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", "c")
	rec.Event(pod, corev1.EventTypeNormal, "Pulled", "pulled")
	if busy := strings.Join(tr.Busy(), "; "); !strings.Contains(busy, "2 event(s) of kubelet not yet written") {
		t.Errorf("busy %q after two events", busy)
	}
	_, _ = sink.Create(&corev1.Event{})
	_, _ = sink.Patch(&corev1.Event{}, nil)
	_, _ = sink.Create(&corev1.Event{}) // a retry: not counted beyond what was recorded
	if busy := tr.Busy(); len(busy) != 0 {
		t.Errorf("busy after the writes: %v", busy)
	}
	rec.Eventf(pod, corev1.EventTypeNormal, "Killing", "x")
	if busy := tr.Busy(); len(busy) == 0 {
		t.Error("a retry counted for a later event")
	}
	// Dropped by the correlator: forgiven after the grace period.
	ev.last.Store(time.Now().Add(-EventGrace).UnixNano())
	if busy := tr.Busy(); len(busy) != 0 {
		t.Errorf("busy past the grace period: %v", busy)
	}
	rec.Eventf(pod, corev1.EventTypeNormal, "Started", "again")
	_, _ = sink.Create(&corev1.Event{})
	if busy := tr.Busy(); len(busy) != 0 {
		t.Errorf("a dropped event still counted: %v", busy)
	}
	var none *Events
	if none.Recorder(rec) != rec || tr.Events("x") == nil {
		t.Error("nil Events must wrap nothing")
	}
}

// An informer behind the store's last write of its resource keeps the
// cluster busy until its handlers got that write, or for InformerGrace when
// nothing arrives.
func TestInformer(t *testing.T) {
	store := &fakeStore{}
	store.drained.Store(true)
	tr := New(store, time.Millisecond)
	source := fcache.NewFakeControllerSource()
	defer source.Shutdown()
	informer := cache.NewSharedInformer(source, &corev1.Pod{}, 0)
	if err := tr.Informer("scheduler", schema.GroupResource{Resource: "pods"}, informer); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go informer.RunWithContext(ctx)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	source.Add(pod.DeepCopy()) // resourceVersion 1
	store.podsRev.Store(1)
	store.lastWrite.Store(time.Now().UnixNano())
	if err := tr.Settle(ctx, 10*time.Second); err != nil {
		t.Fatalf("settle once the informer has the pod: %v", err)
	}
	// The store is ahead: busy, naming the informer, until it arrives.
	store.podsRev.Store(3)
	store.lastWrite.Store(time.Now().UnixNano())
	if busy := strings.Join(tr.Busy(), "; "); !strings.Contains(busy, "informer scheduler of pods at resourceVersion 1, the store at 3") {
		t.Errorf("busy %q", busy)
	}
	source.Modify(pod.DeepCopy()) // 2
	source.Modify(pod.DeepCopy()) // 3
	if err := tr.Settle(ctx, 10*time.Second); err != nil {
		t.Fatalf("settle once the informer caught up: %v", err)
	}
	// Caught up, the window runs from the arrival (the controllers'
	// handlers start on it then).
	tr.quiet = time.Hour
	if busy := strings.Join(tr.Busy(), "; "); !strings.Contains(busy, "informer scheduler of pods handed an event") {
		t.Errorf("busy %q right after an arrival", busy)
	}
	tr.quiet = time.Millisecond
	// A write it never gets: forgiven after the grace period.
	store.podsRev.Store(10)
	store.lastWrite.Store(time.Now().Add(-InformerGrace).UnixNano())
	for _, st := range tr.informers {
		st.arrived.Store(time.Now().Add(-InformerGrace).UnixNano())
	}
	if busy := tr.Busy(); len(busy) != 0 {
		t.Errorf("busy past the grace period: %v", busy)
	}
}

type eventsSink struct{ writes atomic.Int64 }

func (s *eventsSink) Create(_ context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	s.writes.Add(1)
	return e, nil
}

func (s *eventsSink) Update(_ context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	s.writes.Add(1)
	return e, nil
}

func (s *eventsSink) Patch(_ context.Context, e *eventsv1.Event, _ []byte) (*eventsv1.Event, error) {
	s.writes.Add(1)
	return e, nil
}

// kube-scheduler's events.k8s.io broadcaster writes the first two of a
// series and only counts the rest: those keep the cluster busy for
// SeriesGrace, no longer; the written ones only until they are written.
func TestSeriesEvents(t *testing.T) {
	store := &fakeStore{}
	store.drained.Store(true)
	tr := New(store, time.Millisecond)
	ev := tr.EventsWithGrace("scheduler", SeriesGrace)
	sink := &eventsSink{}
	broadcaster := events.NewBroadcaster(ev.EventsSink(sink))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(t.Context().Done())
	rec := ev.EventsRecorder(broadcaster.NewRecorder(scheme.Scheme, "default-scheduler"))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"}}
	for i := range 3 {
		rec.Eventf(pod, nil, corev1.EventTypeWarning, "FailedScheduling", "Scheduling", "0/1 nodes are available")
		if i < 2 {
			if err := tr.Settle(t.Context(), SeriesGrace/2); err != nil {
				t.Fatalf("event %d: written at once, yet %v", i+1, err)
			}
		}
	}
	if busy := strings.Join(tr.Busy(), "; "); !strings.Contains(busy, "1 event(s) of scheduler not yet written") {
		t.Errorf("busy %q after the third of a series", busy)
	}
	start := time.Now()
	if err := tr.Settle(t.Context(), time.Second); err != nil || time.Since(start) > time.Second {
		t.Errorf("the third of a series held the cluster %v: %v", time.Since(start), err)
	}
	if n := sink.writes.Load(); n != 2 {
		t.Errorf("%d writes, want the first two of the series", n)
	}
}

// A component's own check counts until it reports nothing.
func TestCheck(t *testing.T) {
	store := &fakeStore{}
	store.drained.Store(true)
	tr := New(store, time.Millisecond)
	var work atomic.Int64
	tr.Check(func() string {
		if work.Load() > 0 {
			return "scheduler: 1 pod(s) queued"
		}
		return ""
	})
	work.Store(1)
	if busy := tr.Busy(); len(busy) != 1 || busy[0] != "scheduler: 1 pod(s) queued" {
		t.Errorf("busy %v", busy)
	}
	time.AfterFunc(5*time.Millisecond, func() { work.Store(0) })
	if err := tr.Settle(t.Context(), time.Second); err != nil {
		t.Error(err)
	}
	var none *Tracker
	none.Check(func() string { return "never" })
}
