// Package storage is Mockernetes' in-memory replacement for etcd: a
// k8s.io/apiserver storage.Interface with etcd3's semantics (one global
// revision, MVCC reads inside a retained history window, compaction, leases,
// watch with prevKV) and no process, disk or network behind it.
//
// A Backend plays the part of one etcd cluster; every resource of a server
// gets a Store view onto it through NewStore or the RESTOptionsGetter, so that
// resourceVersions are shared and increase across all resources as they do in
// kube-apiserver.
package storage

import (
	"container/heap"
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/google/btree"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Options configure a Backend. The zero value is usable: Complete fills the defaults.
type Options struct {
	// HistoryWindow is how long past revisions stay readable (Exact/continue
	// reads, watch from an old resourceVersion). kube-apiserver compacts etcd
	// every 5 minutes, so a client can rely on at least that much.
	HistoryWindow time.Duration
	// MaxHistoryEvents bounds the memory of the history: beyond it the oldest
	// revisions are compacted even inside HistoryWindow.
	MaxHistoryEvents int
	// MaxHistoryBytes bounds it in bytes too (the stored values the
	// history alone keeps, and a fixed cost per event): churn of large
	// objects reaches it before the event bound.
	MaxHistoryBytes int64
	// ProgressNotifyInterval is how often watches opened with ProgressNotify
	// get a bookmark carrying the current revision, as etcd's
	// --experimental-watch-progress-notify-interval does.
	ProgressNotifyInterval time.Duration
	// BookmarkInterval, when positive, sends watchers that allow bookmarks a
	// bookmark at this period, the way kube-apiserver's watch cache does.
	// Zero keeps etcd3's behaviour: no unsolicited bookmarks.
	BookmarkInterval time.Duration
	// ReadOnlyLists makes GetList hand out the store's decoded objects as
	// shallow copies that share maps, slices and pointers with its cache,
	// instead of deep copies. That is the contract kube-apiserver's watch
	// cache gives the generic registry and the API handlers (they only read
	// and encode listed objects), and it makes a LIST of 10,000 pods several
	// times cheaper. Only for such callers: modifying a listed item would
	// modify the store. Off (the zero value), nothing returned is shared.
	ReadOnlyLists bool
	// SharedWatchObjects sends every watcher of an event the same object,
	// wrapped so that the API handlers encode it once per format for all of
	// them (runtime.CacheableObject), as kube-apiserver's watch cache does.
	// Only for such callers: a watcher gets a *cachingObject, not the
	// resource's type. Off, each watcher gets its own copy.
	SharedWatchObjects bool
}

// Default option values.
const (
	DefaultHistoryWindow          = 5 * time.Minute
	DefaultMaxHistoryEvents       = 100000
	DefaultMaxHistoryBytes        = 64 << 20
	DefaultProgressNotifyInterval = 5 * time.Second
)

// Complete returns o with defaults filled in.
func (o Options) Complete() Options {
	if o.HistoryWindow <= 0 {
		o.HistoryWindow = DefaultHistoryWindow
	}
	if o.MaxHistoryEvents <= 0 {
		o.MaxHistoryEvents = DefaultMaxHistoryEvents
	}
	if o.MaxHistoryBytes <= 0 {
		o.MaxHistoryBytes = DefaultMaxHistoryBytes
	}
	if o.ProgressNotifyInterval <= 0 {
		o.ProgressNotifyInterval = DefaultProgressNotifyInterval
	}
	return o
}

// item is one version of one key. Items are immutable once committed, so the
// tree, the history and readers share them freely; only the decode cache
// changes, atomically.
type item struct {
	key  string
	data []byte // the value as stored: encoded, then transformed if the store has a transformer
	rev  int64  // revision that wrote this version (etcd's ModRevision)
	// expires is the lease deadline, zero for none.
	expires time.Time
	index   []indexKey // the object's labels and indexed fields, for the index
	decoded atomic.Pointer[decodedObject]
	fields  atomic.Pointer[itemFields]
	// superseded is set once a newer version replaced this one: then
	// nothing is cached on it (see cache).
	superseded atomic.Bool
	// written and replaced are the objects watchers share
	// (SharedWatchObjects): this version at its own revision, and at the
	// revision of the event that replaced or deleted it. Held weakly:
	// gone once no watcher holds them, so only events in flight keep
	// their encodings.
	written, replaced atomic.Pointer[sharedObject]
}

// sharedObject is a watch event's object shared by its watchers.
type sharedObject struct {
	rev int64
	obj weak.Pointer[cachingObject]
}

// shared returns the object watchers share for it at rev, made
// by build when there is none yet (or it was collected).
func (it *item) shared(rev int64, build func() (runtime.Object, error)) (*cachingObject, error) {
	slot := &it.written
	if rev != it.rev {
		slot = &it.replaced
	}
	old := slot.Load()
	if old != nil && old.rev == rev {
		if co := old.obj.Value(); co != nil {
			return co, nil
		}
	}
	obj, err := build()
	if err != nil {
		return nil, err
	}
	co, err := newCachingObject(obj)
	if err != nil {
		return nil, err
	}
	if !slot.CompareAndSwap(old, &sharedObject{rev: rev, obj: weak.Make(co)}) {
		// Another watcher made one first: use it if it is for rev.
		if now := slot.Load(); now != nil && now.rev == rev {
			if winner := now.obj.Value(); winner != nil {
				return winner, nil
			}
		}
	}
	return co, nil
}

// cache keeps a decoded copy of the item, unless it is already history:
// a watcher behind the store, or one filtering by the previous object,
// decodes history items, and caching those would keep a decoded copy of
// every version in the history window. superseded is set before the
// cache is cleared, so either that clear or the check here drops it.
func (it *item) cache(d *decodedObject) {
	if it.superseded.Load() {
		return
	}
	it.decoded.Store(d)
	if it.superseded.Load() {
		it.decoded.Store(nil)
	}
}

// itemFields caches the field set that one store's registry GetAttrs gives
// for an item, for field selectors.
type itemFields struct {
	by  *store
	set fields.Set
}

// indexKey is one entry of the index: a label of an object, or the value of
// one of the fields its registry declares indexed (pods: spec.nodeName).
type indexKey struct {
	field       bool
	name, value string
}

// decodedObject caches the result of decoding an item for one store and one
// target type, so reads deep-copy instead of decoding.
type decodedObject struct {
	by  *store
	gvk string // target apiVersion for unstructured targets, "" otherwise
	obj runtime.Object
}

func itemLess(a, b *item) bool { return a.key < b.key }

// event is one committed change, kept in the history for MVCC reads and for
// watches started from an older revision.
type event struct {
	rev  int64
	key  string
	cur  *item // nil when the key was deleted
	prev *item // nil when the key was created
	at   time.Time
}

// Backend is one in-memory "etcd": the current key space, the global
// revision, the history of recent changes, leases and the registered watchers.
// It is safe for concurrent use; reads share a read lock, writes serialize.
type Backend struct {
	opts Options

	mu        sync.RWMutex
	tree      *btree.BTreeG[*item]
	rev       int64
	compacted int64
	history   []event // ascending by rev, all with rev > compacted
	// historyBytes is what the history alone keeps alive (eventBytes).
	historyBytes int64
	// index holds the current items by label and indexed field, so that a
	// LIST with an equality selector visits only the items it can match.
	index map[indexKey]*btree.BTreeG[*item]
	// fieldIndexes is, per resource key prefix, the field indexes that every
	// store writing under it maintains; see registerFieldIndexes.
	fieldIndexes map[string]fieldIndexes
	watchers     map[*watchChan]struct{}
	// stores are the stores of each resource, the latest first (a
	// restore encodes objects as they store them).
	stores map[schema.GroupResource][]*store
	// resourceRev is the last revision that wrote a key of each resource;
	// resourceOf caches which resources a key's directory belongs to.
	// (read without the lock: settle asks for it every millisecond).
	resourceRev sync.Map // schema.GroupResource → *atomic.Int64
	resourceOf  map[string][]schema.GroupResource
	// lastWrite is when the key space last changed (Unix nanoseconds).
	lastWrite atomic.Int64
	leases    leaseHeap
	timer     *time.Timer
	closed    bool
	stop      chan struct{}
	stopOnce  sync.Once
	doneTicks sync.WaitGroup
}

// NewBackend returns an empty backend at revision 1, as a fresh etcd is.
func NewBackend(opts Options) *Backend {
	b := &Backend{
		opts:         opts.Complete(),
		tree:         btree.NewG[*item](32, itemLess),
		rev:          1,
		index:        map[indexKey]*btree.BTreeG[*item]{},
		fieldIndexes: map[string]fieldIndexes{},
		watchers:     map[*watchChan]struct{}{},
		stores:       map[schema.GroupResource][]*store{},
		resourceOf:   map[string][]schema.GroupResource{},
		stop:         make(chan struct{}),
	}
	b.doneTicks.Add(1)
	go b.tick()
	return b
}

// Close stops lease expiry and ends every watch. Stores on a closed backend
// keep answering reads and writes, but nothing expires any more.
func (b *Backend) Close() {
	b.stopOnce.Do(func() {
		close(b.stop)
		b.mu.Lock()
		b.closed = true
		if b.timer != nil {
			b.timer.Stop()
		}
		watchers := b.watchers
		b.watchers = map[*watchChan]struct{}{}
		b.mu.Unlock()
		for w := range watchers {
			w.Stop()
		}
		b.doneTicks.Wait()
	})
}

// Revision returns the current global revision.
func (b *Backend) Revision() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.rev
}

