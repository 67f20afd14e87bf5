package storage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	apistorage "k8s.io/apiserver/pkg/storage"
)

// TestLabelIndex checks the LISTs that the label index serves against the
// same LISTs served by a scan of every item: each indexed selector has a twin
// written with multi-value "in" requirements (which the index does not use)
// that matches exactly the same objects. Items, pages, continue tokens and
// remaining counts must agree, after creates, label changes and deletes.
func TestLabelIndex(t *testing.T) {
	for _, m := range readModes {
		t.Run(m.name, func(t *testing.T) {
			ctx, s := testSetup(t, m.opts...)
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
			var keys []string
			for i := range 300 {
				ns := fmt.Sprintf("ns%d", i%3)
				name := fmt.Sprintf("p%03d", rnd.IntN(1000))
				key := "/pods/" + ns + "/" + name
				pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: randomLabels()}}
				if err := s.Create(ctx, key, pod, nil, 0); err == nil {
					keys = append(keys, key)
				}
			}
			relabel := func(n int) {
				for range n {
					key := keys[rnd.IntN(len(keys))]
					err := s.GuaranteedUpdate(ctx, key, &example.Pod{}, true, nil, func(obj runtime.Object, _ apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
						pod := obj.(*example.Pod)
						pod.Labels = randomLabels()
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

			pairs := [][2]string{
				{"app=a", "app in (a,zz)"},
				{"app==b,tier=x", "app in (b,zz),tier in (x,zz)"},
				{"app in (c)", "app in (c,zz)"},
				{"tier=y,app!=a", "tier in (y,zz),app!=a"},
				{"app=a,tier", "app in (a,zz),tier"},
				{"missing=1", "missing in (1,zz)"},
			}
			list := func(key string, sel labels.Selector, limit int64, cont string) *example.PodList {
				t.Helper()
				out := &example.PodList{}
				pred := apistorage.SelectionPredicate{Label: sel, Field: fields.Everything(), Limit: limit, Continue: cont, GetAttrs: apistorage.DefaultClusterScopedAttr}
				if err := s.GetList(ctx, key, apistorage.ListOptions{Predicate: pred, Recursive: true}, out); err != nil {
					t.Fatal(err)
				}
				return out
			}
			names := func(l *example.PodList) []string {
				var n []string
				for _, p := range l.Items {
					n = append(n, p.Namespace+"/"+p.Name)
				}
				return n
			}
			total := 0
			for _, prefix := range []string{"/pods/", "/pods/ns1"} {
				for _, p := range pairs {
					indexed, scanned := mustParse(t, p[0]), mustParse(t, p[1])
					// The scan is the reference: it must agree with a
					// plain filter of the full list.
					var want []string
					for _, pod := range list(prefix, labels.Everything(), 0, "").Items {
						if scanned.Matches(labels.Set(pod.Labels)) {
							want = append(want, pod.Namespace+"/"+pod.Name)
						}
					}
					for _, limit := range []int64{0, 1, 3, 10, 1000} {
						var got []string
						ci, cs := "", ""
						for page := 0; ; page++ {
							li, ls := list(prefix, indexed, limit, ci), list(prefix, scanned, limit, cs)
							if !slices.Equal(names(li), names(ls)) || li.Continue != ls.Continue || li.ResourceVersion != ls.ResourceVersion ||
								(li.RemainingItemCount == nil) != (ls.RemainingItemCount == nil) {
								t.Fatalf("%s %q limit %d page %d: index %v (continue %q, rv %s) != scan %v (continue %q, rv %s)",
									prefix, p[0], limit, page, names(li), li.Continue, li.ResourceVersion, names(ls), ls.Continue, ls.ResourceVersion)
							}
							got = append(got, names(li)...)
							if li.Continue == "" {
								break
							}
							ci, cs = li.Continue, ls.Continue
						}
						if !slices.Equal(got, want) {
							t.Fatalf("%s %q limit %d: got %v, want %v", prefix, p[0], limit, got, want)
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
	if n := len(s.b.labels); n != 0 { // no writer left: no lock needed
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
	n := len(s.b.labels)
	s.b.mu.RUnlock()
	if n != 0 {
		t.Fatalf("label index keeps %d entries after the lease expired", n)
	}
}
