package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	apistorage "k8s.io/apiserver/pkg/storage"
	"k8s.io/client-go/tools/cache"
)

// TestIndex checks the LISTs that the index serves against the same LISTs
// served by a scan of every item: each indexed selector has a twin that
// matches exactly the same objects but cannot use the index (label
// requirements written as multi-value "in", which the index does not use;
// field selectors without the predicate's IndexFields). Items, pages,
// continue tokens and remaining counts must agree, after creates, label and
// node changes and deletes.
func TestIndex(t *testing.T) {
	for _, m := range readModes {
		t.Run(m.name, func(t *testing.T) {
			ctx, s := testSetup(t, append(m.opts, withAttrFunc(podNodeAttrs))...)
			rnd := rand.New(rand.NewPCG(1, 2))
			randomLabels := func() map[string]string {
				l := map[string]string{}
				if v := rnd.IntN(4); v < 3 {
					l["app"] = string(rune('a' + v))
				}
				if v := rnd.IntN(3); v < 2 {
					l["tier"] = string(rune('x' + v))
				}
				return l
			}
			randomNode := func() string { return []string{"", "n1", "n2", "n3"}[rnd.IntN(4)] }
			var keys []string
			for i := range 300 {
				ns := fmt.Sprintf("ns%d", i%3)
				name := fmt.Sprintf("p%03d", rnd.IntN(1000))
				key := "/pods/" + ns + "/" + name
				pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: randomLabels()}, Spec: example.PodSpec{NodeName: randomNode()}}
				if err := s.Create(ctx, key, pod, nil, 0); err == nil {
					keys = append(keys, key)
				}
			}
			relabel := func(n int) {
				for range n {
					key := keys[rnd.IntN(len(keys))]
					err := s.GuaranteedUpdate(ctx, key, &example.Pod{}, true, nil, func(obj runtime.Object, _ apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
						pod := obj.(*example.Pod)
						if rnd.IntN(2) == 0 {
							pod.Labels = randomLabels()
						} else {
							pod.Spec.NodeName = randomNode()
						}
						return pod, nil, nil
					}, nil)
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			relabel(200)
			for range 50 {
				i := rnd.IntN(len(keys))
				if err := s.Delete(ctx, keys[i], &example.Pod{}, nil, apistorage.ValidateAllObjectFunc, nil, apistorage.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				keys = slices.Delete(keys, i, i+1)
			}

			// Each pair: label selector and field selector, indexed, then
			// their scanned twins. The twins are also matched without the
			// field sets the store keeps per object.
			pairs := [][4]string{
				{"app=a", "", "app in (a,zz)", ""},
				{"app==b,tier=x", "", "app in (b,zz),tier in (x,zz)", ""},
				{"app in (c)", "", "app in (c,zz)", ""},
				{"tier=y,app!=a", "", "tier in (y,zz),app!=a", ""},
				{"app=a,tier", "", "app in (a,zz),tier", ""},
				{"missing=1", "", "missing in (1,zz)", ""},
				{"", "spec.nodeName=n1", "", "spec.nodeName=n1"},
				{"", "spec.nodeName=", "", "spec.nodeName="},
				{"", "spec.nodeName==n2,metadata.name!=p500", "", "spec.nodeName==n2,metadata.name!=p500"},
				{"", "spec.nodeName=nowhere", "", "spec.nodeName=nowhere"},
				{"", "spec.nodeName!=n1", "", "spec.nodeName!=n1"},
				{"", "spec.nodeName!=n1,spec.nodeName!=", "", "spec.nodeName!=n1,spec.nodeName!="},
				{"app=b", "spec.nodeName=n3", "app in (b,zz)", "spec.nodeName=n3"},
				{"tier=x", "spec.nodeName!=n3", "tier in (x,zz)", "spec.nodeName!=n3"},
				{"", "metadata.name!=p007", "", "metadata.name!=p007"},
				{"app=a", "metadata.namespace=ns1", "app in (a,zz)", "metadata.namespace=ns1"},
				{"", "metadata.name=p511,spec.nodeName!=", "", "metadata.name=p511,spec.nodeName!="},
			}
			list := func(key string, sel labels.Selector, field fields.Selector, indexFields []string, limit int64, cont string) *example.PodList {
				t.Helper()
				out := &example.PodList{}
				pred := apistorage.SelectionPredicate{Label: sel, Field: field, IndexFields: indexFields, Limit: limit, Continue: cont, GetAttrs: podNodeAttrs}
				if indexFields == nil {
					// Another function than the store's: fields built per object.
					pred.GetAttrs = func(obj runtime.Object) (labels.Set, fields.Set, error) { return podNodeAttrs(obj) }
				}
				if err := s.GetList(ctx, key, apistorage.ListOptions{Predicate: pred, Recursive: true}, out); err != nil {
					t.Fatal(err)
				}
				return out
			}
			// names identifies the listed versions: the index must hold
			// the current version of every object, not only its name.
			names := func(l *example.PodList) []string {
				var n []string
				for _, p := range l.Items {
					n = append(n, p.Namespace+"/"+p.Name+"@"+p.ResourceVersion)
				}
				return n
			}
			total := 0
			for _, prefix := range []string{"/pods/", "/pods/ns1"} {
				for _, p := range pairs {
					indexed, scanned := mustParse(t, p[0]), mustParse(t, p[2])
					indexedField, scannedField := mustParseFields(t, p[1]), mustParseFields(t, p[3])
					// The scan is the reference: it must agree with a
					// plain filter of the full list.
					var want []string
					for _, pod := range list(prefix, labels.Everything(), fields.Everything(), nil, 0, "").Items {
						_, f, _ := podNodeAttrs(&pod)
						if scanned.Matches(labels.Set(pod.Labels)) && scannedField.Matches(f) {
							want = append(want, pod.Namespace+"/"+pod.Name+"@"+pod.ResourceVersion)
						}
					}
					for _, limit := range []int64{0, 1, 3, 10, 1000} {
						var got []string
						ci, cs := "", ""
						for page := 0; ; page++ {
							li, ls := list(prefix, indexed, indexedField, []string{"spec.nodeName"}, limit, ci), list(prefix, scanned, scannedField, nil, limit, cs)
							if !slices.Equal(names(li), names(ls)) || li.Continue != ls.Continue || li.ResourceVersion != ls.ResourceVersion ||
								(li.RemainingItemCount == nil) != (ls.RemainingItemCount == nil) {
								t.Fatalf("%s %q limit %d page %d: index %v (continue %q, rv %s) != scan %v (continue %q, rv %s)",
									prefix, p[:2], limit, page, names(li), li.Continue, li.ResourceVersion, names(ls), ls.Continue, ls.ResourceVersion)
							}
							got = append(got, names(li)...)
							if li.Continue == "" {
								break
							}
							ci, cs = li.Continue, ls.Continue
						}
						if !slices.Equal(got, want) {
							t.Fatalf("%s %q limit %d: got %v, want %v", prefix, p[:2], limit, got, want)
						}
						total += len(got)
					}
				}
				relabel(20)
			}
			if total == 0 {
				t.Fatal("no selector matched anything: the test data is wrong")
			}
		})
	}
}

// podNodeAttrs are an example pod's labels and fields with spec.nodeName, as
// the pod registry's GetAttrs gives them.
func podNodeAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	pod := obj.(*example.Pod)
	return labels.Set(pod.Labels), fields.Set{"metadata.name": pod.Name, "metadata.namespace": pod.Namespace, "spec.nodeName": pod.Spec.NodeName}, nil
}