// CompactedRevision returns the newest revision that is no longer readable.
func (b *Backend) CompactedRevision() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.compacted
}

// Compact drops the history up to and including rev, as etcd's compaction
// does: reads and watches at older revisions then fail with "too old".
func (b *Backend) Compact(rev int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rev > b.rev {
		rev = b.rev
	}
	b.compactLocked(rev)
}

func (b *Backend) compactLocked(rev int64) {
	if rev <= b.compacted {
		return
	}
	n := sort.Search(len(b.history), func(i int) bool { return b.history[i].rev > rev })
	b.dropHistory(n)
	b.compacted = rev
}

// dropHistory removes the n oldest events, copying the tail once it is small
// relative to the backing array so that dropped events can be collected.
func (b *Backend) dropHistory(n int) {
	if n == 0 {
		return
	}
	for i := range n {
		b.historyBytes -= eventBytes(&b.history[i])
	}
	clear(b.history[:n])
	b.history = b.history[n:]
	if cap(b.history) > 1024 && len(b.history) < cap(b.history)/4 {
		b.history = append(make([]event, 0, 2*len(b.history)+16), b.history...)
	}
}

// eventOverhead is what an event costs besides the value it keeps: the
// event, the item, the key and index entries.
const eventOverhead = 256

// eventBytes is what an event keeps alive that nothing else does: the
// version it replaced or deleted (the new version is the current state's
// until it is replaced in turn, and then the next event's).
func eventBytes(ev *event) int64 {
	n := int64(eventOverhead)
	if ev.prev != nil {
		n += int64(len(ev.prev.data) + len(ev.prev.key))
	}
	return n
}

