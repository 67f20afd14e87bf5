package storage

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apistorage "k8s.io/apiserver/pkg/storage"
)

// State is the key space at one revision, kept to be restored later: a
// copy-on-write clone of the tree, so taking it costs little and later
// writes do not change it.
type State struct {
	tree *btree.BTreeG[*item]
	rev  int64

	// items is the tree's items in key order, for the restores of a state
	// taken once and restored many times (the reset baseline).
	itemsOnce sync.Once
	items     []*item
}

// sorted returns the state's items in key order. Only once the state is
// complete (Put no more).
func (s *State) sorted() []*item {
	s.itemsOnce.Do(func() {
		s.items = make([]*item, 0, s.tree.Len())
		s.tree.Ascend(func(it *item) bool {
			s.items = append(s.items, it)
			return true
		})
	})
	return s.items
}

// Revision is the revision the state was taken at.
func (s *State) Revision() int64 { return s.rev }

// Len is the number of keys in the state.
func (s *State) Len() int { return s.tree.Len() }

// NewState returns an empty state, to Put objects into and Restore.
func NewState() *State { return &State{tree: btree.NewG[*item](32, itemLess)} }

// sameVersion reports whether the store's item cur holds the state's
// version old: the same item, or (once restored before, the store holds a
// copy) the same bytes and expiry.
func sameVersion(old, cur *item) bool {
	return old == cur || (bytes.Equal(old.data, cur.data) && old.expires.Equal(cur.expires))
}

func (b *Backend) registerStore(s *store) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stores[s.groupResource] = append([]*store{s}, b.stores[s.groupResource]...)
	clear(b.resourceOf)
}

// Put adds obj, an object of resource gr of the type its registry stores
// (internal for built-in types, unstructured for custom resources), to st
// at its key, encoded as the resource's store encodes it. A state is
// complete once restored: Put before the first Restore.
func (b *Backend) Put(ctx context.Context, st *State, gr schema.GroupResource, obj runtime.Object) error {
	b.mu.RLock()
	stores := b.stores[gr]
	b.mu.RUnlock()
	if len(stores) == 0 {
		return fmt.Errorf("no storage for %s", gr)
	}
	s := stores[0]
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	key := s.keyPrefix + m.GetName()
	if ns := m.GetNamespace(); ns != "" {
		key = s.keyPrefix + ns + "/" + m.GetName()
	}
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return err
	}
	data, err := runtime.Encode(s.codec, obj)
	if err != nil {
		return err
	}
	it, err := s.newItem(ctx, key, data, obj, 0)
	if err != nil {
		return err
	}
	st.tree.ReplaceOrInsert(it)
	return nil
}

// NewObject returns an empty object of the type resource gr stores (nil if
// no store of gr exists).
func (b *Backend) NewObject(gr schema.GroupResource) runtime.Object {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if stores := b.stores[gr]; len(stores) > 0 && stores[0].newFunc != nil {
		return stores[0].newFunc()
	}
	return nil
}

// Current returns the object stored at the key obj would have in resource
// gr, decoded into into; false if there is none.
func (b *Backend) Current(ctx context.Context, gr schema.GroupResource, namespace, name string, into runtime.Object) (bool, error) {
	b.mu.RLock()
	stores := b.stores[gr]
	b.mu.RUnlock()
	if len(stores) == 0 {
		return false, fmt.Errorf("no storage for %s", gr)
	}
	s := stores[0]
	key := "/" + strings.TrimPrefix(s.keyPrefix, s.pathPrefix) + name
	if namespace != "" {
		key = "/" + strings.TrimPrefix(s.keyPrefix, s.pathPrefix) + namespace + "/" + name
	}
	err := s.Get(ctx, key, apistorage.GetOptions{}, into)
	if apistorage.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// State returns the current key space.
func (b *Backend) State() *State {
	b.mu.Lock() // Clone writes to the tree's copy-on-write bookkeeping
	defer b.mu.Unlock()
	return &State{tree: b.tree.Clone(), rev: b.rev}
}

// Restore makes the key space what it was in s, in one new revision, as one
// etcd transaction would: every key that differs from s is deleted, put back
// or rewritten at that revision, with a watch event each, so that open
// watches (and the informers behind them) follow at once; keys unchanged
// since s keep their revision. The history before the new revision is
// compacted: a watch or read at an older resourceVersion gets 410 Gone, and
// its informer re-lists. It returns the new revision and the number of keys
// changed; when none differs, nothing is written (the revision stays).
//
// The keys of the resources in first change first, in that order (within one
// revision, watchers get the events in this order): a controller that sees
// its own objects change before their dependents does not act on dependents
// whose owner is about to change too.
func (b *Backend) Restore(s *State, first ...schema.GroupResource) (rev int64, changed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	live := func(it *item) bool { return it.expires.IsZero() || it.expires.After(now) }

	type change struct{ cur, next *item }
	var changes, added []change
	// One walk through both trees side by side (both are in key order):
	// a lookup per key would cost a tree descent for each unchanged one.
	olds := s.sorted()
	j := 0
	putBack := func(old *item) {
		if live(old) {
			added = append(added, change{next: old})
		}
	}
	b.tree.Ascend(func(cur *item) bool {
		for ; j < len(olds) && olds[j].key < cur.key; j++ {
			putBack(olds[j])
		}
		switch {
		case j == len(olds) || olds[j].key != cur.key:
			changes = append(changes, change{cur: cur})
		case !live(olds[j]):
			changes = append(changes, change{cur: cur})
			j++
		case !sameVersion(olds[j], cur):
			changes = append(changes, change{cur: cur, next: olds[j]})
			j++
		default:
			j++
		}
		return true
	})
	for _, old := range olds[j:] {
		putBack(old)
	}
	changes = append(changes, added...)
	if len(changes) == 0 {
		// Nothing to restore: no revision, nothing for watches to see.
		return b.rev, 0
	}
	if len(first) > 0 {
		rank := func(c change) int {
			key := c.cur
			if key == nil {
				key = c.next
			}
			for _, gr := range b.resourcesOfLocked(key.key) {
				if i := slices.Index(first, gr); i >= 0 {
					return i
				}
			}
			return len(first)
		}
		slices.SortStableFunc(changes, func(a, b change) int { return rank(a) - rank(b) })
	}
	b.rev++
	rev = b.rev
	for _, c := range changes {
		key := ""
		var next *item
		if c.next != nil {
			// Items are immutable and carry their revision: the restored
			// version is a new item, decoded afresh when read.
			key = c.next.key
			next = &item{key: key, data: c.next.data, expires: c.next.expires, index: c.next.index}
		} else {
			key = c.cur.key
		}
		b.putLocked(key, c.cur, next, rev, now)
	}
	b.compactLocked(rev - 1)
	b.lastWrite.Store(now.UnixNano())
	return rev, len(changes)
}
