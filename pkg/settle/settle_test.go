package settle

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"
)

type fakeStore struct {
	lastWrite atomic.Int64
	drained   atomic.Bool
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