// retainLocked compacts what falls out of the history window or the event
// and byte bounds.
func (b *Backend) retainLocked(now time.Time) {
	drop := 0
	if over := len(b.history) - b.opts.MaxHistoryEvents; over > 0 {
		drop = over
	}
	bytes := b.historyBytes
	for i := range drop {
		bytes -= eventBytes(&b.history[i])
	}
	for drop < len(b.history) && bytes > b.opts.MaxHistoryBytes {
		bytes -= eventBytes(&b.history[drop])
		drop++
	}
	cutoff := now.Add(-b.opts.HistoryWindow)
	for drop < len(b.history) && b.history[drop].at.Before(cutoff) {
		drop++
	}
	if drop > 0 {
		b.compacted = b.history[drop-1].rev
		b.dropHistory(drop)
	}
}

// getLocked returns the current item at key, or nil.
func (b *Backend) getLocked(key string) *item {
	it, _ := b.tree.Get(&item{key: key})
	return it
}

// commit writes next at key (nil deletes it) if the key is at revision
// expectRev (0: must not exist). On a mismatch it returns the current item and
// false. On success it returns the new revision.
func (b *Backend) commit(key string, expectRev int64, next *item) (rev int64, current *item, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.getLocked(key)
	if (cur == nil && expectRev != 0) || (cur != nil && cur.rev != expectRev) {
		return 0, cur, false
	}
	if next == nil && cur == nil {
		return 0, nil, false
	}
	return b.applyLocked(key, cur, next), nil, true
}