func mustParseFields(t *testing.T, s string) fields.Selector {
	t.Helper()
	sel, err := fields.ParseSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func mustParse(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// TestLabelIndexFollowsWrites checks that a label-selected LIST sees a label
// added, changed and removed, the object deleted, and a lease expiring.
func TestLabelIndexFollowsWrites(t *testing.T) {
	ctx, s := testSetup(t)
	count := func(sel string) int {
		t.Helper()
		out := &example.PodList{}
		pred := apistorage.SelectionPredicate{Label: mustParse(t, sel), Field: fields.Everything(), GetAttrs: apistorage.DefaultClusterScopedAttr}
		if err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Predicate: pred, Recursive: true}, out); err != nil {
			t.Fatal(err)
		}
		return len(out.Items)
	}
	setLabels := func(l map[string]string) {
		t.Helper()
		err := s.GuaranteedUpdate(ctx, "/pods/ns/foo", &example.Pod{}, false, nil, func(obj runtime.Object, _ apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
			pod := obj.(*example.Pod)
			pod.Labels = l
			return pod, nil, nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(t, ctx, s, "foo") // a=b
	steps := []struct {
		do   func()
		sel  string
		want int
	}{
		{func() {}, "a=b", 1},
		{func() { setLabels(map[string]string{"a": "c"}) }, "a=b", 0},
		{func() {}, "a=c", 1},
		{func() { setLabels(map[string]string{"a": "c", "d": "e"}) }, "d=e", 1},
		{func() { setLabels(nil) }, "a=c", 0},
		{func() { setLabels(map[string]string{"a": "b"}) }, "a=b", 1},
		{func() {
			if err := s.Delete(ctx, "/pods/ns/foo", &example.Pod{}, nil, apistorage.ValidateAllObjectFunc, nil, apistorage.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, "a=b", 0},
	}
	for i, st := range steps {
		st.do()
		if got := count(st.sel); got != st.want {
			t.Fatalf("step %d: %q lists %d, want %d", i, st.sel, got, st.want)
		}
	}
	if n := len(s.b.index); n != 0 { // no writer left: no lock needed
		t.Fatalf("label index keeps %d entries after every object is gone", n)
	}

	// A lease that runs out removes the object from the index too.
	pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ttl", Labels: map[string]string{"a": "b"}}}
	if err := s.Create(ctx, "/pods/ns/ttl", pod, nil, 1); err != nil {
		t.Fatal(err)
	}
	if got := count("a=b"); got != 1 {
		t.Fatalf("before expiry: %d", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count("a=b") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the expired object is still listed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.b.mu.RLock()
	n := len(s.b.index)
	s.b.mu.RUnlock()
	if n != 0 {
		t.Fatalf("label index keeps %d entries after the lease expired", n)
	}
}

// TestFieldIndexAcrossStores checks that LISTs by an indexed field still see
// every object when stores under one prefix disagree on the field indexes
// (one writes without them) or one comes after objects were stored: the
// index must not be used then. Stores that agree share it.
func TestFieldIndexAcrossStores(t *testing.T) {
	newStoreAt := func(t *testing.T, b *Backend, resourcePrefix string, indexers *cache.Indexers) *store {
		s, err := NewStore(b, Config{
			Codec:          apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion),
			NewFunc:        func() runtime.Object { return &example.Pod{} },
			NewListFunc:    func() runtime.Object { return &example.PodList{} },
			ResourcePrefix: resourcePrefix,
			GroupResource:  schema.GroupResource{Resource: "pods"},
			Indexers:       indexers,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s.(*store)
	}
	newStore := func(t *testing.T, b *Backend, indexers *cache.Indexers) *store {
		return newStoreAt(t, b, "/pods", indexers)
	}
	create := func(t *testing.T, s *store, name string) {
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: example.PodSpec{NodeName: "n1"}}
		if err := s.Create(context.Background(), s.resourcePrefix+"/ns/"+name, pod, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	onNode := func(t *testing.T, s *store) int {
		out := &example.PodList{}
		pred := apistorage.SelectionPredicate{Label: labels.Everything(), Field: fields.OneTermEqualSelector("spec.nodeName", "n1"), IndexFields: []string{"spec.nodeName"}, GetAttrs: podNodeAttrs}
		if err := s.GetList(context.Background(), "/pods/", apistorage.ListOptions{Predicate: pred, Recursive: true}, out); err != nil {
			t.Fatal(err)
		}
		return len(out.Items)
	}
	usable := func(s *store) bool {
		s.b.mu.RLock()
		defer s.b.mu.RUnlock()
		return s.b.fieldIndexesUsableLocked(s.keyPrefix)
	}
	t.Run("objects stored before the indexed store", func(t *testing.T) {
		b := NewBackend(Options{})
		t.Cleanup(b.Close)
		create(t, newStore(t, b, nil), "a")
		indexed := newStore(t, b, nodeNameIndexers())
		create(t, indexed, "b")
		if got := onNode(t, indexed); got != 2 || usable(indexed) {
			t.Fatalf("listed %d of 2, index used: %v", got, usable(indexed))
		}
	})
	t.Run("a store without the index writes too", func(t *testing.T) {
		b := NewBackend(Options{})
		t.Cleanup(b.Close)
		indexed := newStore(t, b, nodeNameIndexers())
		plain := newStore(t, b, nil)
		create(t, indexed, "a")
		create(t, plain, "b")
		if got := onNode(t, indexed); got != 2 || usable(indexed) {
			t.Fatalf("listed %d of 2, index used: %v", got, usable(indexed))
		}
	})
	t.Run("stores that agree share the index", func(t *testing.T) {
		b := NewBackend(Options{})
		t.Cleanup(b.Close)
		v1, v2 := newStore(t, b, nodeNameIndexers()), newStore(t, b, nodeNameIndexers())
		create(t, v1, "a")
		create(t, v2, "b")
		if got := onNode(t, v1); got != 2 || !usable(v1) || !usable(v2) {
			t.Fatalf("listed %d of 2, index used: %v, %v", got, usable(v1), usable(v2))
		}
		// A store of another resource does not affect the prefix.
		create(t, newStoreAt(t, b, "/podsx", nil), "c")
		if !usable(v1) {
			t.Fatal("another prefix's store turned the index off")
		}
	})
}

// TestFieldsKeptPerStore checks that the field sets kept per object belong
// to the store whose registry GetAttrs made them: two stores over the same
// objects (as the versions of a custom resource, whose selectable fields may
// differ) each select on their own.
func TestFieldsKeptPerStore(t *testing.T) {
	b := NewBackend(Options{})
	t.Cleanup(b.Close)
	attrs := func(version string) apistorage.AttrFunc {
		return func(obj runtime.Object) (labels.Set, fields.Set, error) {
			return nil, fields.Set{"metadata.name": obj.(*example.Pod).Name, "spec.version": version}, nil
		}
	}
	stores := map[string]*store{}
	for _, v := range []string{"v1", "v2"} {
		s, err := NewStore(b, Config{
			Codec:          apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion),
			NewFunc:        func() runtime.Object { return &example.Pod{} },
			NewListFunc:    func() runtime.Object { return &example.PodList{} },
			ResourcePrefix: "/pods",
			GroupResource:  schema.GroupResource{Resource: "pods"},
			AttrFunc:       attrs(v),
		})
		if err != nil {
			t.Fatal(err)
		}
		stores[v] = s.(*store)
	}
	ctx := context.Background()
	if err := stores["v1"].Create(ctx, "/pods/ns/a", &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}, nil, 0); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for v, s := range stores {
			out := &example.PodList{}
			pred := apistorage.SelectionPredicate{Label: labels.Everything(), Field: fields.OneTermEqualSelector("spec.version", v), GetAttrs: s.attrFunc}
			if err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Predicate: pred, Recursive: true}, out); err != nil {
				t.Fatal(err)
			}
			if len(out.Items) != 1 {
				t.Fatalf("store %s lists %d objects with spec.version=%s, want 1", v, len(out.Items), v)
			}
		}
	}
}

// TestWatchOnKeptFields checks a watch whose field selector is matched on
// the field sets kept per object version: a pod scheduled onto, moved off
// and back onto the node is ADDED, DELETED and ADDED, as etcd3's watcher
// turns updates across the selector, and a LIST in between (which fills the
// kept field sets) changes nothing.
func TestWatchOnKeptFields(t *testing.T) {
	ctx, s := testSetup(t, withAttrFunc(podNodeAttrs))
	pred := apistorage.SelectionPredicate{Label: labels.Everything(), Field: fields.OneTermEqualSelector("spec.nodeName", "n1"), GetAttrs: podNodeAttrs}
	pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	if err := s.Create(ctx, "/pods/ns/p", pod, nil, 0); err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: fmt.Sprint(s.b.Revision()), Predicate: pred, Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, step := range []struct {
		node string
		want watch.EventType
	}{{"n1", watch.Added}, {"n1", watch.Modified}, {"n2", watch.Deleted}, {"n3", ""}, {"n1", watch.Added}} {
		err := s.GuaranteedUpdate(ctx, "/pods/ns/p", &example.Pod{}, false, nil, func(obj runtime.Object, _ apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
			p := obj.(*example.Pod)
			p.Spec.NodeName = step.node
			p.Labels = map[string]string{"rev": fmt.Sprint(s.b.Revision())} // every step writes
			return p, nil, nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := &example.PodList{}
		if err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Predicate: pred, Recursive: true}, out); err != nil {
			t.Fatal(err)
		}
		if want := step.node == "n1"; (len(out.Items) == 1) != want {
			t.Fatalf("on %s: LIST gives %d pods", step.node, len(out.Items))
		}
		if step.want == "" {
			continue
		}
		select {
		case ev := <-w.ResultChan():
			if ev.Type != step.want || ev.Object.(*example.Pod).Spec.NodeName != step.node && step.want != watch.Deleted {
				t.Fatalf("to %s: got %s of %v, want %s", step.node, ev.Type, ev.Object, step.want)
			}
		case <-time.After(wait.ForeverTestTimeout):
			t.Fatalf("to %s: no event", step.node)
		}
	}
	select {
	case ev := <-w.ResultChan():
		t.Fatalf("unexpected %s", ev.Type)
	case <-time.After(100 * time.Millisecond):
	}
}
