package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/features"
	apistorage "k8s.io/apiserver/pkg/storage"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	utilflowcontrol "k8s.io/apiserver/pkg/util/flowcontrol"
)

// outgoingBufSize is the result channel's buffer, as in etcd3's watcher.
const outgoingBufSize = 100

// watchEntry is one thing queued for a watcher: a committed event, an
// initial-state item, a progress notification, or an error that ends it.
type watchEntry struct {
	event
	initial    bool // part of the initial state: cur is the item
	progress   bool // a bookmark at rev
	initialEnd bool // the bookmark that ends the initial events
	err        error
}

// watchChan is one watch. Writers append to its queue under the backend lock
// (so nothing blocks a write); its goroutine filters, decodes and delivers.
type watchChan struct {
	s              *store
	ctx            context.Context
	cancel         context.CancelFunc
	key            string
	recursive      bool
	pred           apistorage.SelectionPredicate
	keptFields     bool // pred is matched on the field sets kept per item
	progressNotify bool
	recordTime     bool
	startRev       int64
	result         chan watch.Event

	mu     sync.Mutex
	queue  []watchEntry
	busy   bool // run is delivering a batch
	signal chan struct{}
}

var _ watch.Interface = (*watchChan)(nil)

func (w *watchChan) Stop()                          { w.cancel() }
func (w *watchChan) ResultChan() <-chan watch.Event { return w.result }

func (w *watchChan) matchesKey(key string) bool { return hasPrefixKey(key, w.key, w.recursive) }

func (w *watchChan) enqueue(e watchEntry) {
	w.mu.Lock()
	w.queue = append(w.queue, e)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// drained: nothing queued and nothing waiting in the result channel. The
// entry being transformed by run is not seen; callers look twice.
func (w *watchChan) drained() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) == 0 && len(w.result) == 0 && !w.busy
}

func (s *store) watch(ctx context.Context, key string, rev int64, opts apistorage.ListOptions) (watch.Interface, error) {
	if opts.Recursive && !strings.HasSuffix(key, "/") {
		return nil, fmt.Errorf(`recursive key needs to end with "/"`)
	}
	if opts.ProgressNotify && s.newFunc == nil {
		return nil, apierrors.NewInternalError(errors.New("progressNotify for watch is unsupported by the storage because no newFunc was provided"))
	}
	w := &watchChan{
		s:              s,
		key:            key,
		recursive:      opts.Recursive,
		pred:           opts.Predicate,
		progressNotify: opts.ProgressNotify,
		recordTime:     opts.RecordTimestamps,
		result:         make(chan watch.Event, outgoingBufSize),
		signal:         make(chan struct{}, 1),
	}
	if w.pred.Empty() {
		w.pred = apistorage.Everything
		w.pred.AllowWatchBookmarks = opts.Predicate.AllowWatchBookmarks
	}
	w.keptFields = s.keepsFieldsFor(&w.pred)
	w.ctx, w.cancel = context.WithCancel(ctx)

	watchList := utilfeature.DefaultFeatureGate.Enabled(features.WatchList)
	forceInitialEvents := (opts.SendInitialEvents == nil && rev == 0) || (watchList && opts.SendInitialEvents != nil && *opts.SendInitialEvents)
	initialEventsEnd := watchList && opts.SendInitialEvents != nil && *opts.SendInitialEvents && opts.Predicate.AllowWatchBookmarks

	b := s.b
	b.mu.Lock()
	var startErr error
	switch {
	case rev > 0 && forceInitialEvents && rev > b.rev:
		startErr = apistorage.NewTooLargeResourceVersionError(uint64(rev), uint64(b.rev), int(wait.Jitter(1*time.Second, 3).Seconds()))
	case forceInitialEvents:
		// The state now, as ADDED events, then the changes after it.
		w.startRev = b.rev
		end := key + "\x00"
		if w.recursive {
			end = prefixEnd(key)
		}
		b.tree.AscendRange(&item{key: key}, &item{key: end}, func(it *item) bool {
			w.enqueue(watchEntry{initial: true, event: event{rev: it.rev, key: it.key, cur: it}})
			return true
		})
	case rev == 0:
		w.startRev = b.rev
	case rev < b.compacted:
		startErr = apierrors.NewResourceExpired("The resourceVersion for the provided watch is too old.")
	default:
		// Replay what happened after rev from the history.
		w.startRev = rev
		from := sort.Search(len(b.history), func(i int) bool { return b.history[i].rev > rev })
		for _, ev := range b.history[from:] {
			if w.matchesKey(ev.key) {
				w.enqueue(watchEntry{event: ev})
			}
		}
	}
	if startErr != nil {
		// As etcd3: the watch opens, then delivers the error and ends.
		w.enqueue(watchEntry{err: startErr})
	} else {
		if initialEventsEnd {
			w.enqueue(watchEntry{progress: true, initialEnd: true, event: event{rev: w.startRev}})
		}
		b.addWatcherLocked(w)
	}
	b.mu.Unlock()

	go w.run()
	utilflowcontrol.WatchInitialized(ctx)
	return w, nil
}

