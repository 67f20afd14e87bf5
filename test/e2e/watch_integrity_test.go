package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// event is what a watch delivered of one change.
type event struct {
	typ       watch.EventType
	namespace string
	name      string
	rv        int64
	color     string
}

func (e event) String() string {
	return fmt.Sprintf("%s %s/%s@%d(%s)", e.typ, e.namespace, e.name, e.rv, e.color)
}

// watcher is one watch of ConfigMaps from the test's start, possibly ended
// by the server every second and resumed from the last resourceVersion it
// delivered, or a watch-list (initial events first).
type watcher struct {
	name      string
	namespace string // "" for all namespaces
	label     string
	field     string
	resume    bool
	watchList bool

	events    []event
	initial   []event // a watch-list's initial events
	initialRV int64   // and the resourceVersion of its initial-events-end bookmark
	bookmarks []int64
	stop      atomic.Int64 // the resourceVersion to watch up to, 0 while unknown
	last      atomic.Int64 // the last resourceVersion delivered
}

// matches says whether an object in this state is in the watcher's
// selection.
func (w *watcher) matches(namespace, name, color string) bool {
	sel, _ := labels.Parse(w.label)
	fsel, _ := fields.ParseSelector(w.field)
	return (w.namespace == "" || namespace == w.namespace) &&
		fsel.Matches(fields.Set{"metadata.namespace": namespace, "metadata.name": name}) &&
		sel.Matches(labels.Set{"color": color})
}

func (w *watcher) done() bool {
	stop := w.stop.Load()
	return stop > 0 && w.last.Load() >= stop
}

func (w *watcher) run(ctx context.Context, c kubernetes.Interface, rv string) error {
	watchList := w.watchList // the first watch only; a resumed one is plain
	for !w.done() {
		opts := metav1.ListOptions{ResourceVersion: rv, LabelSelector: w.label, FieldSelector: w.field, AllowWatchBookmarks: true}
		if w.resume {
			opts.TimeoutSeconds = ptr.To[int64](1) // the server ends it
		}
		initialDone := true
		if watchList {
			opts.SendInitialEvents = ptr.To(true)
			opts.ResourceVersionMatch = metav1.ResourceVersionMatchNotOlderThan
			initialDone = false
		}
		wi, err := c.CoreV1().ConfigMaps(w.namespace).Watch(ctx, opts)
		if err != nil {
			return err
		}
		tick := time.NewTicker(50 * time.Millisecond)
	read:
		for {
			select {
			case ev, ok := <-wi.ResultChan():
				if !ok {
					break read
				}
				if ev.Type == watch.Error {
					wi.Stop()
					tick.Stop()
					return fmt.Errorf("watch error: %v", apierrors.FromObject(ev.Object))
				}
				cm := ev.Object.(*corev1.ConfigMap)
				r, err := strconv.ParseInt(cm.ResourceVersion, 10, 64)
				if err != nil {
					return err
				}
				switch {
				case ev.Type == watch.Bookmark && !initialDone && cm.Annotations[metav1.InitialEventsAnnotationKey] == "true":
					initialDone, w.initialRV = true, r
					w.bookmarks = append(w.bookmarks, r)
				case ev.Type == watch.Bookmark:
					w.bookmarks = append(w.bookmarks, r)
				case !initialDone:
					w.initial = append(w.initial, event{ev.Type, cm.Namespace, cm.Name, r, cm.Labels["color"]})
					continue // the initial events carry the objects' own versions
				default:
					w.events = append(w.events, event{ev.Type, cm.Namespace, cm.Name, r, cm.Labels["color"]})
				}
				rv = cm.ResourceVersion
				w.last.Store(r)
				if w.done() {
					break read
				}
			case <-tick.C:
				if w.done() {
					break read
				}
			case <-ctx.Done():
				break read
			}
		}
		wi.Stop()
		tick.Stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		watchList = false
	}
	return nil
}