// applyLocked records the change from cur to next at key under a new revision
// and hands it to the watchers.
func (b *Backend) applyLocked(key string, cur, next *item) int64 {
	b.rev++
	now := time.Now()
	b.lastWrite.Store(now.UnixNano())
	b.putLocked(key, cur, next, b.rev, now)
	return b.rev
}

// putLocked changes key from cur to next (nil: deleted) at revision rev,
// the current one: tree, index, lease, history and watchers.
// resourcesOfLocked returns the resources whose stores keep key (two when
// two groups share a resource's keys, as core and events.k8s.io Events
// do): those whose key prefix is the longest that key starts with.
func (b *Backend) resourcesOfLocked(key string) []schema.GroupResource {
	dir := key[:strings.LastIndexByte(key, '/')+1]
	if grs, ok := b.resourceOf[dir]; ok {
		return grs
	}
	var grs []schema.GroupResource
	longest := 0
	for gr, stores := range b.stores {
		for _, s := range stores {
			switch p := s.keyPrefix; {
			case !strings.HasPrefix(key, p) || len(p) < longest:
			case len(p) > longest:
				longest, grs = len(p), []schema.GroupResource{gr}
			case !slices.Contains(grs, gr):
				grs = append(grs, gr)
			}
		}
	}
	if len(b.resourceOf) > 10000 { // directories of namespaces long gone
		clear(b.resourceOf)
	}
	b.resourceOf[dir] = grs
	return grs
}

// LastRevision is the revision of the last write to a key of resource gr (0
// if none since start).
func (b *Backend) LastRevision(gr schema.GroupResource) int64 {
	if r, ok := b.resourceRev.Load(gr); ok {
		return r.(*atomic.Int64).Load()
	}
	return 0
}

func (b *Backend) putLocked(key string, cur, next *item, rev int64, now time.Time) {
	if cur != nil {
		b.unindexLocked(cur, next)
	}
	if next != nil {
		next.rev = rev
		b.tree.ReplaceOrInsert(next)
		b.indexLocked(next)
		if !next.expires.IsZero() {
			b.addLeaseLocked(next)
		}
	} else {
		b.tree.Delete(cur)
	}
	if cur != nil {
		// The replaced version lives on only in the history, where it is
		// read rarely (old revisions, watchers' previous objects): let its
		// decoded copy go; a reader that needs it decodes it again.
		cur.superseded.Store(true)
		cur.decoded.Store(nil)
		cur.fields.Store(nil)
	}
	for _, gr := range b.resourcesOfLocked(key) {
		r, ok := b.resourceRev.Load(gr)
		if !ok {
			r, _ = b.resourceRev.LoadOrStore(gr, new(atomic.Int64))
		}
		r.(*atomic.Int64).Store(rev)
	}
	ev := event{rev: rev, key: key, cur: next, prev: cur, at: now}
	b.history = append(b.history, ev)
	b.historyBytes += eventBytes(&b.history[len(b.history)-1])
	b.retainLocked(now)
	for w := range b.watchers {
		// A watch from a future revision sees only what comes after it, as
		// an etcd watch does.
		if ev.rev > w.startRev && w.matchesKey(key) {
			w.enqueue(watchEntry{event: ev})
		}
	}
}

// indexLocked adds it to the index.
func (b *Backend) indexLocked(it *item) {
	for _, k := range it.index {
		t := b.index[k]
		if t == nil {
			t = btree.NewG[*item](8, itemLess)
			b.index[k] = t
		}
		t.ReplaceOrInsert(it)
	}
}

// unindexLocked removes it from the index, except under the keys that next,
// the version replacing it, also has: indexing next replaces it there.
func (b *Backend) unindexLocked(it, next *item) {
	for _, k := range it.index {
		if next != nil && slices.Contains(next.index, k) {
			continue
		}
		if t := b.index[k]; t != nil {
			t.Delete(it)
			if t.Len() == 0 {
				delete(b.index, k)
			}
		}
	}
}

// fieldIndexes are the field indexes of the stores under one key prefix.
type fieldIndexes struct {
	names string // the indexed fields, sorted, comma-separated
	// broken: stores under the prefix disagree on names, or one came when
	// objects were already stored, so some items may lack entries.
	broken bool
}

