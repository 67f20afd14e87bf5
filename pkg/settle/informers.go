package settle

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
)

// InformerGrace bounds how long an informer behind the store keeps the
// cluster busy with nothing arriving: one that never sees a write (a
// deletion it learned of only by re-listing carries an older
// resourceVersion) must not hold it forever.
const InformerGrace = time.Second

// informerState is how far one in-process informer's handlers got.
type informerState struct {
	name string
	gr   schema.GroupResource
	// seen is the largest resourceVersion its handlers were given;
	// arrived is when one last arrived (Unix ns).
	seen, arrived atomic.Int64
}

// Informer follows an in-process informer of resource gr: the cluster is
// busy while the store holds a write of gr newer than anything its handlers
// were given. That closes most of the gap between a watch event leaving the
// server and a controller reacting to it (the wire, decoding, the informer's
// queue); the quiet window covers the rest.
func (t *Tracker) Informer(name string, gr schema.GroupResource, informer cache.SharedInformer) error {
	if t == nil {
		return nil
	}
	st := &informerState{name: name, gr: gr}
	observe := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return
		}
		rv, err := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
		if err != nil {
			return
		}
		st.arrived.Store(time.Now().UnixNano())
		for {
			cur := st.seen.Load()
			if rv <= cur || st.seen.CompareAndSwap(cur, rv) {
				return
			}
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: observe,
	}); err != nil {
		return err
	}
	t.mu.Lock()
	t.informers = append(t.informers, st)
	t.mu.Unlock()
	return nil
}

// busy says how far the informer is behind the store, "" if it is not (or
// if nothing arrived for InformerGrace since the store's write). Once it
// caught up, the quiet window runs from the last arrival: that is when the
// informer's other handlers (the controllers') start on it; remaining is
// what is left of that window (0 while the informer is behind).
func (st *informerState) busy(store Store, now time.Time, quiet time.Duration) (s string, remaining time.Duration) {
	rev := store.LastRevision(st.gr)
	seen := st.seen.Load()
	if seen >= rev {
		if since := now.Sub(time.Unix(0, st.arrived.Load())); since < quiet {
			return fmt.Sprintf("informer %s of %s handed an event %v ago", st.name, st.gr, since.Round(time.Microsecond)), quiet - since
		}
		return "", 0
	}
	since := max(st.arrived.Load(), store.LastWrite().UnixNano())
	if now.Sub(time.Unix(0, since)) >= InformerGrace {
		st.seen.CompareAndSwap(seen, rev) // it will not see that one
		return "", 0
	}
	return fmt.Sprintf("informer %s of %s at resourceVersion %d, the store at %d", st.name, st.gr, seen, rev), 0
}

// Factory follows every informer factory f has started, once they synced
// (or stop closed); informers started later are not followed, nor those of
// the types in except (an informer filtered by a selector does not see
// every write of its resource: kube-scheduler's of pods).
func (t *Tracker) Factory(name string, f informers.SharedInformerFactory, stop <-chan struct{}, except ...runtime.Object) error {
	if t == nil {
		return nil
	}
	for typ, synced := range f.WaitForCacheSync(stop) {
		if !synced || slices.ContainsFunc(except, func(o runtime.Object) bool { return reflect.TypeOf(o) == typ }) {
			continue
		}
		obj, ok := reflect.New(typ.Elem()).Interface().(runtime.Object)
		if !ok {
			continue
		}
		gvks, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil || len(gvks) == 0 {
			continue
		}
		plural, _ := meta.UnsafeGuessKindToResource(gvks[0])
		if err := t.Informer(name, plural.GroupResource(), f.InformerFor(obj, nil)); err != nil {
			return err
		}
	}
	return nil
}