// Watch integrity: while writers make 20,000 mixed writes (creates,
// updates that move objects in and out of label selections, deletes) across
// four namespaces, ten watchers with label and field selectors, some ended
// by the server every second and resumed from the last resourceVersion they
// saw, one a watch-list, each see every event meant for them exactly once
// and in order, as the unfiltered watch shows the writes; bookmarks never go
// backwards; an informer's cache ends equal to a fresh LIST.
func TestWatchIntegrity(t *testing.T) {
	const writes, writers, perWriter = 20000, 8, 40
	c := shared.client(t)
	var nss []string
	for range 4 {
		nss = append(nss, newNamespace(t, c))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	began := time.Now()
	defer cancel()
	start, err := c.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	startRV := start.ResourceVersion

	nsField := "metadata.namespace=" + nss[1]
	watchers := []*watcher{
		{name: "all"}, // the reference: unfiltered, never ended
		{name: "all, resumed", resume: true},
		{name: "all, watch-list", watchList: true},
		{name: "red", label: "color=red"},
		{name: "red, resumed", label: "color=red", resume: true},
		{name: "not blue", label: "color!=blue"},
		{name: "namespace 0", namespace: nss[0]},
		{name: "namespace 2, resumed", namespace: nss[2], resume: true},
		{name: "field: namespace 1", field: nsField},
		{name: "field and label", field: nsField, label: "color in (red,green)"},
		{name: "one name", field: "metadata.name=cm-3-7"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(watchers)+writers)
	for _, w := range watchers {
		client := shared.client(t)
		wg.Go(func() {
			if err := w.run(ctx, client, startRV); err != nil {
				errs <- fmt.Errorf("watcher %s: %w", w.name, err)
			}
		})
	}
	informerClient := shared.client(t)
	factory := informers.NewSharedInformerFactory(informerClient, 0)
	cmInformer := factory.Core().V1().ConfigMaps().Informer()
	factory.Start(ctx.Done())
	defer func() {
		cancel() // the informer stops with ctx
		factory.Shutdown()
	}()

	// The writers: each owns perWriter names in every namespace and
	// creates, updates (moving the color label) and deletes them at random.
	colors := []string{"red", "green", "blue"}
	var writeWG sync.WaitGroup
	for i := range writers {
		client := shared.client(t)
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		writeWG.Go(func() {
			live := map[string]bool{}
			for n := range writes / writers {
				name := fmt.Sprintf("cm-%d-%d", i, rng.IntN(perWriter))
				ns := nss[rng.IntN(len(nss))]
				key := ns + "/" + name
				color := colors[rng.IntN(len(colors))]
				var err error
				switch {
				case !live[key]:
					_, err = client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"color": color}},
						Data: map[string]string{"n": strconv.Itoa(n)}}, metav1.CreateOptions{})
					live[key] = true
				case rng.IntN(4) == 0:
					err = client.CoreV1().ConfigMaps(ns).Delete(ctx, name, metav1.DeleteOptions{})
					live[key] = false
				default:
					patch := fmt.Sprintf(`{"metadata":{"labels":{"color":%q}},"data":{"n":"%d"}}`, color, n)
					_, err = client.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
				}
				if err != nil {
					errs <- fmt.Errorf("write %d of writer %d: %w", n, i, err)
					return
				}
			}
		})
	}
	writeWG.Wait()
	t.Logf("%d writes by %d clients in %v", writes, writers, time.Since(began).Round(time.Millisecond))

	// Markers after the writes, one in every watcher's selection: each
	// watcher watches until the last marker it must see.
	type marker struct {
		namespace, name, color string
		rv                     int64
	}
	var markers []marker
	for _, ns := range nss {
		m, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "marker", Labels: map[string]string{"color": "red"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		markers = append(markers, marker{ns, "marker", "red", mustInt(m.ResourceVersion)})
	}
	m, err := c.CoreV1().ConfigMaps(nss[0]).Apply(ctx, corev1apply.ConfigMap("cm-3-7", nss[0]).WithLabels(map[string]string{"color": "red"}).WithData(map[string]string{"marker": "yes"}),
		metav1.ApplyOptions{FieldManager: "marker", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	markers = append(markers, marker{nss[0], "cm-3-7", "red", mustInt(m.ResourceVersion)})
	for _, w := range watchers {
		for _, m := range markers {
			if w.matches(m.namespace, m.name, m.color) && m.rv > w.stop.Load() {
				w.stop.Store(m.rv)
			}
		}
		if w.stop.Load() == 0 {
			t.Fatalf("watcher %s sees no marker", w.name)
		}
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		for _, w := range watchers {
			if !w.done() {
				t.Errorf("watcher %s at %d, to watch up to %d", w.name, w.last.Load(), w.stop.Load())
			}
		}
		t.FailNow()
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	// The reference: increasing resourceVersions and one event per write.
	ref := watchers[0].events
	for i := 1; i < len(ref); i++ {
		if ref[i].rv <= ref[i-1].rv {
			t.Fatalf("unfiltered watch out of order at %d: %s after %s", i, ref[i], ref[i-1])
		}
	}
	ours := 0 // the namespaces also get their kube-root-ca.crt ConfigMap
	for _, e := range ref {
		if slices.Contains(nss, e.namespace) && e.name != "kube-root-ca.crt" {
			ours++
		}
	}
	if ours != writes+len(markers) {
		t.Errorf("unfiltered watch: %d events of the test's objects for %d writes and %d markers", ours, writes, len(markers))
	}
	checked := 0
	for _, w := range watchers[1:] {
		from := int64(0)
		if w.watchList && w.initialRV == 0 {
			t.Errorf("watcher %s: no initial-events-end bookmark", w.name)
		}
		if w.initialRV > 0 {
			// A watch-list: its initial events are the objects as of its
			// bookmark, and its events follow from there.
			from = w.initialRV
			state := map[string]event{}
			for _, cm := range start.Items {
				state[cm.Namespace+"/"+cm.Name] = event{watch.Added, cm.Namespace, cm.Name, mustInt(cm.ResourceVersion), cm.Labels["color"]}
			}
			for _, e := range ref {
				if e.rv > from {
					break
				}
				if e.typ == watch.Deleted {
					delete(state, e.namespace+"/"+e.name)
				} else {
					state[e.namespace+"/"+e.name] = event{watch.Added, e.namespace, e.name, e.rv, e.color}
				}
			}
			var want []event
			for _, e := range state {
				want = append(want, e)
			}
			byKey := func(a, b event) int { return strings.Compare(a.namespace+"/"+a.name, b.namespace+"/"+b.name) }
			slices.SortFunc(want, byKey)
			got := slices.SortedFunc(slices.Values(w.initial), byKey)
			if !slices.Equal(got, want) {
				t.Errorf("watcher %s: %d initial events, want the %d objects as of %d", w.name, len(got), len(want), from)
			}
		}
		want := expected(ref, w, from, start.Items)
		if !slices.Equal(w.events, want) {
			i := 0
			for i < len(w.events) && i < len(want) && w.events[i] == want[i] {
				i++
			}
			t.Errorf("watcher %s: %d events, want %d; first difference at %d: got %v, want %v", w.name, len(w.events), len(want), i, at(w.events, i), at(want, i))
		}
		for i := 1; i < len(w.bookmarks); i++ {
			if w.bookmarks[i] < w.bookmarks[i-1] {
				t.Errorf("watcher %s: bookmark %d after %d", w.name, w.bookmarks[i], w.bookmarks[i-1])
			}
		}
		checked += len(w.events) + len(w.initial)
	}
	t.Logf("%d events in the unfiltered watch; %d events of %d other watchers checked against it", len(ref), checked, len(watchers)-1)

	// The informer's cache comes to equal a fresh LIST (no ConfigMap is
	// written any more).
	list, err := c.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var diff []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		inCache := map[string]string{}
		for _, o := range cmInformer.GetStore().List() {
			cm := o.(*corev1.ConfigMap)
			inCache[cm.Namespace+"/"+cm.Name] = cm.ResourceVersion
		}
		diff = nil
		for _, cm := range list.Items {
			if rv, ok := inCache[cm.Namespace+"/"+cm.Name]; !ok || rv != cm.ResourceVersion {
				diff = append(diff, fmt.Sprintf("%s/%s at %q, the LIST has %s", cm.Namespace, cm.Name, rv, cm.ResourceVersion))
			}
			delete(inCache, cm.Namespace+"/"+cm.Name)
		}
		for k := range inCache {
			diff = append(diff, k+" is not in the LIST")
		}
		if len(diff) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(diff) > 0 {
		t.Errorf("the informer's cache differs from a LIST: %v", diff)
	}
	t.Logf("the informer's cache equals a LIST of %d ConfigMaps", len(list.Items))
}

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func at(es []event, i int) any {
	if i < len(es) {
		return es[i]
	}
	return "nothing"
}

// expected is what watcher w should see of the unfiltered stream after
// resourceVersion from, the objects of the initial LIST existing before: the changes in its selection, a change that moves
// an object into a label selection as ADDED and out of it as DELETED, as
// the API server sends them.
func expected(ref []event, w *watcher, from int64, initial []corev1.ConfigMap) []event {
	last := map[string]event{} // the objects as they were, from the start LIST on
	for _, cm := range initial {
		last[cm.Namespace+"/"+cm.Name] = event{watch.Added, cm.Namespace, cm.Name, mustInt(cm.ResourceVersion), cm.Labels["color"]}
	}
	var out []event
	for _, e := range ref {
		key := e.namespace + "/" + e.name
		prev, had := last[key]
		was := had && prev.typ != watch.Deleted && w.matches(prev.namespace, prev.name, prev.color)
		last[key] = e
		if e.rv <= from {
			continue
		}
		is := e.typ != watch.Deleted && w.matches(e.namespace, e.name, e.color)
		switch {
		case e.typ == watch.Deleted && was:
			out = append(out, e)
		case e.typ == watch.Deleted:
		case was && is:
			out = append(out, event{watch.Modified, e.namespace, e.name, e.rv, e.color})
		case is:
			out = append(out, event{watch.Added, e.namespace, e.name, e.rv, e.color})
		case was:
			// Leaving the selection: DELETED with the object as it was,
			// at the change's resourceVersion (as the watch cache sends it).
			out = append(out, event{watch.Deleted, e.namespace, e.name, e.rv, prev.color})
		}
	}
	return out
}