// registerFieldIndexes records that a store maintains the field indexes
// names (sorted, comma-separated; "" for none) for the items it writes under
// prefix. Field indexes serve LISTs only while every store under a prefix
// (the versions of one resource) declares the same ones from the start.
func (b *Backend) registerFieldIndexes(prefix, names string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	reg, seen := b.fieldIndexes[prefix]
	switch {
	case !seen:
		reg.names = names
		if names != "" {
			b.tree.AscendRange(&item{key: prefix}, &item{key: prefixEnd(prefix)}, func(*item) bool {
				reg.broken = true
				return false
			})
		}
	case reg.names != names:
		reg.broken = true
	}
	b.fieldIndexes[prefix] = reg
}

// IndexedFields returns the fields whose exact values serve LISTs of the
// resource whose keys start with prefix (for pods in a server:
// "/registry/pods/" → spec.nodeName), from its registry's indexers.
func (b *Backend) IndexedFields(prefix string) []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	reg := b.fieldIndexes[prefix]
	if reg.broken || reg.names == "" {
		return nil
	}
	return strings.Split(reg.names, ",")
}

// fieldIndexesUsableLocked says whether the field indexes of the stores
// under prefix serve LISTs: every store there registered the same ones.
func (b *Backend) fieldIndexesUsableLocked(prefix string) bool {
	return !b.fieldIndexes[prefix].broken
}

// candidatesLocked returns the current items in [start, end) that carry the
// most selective of keys, in key order, and whether there was a key to use:
// the caller passes only keys that every item it can select carries.
// moreAfterLast says whether the range holds any key after the last
// candidate, which a paged list needs to know.
func (b *Backend) candidatesLocked(keys []indexKey, start, end string) (candidates []*item, moreAfterLast, ok bool) {
	var best *btree.BTreeG[*item]
	for _, k := range keys {
		t := b.index[k]
		if t == nil {
			// No item carries the key: nothing matches.
			return nil, false, true
		}
		if !ok || t.Len() < best.Len() {
			best, ok = t, true
		}
	}
	if !ok {
		return nil, false, false
	}
	best.AscendRange(&item{key: start}, &item{key: end}, func(it *item) bool {
		candidates = append(candidates, it)
		return true
	})
	if n := len(candidates); n > 0 {
		b.tree.AscendRange(&item{key: candidates[n-1].key + "\x00"}, &item{key: end}, func(*item) bool {
			moreAfterLast = true
			return false
		})
	}
	return candidates, moreAfterLast, true
}

// rangeAtLocked calls fn, in key order, with the items with start <= key < end
// as they were at revision rev, until fn returns false. The caller holds the
// lock and has checked that rev is readable: compacted <= rev <= b.rev.
func (b *Backend) rangeAtLocked(start, end string, rev int64, fn func(*item) bool) {
	if rev >= b.rev {
		b.tree.AscendRange(&item{key: start}, &item{key: end}, func(it *item) bool { return fn(it) })
		return
	}
	// Roll the changes made after rev back: the oldest event after rev for a
	// key carries that key's state at rev.
	overlay := map[string]*item{}
	for i := len(b.history) - 1; i >= 0 && b.history[i].rev > rev; i-- {
		ev := &b.history[i]
		if ev.key >= start && ev.key < end {
			overlay[ev.key] = ev.prev
		}
	}
	old := make([]*item, 0, len(overlay))
	for _, it := range overlay {
		if it != nil {
			old = append(old, it)
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].key < old[j].key })
	i := 0
	cont := true
	b.tree.AscendRange(&item{key: start}, &item{key: end}, func(it *item) bool {
		for i < len(old) && old[i].key < it.key {
			if cont = fn(old[i]); !cont {
				return false
			}
			i++
		}
		if _, changed := overlay[it.key]; changed {
			return true
		}
		cont = fn(it)
		return cont
	})
	for ; cont && i < len(old); i++ {
		cont = fn(old[i])
	}
}

// prefixEnd returns the smallest key greater than every key with the prefix,
// as clientv3.GetPrefixRangeEnd does.
func prefixEnd(prefix string) string {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return string(end[:i+1])
		}
	}
	return "\xff\xff\xff\xff" // no upper bound; keys here are printable
}