func (w *watchChan) run() {
	defer close(w.result)
	defer w.s.b.removeWatcher(w)
	defer w.cancel()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.signal:
		}
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.busy = true
		w.mu.Unlock()
		if !w.deliver(batch) {
			return
		}
	}
}

// deliver sends a batch of entries; false when the watch has ended.
func (w *watchChan) deliver(batch []watchEntry) bool {
	defer func() {
		w.mu.Lock()
		w.busy = false
		w.mu.Unlock()
	}()
	for i := range batch {
		e := &batch[i]
		if e.err != nil {
			w.sendError(e.err)
			return false
		}
		res, err := w.transform(e)
		if err != nil {
			w.sendError(err)
			return false
		}
		if res == nil {
			continue
		}
		select {
		case w.result <- *res:
		case <-w.ctx.Done():
			return false
		}
	}
	return true
}

func (w *watchChan) sendError(err error) {
	if _, ok := err.(apierrors.APIStatus); !ok {
		err = apierrors.NewInternalError(err)
	}
	status := err.(apierrors.APIStatus).Status()
	select {
	case w.result <- watch.Event{Type: watch.Error, Object: &status}:
	case <-w.ctx.Done():
	}
}

// object returns a fresh copy of it at rev when it passes the watch's
// predicate, nil when it does not.
func (w *watchChan) object(it *item, rev int64, filter bool) (runtime.Object, error) {
	s := w.s
	sample := s.newFunc()
	// Decide on the cached object when there is one, before copying it.
	view := s.cachedView(it, sample)
	if view != nil && filter {
		if !w.matches(it, view) {
			return nil, nil
		}
		filter = false
	}
	if s.b.opts.SharedWatchObjects {
		return w.sharedObject(it, rev, filter, view, sample)
	}
	data, _, err := s.fromStorage(w.ctx, it)
	if err != nil {
		return nil, err
	}
	if err := s.decodeItem(it, data, sample, rev); err != nil {
		return nil, err
	}
	if filter && !w.matches(it, sample) {
		return nil, nil
	}
	return sample, nil
}

// sharedObject is object for SharedWatchObjects: the first watcher to
// send it at rev decodes it into empty (or takes view, the decode cache's
// object, which nobody modifies: the wrapper copies before any change)
// and the others get the same wrapper.
func (w *watchChan) sharedObject(it *item, rev int64, filter bool, view, empty runtime.Object) (runtime.Object, error) {
	s := w.s
	co, err := it.shared(rev, func() (runtime.Object, error) {
		if view != nil && rev == it.rev {
			return view, nil
		}
		data, _, err := s.fromStorage(w.ctx, it)
		if err != nil {
			return nil, err
		}
		return empty, s.decodeItem(it, data, empty, rev)
	})
	if err != nil {
		return nil, err
	}
	if filter {
		co.lock.RLock()
		obj := co.object
		co.lock.RUnlock()
		if !w.matches(it, obj) {
			return nil, nil
		}
	}
	return co, nil
}