// countPrefix counts the current keys with the prefix and sums their sizes.
func (b *Backend) countPrefix(prefix string) (count, bytes int64) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	b.tree.AscendRange(&item{key: prefix}, &item{key: prefixEnd(prefix)}, func(it *item) bool {
		count++
		bytes += int64(len(it.data))
		return true
	})
	return count, bytes
}

// Keys returns the current keys with the prefix, in order.
func (b *Backend) Keys(prefix string) []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var keys []string
	b.tree.AscendRange(&item{key: prefix}, &item{key: prefixEnd(prefix)}, func(it *item) bool {
		keys = append(keys, it.key)
		return true
	})
	return keys
}

// --- leases ---

type lease struct {
	expires time.Time
	key     string
	rev     int64
}

type leaseHeap []lease

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h leaseHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *leaseHeap) Push(x any)        { *h = append(*h, x.(lease)) }
func (h *leaseHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// addLeaseLocked schedules the expiry of it, which has just been committed.
func (b *Backend) addLeaseLocked(it *item) {
	heap.Push(&b.leases, lease{expires: it.expires, key: it.key, rev: it.rev})
	if b.leases[0].rev == it.rev {
		b.scheduleLocked()
	}
}

func (b *Backend) scheduleLocked() {
	if b.closed || len(b.leases) == 0 {
		return
	}
	d := time.Until(b.leases[0].expires)
	if b.timer == nil {
		b.timer = time.AfterFunc(d, b.expire)
	} else {
		b.timer.Reset(d)
	}
}

// expire deletes the keys whose lease ran out, each with a DELETE event, as
// etcd does when a lease is revoked.
func (b *Backend) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	now := time.Now()
	for len(b.leases) > 0 && !b.leases[0].expires.After(now) {
		l := heap.Pop(&b.leases).(lease)
		if cur := b.getLocked(l.key); cur != nil && cur.rev == l.rev {
			b.applyLocked(l.key, cur, nil)
		}
	}
	b.scheduleLocked()
}

// --- watchers and progress ---

// LastWrite is when the key space last changed (zero if never).
func (b *Backend) LastWrite() time.Time {
	if n := b.lastWrite.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// WatchesDrained reports whether every open watch that selected picks (by
// the context it was opened with; nil picks all) has handed every event
// committed so far to its consumer: nothing is queued in the store for it,
// and its result channel holds no undelivered event.
func (b *Backend) WatchesDrained(selected func(context.Context) bool) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for w := range b.watchers {
		if (selected == nil || selected(w.ctx)) && !w.drained() {
			return false
		}
	}
	return true
}

func (b *Backend) addWatcherLocked(w *watchChan) {
	if b.closed {
		w.Stop()
		return
	}
	b.watchers[w] = struct{}{}
}

func (b *Backend) removeWatcher(w *watchChan) {
	b.mu.Lock()
	delete(b.watchers, w)
	b.mu.Unlock()
}

// notifyProgress queues a progress notification at the current revision for
// each watcher that the filter selects. Under the lock, so it is ordered after
// every event up to that revision.
func (b *Backend) notifyProgress(filter func(*watchChan) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w := range b.watchers {
		if filter(w) && b.rev >= w.startRev {
			w.enqueue(watchEntry{progress: true, event: event{rev: b.rev}})
		}
	}
}

// tick delivers the periodic progress notifications and bookmarks.
func (b *Backend) tick() {
	defer b.doneTicks.Done()
	progress := time.NewTicker(b.opts.ProgressNotifyInterval)
	defer progress.Stop()
	var bookmarks <-chan time.Time
	if b.opts.BookmarkInterval > 0 {
		t := time.NewTicker(b.opts.BookmarkInterval)
		defer t.Stop()
		bookmarks = t.C
	}
	for {
		select {
		case <-b.stop:
			return
		case <-progress.C:
			b.notifyProgress(func(w *watchChan) bool { return w.progressNotify })
		case <-bookmarks:
			b.notifyProgress(func(w *watchChan) bool { return w.pred.AllowWatchBookmarks && !w.progressNotify })
		}
	}
}

// hasPrefixKey reports whether key is selected by a watch on prefix.
func hasPrefixKey(key, prefix string, recursive bool) bool {
	if recursive {
		return strings.HasPrefix(key, prefix)
	}
	return key == prefix
}