func (w *watchChan) matches(it *item, obj runtime.Object) bool {
	return w.s.matchesItem(&w.pred, w.keptFields, it, obj)
}

// matchesItem reports whether it passes the predicate, on the cached object
// when there is one.
func (w *watchChan) matchesItem(it *item) (bool, error) {
	if view := w.s.cachedView(it, w.s.newFunc()); view != nil {
		return w.matches(it, view), nil
	}
	obj, err := w.object(it, it.rev, true)
	return obj != nil, err
}

// transform turns an entry into the event the client sees, as etcd3's
// watcher does: an update that moves an object into or out of the selector
// becomes ADDED or DELETED.
func (w *watchChan) transform(e *watchEntry) (*watch.Event, error) {
	var res *watch.Event
	switch {
	case e.progress:
		obj := w.s.newFunc()
		if err := w.s.versioner.UpdateObject(obj, uint64(e.rev)); err != nil {
			return nil, fmt.Errorf("failed to propagate object resource version: %w", err)
		}
		if e.initialEnd {
			if err := apistorage.AnnotateInitialEventsEndBookmark(obj); err != nil {
				return nil, err
			}
		}
		return &watch.Event{Type: watch.Bookmark, Object: obj}, nil
	case e.cur == nil: // deleted
		obj, err := w.object(e.prev, e.rev, true)
		if err != nil || obj == nil {
			return nil, err
		}
		res = &watch.Event{Type: watch.Deleted, Object: obj}
	case e.prev == nil: // created, or part of the initial state
		obj, err := w.object(e.cur, e.cur.rev, true)
		if err != nil || obj == nil {
			return nil, err
		}
		res = &watch.Event{Type: watch.Added, Object: obj}
	case w.pred.Empty():
		obj, err := w.object(e.cur, e.cur.rev, false)
		if err != nil {
			return nil, err
		}
		res = &watch.Event{Type: watch.Modified, Object: obj}
	default:
		// Only the object that is sent gets copied: the previous one is
		// needed just for its match, unless the update is a DELETED.
		cur, err := w.object(e.cur, e.cur.rev, true)
		if err != nil {
			return nil, err
		}
		prevMatches, err := w.matchesItem(e.prev)
		if err != nil {
			return nil, err
		}
		switch {
		case cur != nil && prevMatches:
			res = &watch.Event{Type: watch.Modified, Object: cur}
		case cur != nil:
			res = &watch.Event{Type: watch.Added, Object: cur}
		case prevMatches:
			prev, err := w.object(e.prev, e.rev, false)
			if err != nil {
				return nil, err
			}
			res = &watch.Event{Type: watch.Deleted, Object: prev}
		default:
			return nil, nil
		}
	}
	if w.recordTime && !e.initial {
		res.Object = &timedWatchEvent{Object: res.Object, recordTime: e.at}
	}
	return res, nil
}

// timedWatchEvent carries the time an event was committed, for the watch
// cache's latency metrics (storage.ListOptions.RecordTimestamps).
type timedWatchEvent struct {
	runtime.Object
	recordTime time.Time
}

var _ apistorage.WatchEventWithRecordTime = &timedWatchEvent{}

func (t *timedWatchEvent) GetObjectMeta() metav1.Object {
	m, _ := meta.Accessor(t.Object)
	return m
}

func (t *timedWatchEvent) DeepCopyObject() runtime.Object {
	return &timedWatchEvent{Object: t.Object.DeepCopyObject(), recordTime: t.recordTime}
}

func (t *timedWatchEvent) RecordTime() time.Time  { return t.recordTime }
func (t *timedWatchEvent) Unwrap() runtime.Object { return t.Object }
