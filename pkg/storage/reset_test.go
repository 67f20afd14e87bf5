package storage

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	apitesting "k8s.io/apimachinery/pkg/api/apitesting"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	apistorage "k8s.io/apiserver/pkg/storage"
)

// Restore brings back the key space of a State in one new revision: the
// objects and their labels (index) as they were, resourceVersions above
// everything before for what changed, kept for what did not, an event per
// change for open watches, older revisions compacted.
func TestRestore(t *testing.T) {
	ctx, s := testSetup(t)
	pod := func(name, app string) *example.Pod {
		return &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{"app": app}}}
	}
	out := &example.Pod{}
	for _, name := range []string{"a", "b", "u"} {
		if err := s.Create(ctx, "/pods/ns/"+name, pod(name, "baseline"), out, 0); err != nil {
			t.Fatal(err)
		}
	}
	state := s.b.State()
	if state.Len() != 3 {
		t.Fatalf("state holds %d keys", state.Len())
	}
	unchanged := &example.Pod{}
	if err := s.Get(ctx, "/pods/ns/u", apistorage.GetOptions{}, unchanged); err != nil {
		t.Fatal(err)
	}

	// After the state: one changed, one deleted, one added.
	if err := s.GuaranteedUpdate(ctx, "/pods/ns/a", out, false, nil, func(obj runtime.Object, _ apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
		p := obj.(*example.Pod)
		p.Labels["app"] = "changed"
		return p, nil, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "/pods/ns/b", &example.Pod{}, nil, apistorage.ValidateAllObjectFunc, nil, apistorage.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "/pods/ns/c", pod("c", "baseline"), out, 0); err != nil {
		t.Fatal(err)
	}
	before := s.b.Revision()
	w, err := s.Watch(ctx, "/pods/", apistorage.ListOptions{Recursive: true, ResourceVersion: strconv.FormatInt(before, 10), Predicate: apistorage.Everything})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	pods := schema.GroupResource{Resource: "pods"}
	if got := s.b.LastRevision(pods); got != before {
		t.Errorf("last revision of pods %d, want %d", got, before)
	}
	if got := s.b.LastRevision(schema.GroupResource{Resource: "nodes"}); got != 0 {
		t.Errorf("last revision of nodes %d, want 0 (never written)", got)
	}
	rev, changed := s.b.Restore(state)
	if rev != before+1 || changed != 3 {
		t.Errorf("restored at revision %d with %d changes, want %d with 3", rev, changed, before+1)
	}
	if got := s.b.LastRevision(pods); got != rev {
		t.Errorf("last revision of pods after the restore %d, want %d", got, rev)
	}
	// The open watch sees the changes, each at the new revision.
	var events []string
	for len(events) < 3 {
		select {
		case e := <-w.ResultChan():
			p := e.Object.(*example.Pod)
			events = append(events, fmt.Sprintf("%s %s:%s:%s", e.Type, p.Name, p.Labels["app"], p.ResourceVersion))
		case <-time.After(10 * time.Second):
			t.Fatalf("events of the restore: %v", events)
		}
	}
	r := strconv.FormatInt(rev, 10)
	if want := []string{"MODIFIED a:baseline:" + r, "DELETED c:baseline:" + r, "ADDED b:baseline:" + r}; fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", events, want)
	}

	list := &example.PodList{}
	if err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Recursive: true, Predicate: apistorage.Everything}, list); err != nil {
		t.Fatal(err)
	}
	if list.ResourceVersion != strconv.FormatInt(rev, 10) {
		t.Errorf("list at %s, want %d", list.ResourceVersion, rev)
	}
	var got []string
	for _, p := range list.Items {
		got = append(got, fmt.Sprintf("%s:%s:%s", p.Name, p.Labels["app"], p.ResourceVersion))
	}
	want := []string{fmt.Sprintf("a:baseline:%d", rev), fmt.Sprintf("b:baseline:%d", rev), "u:baseline:" + unchanged.ResourceVersion}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restored %v, want %v", got, want)
	}
	// The label index follows: the changed label and the added pod are gone.
	for sel, n := range map[string]int{"app=baseline": 3, "app=changed": 0} {
		list := &example.PodList{}
		pred := apistorage.SelectionPredicate{Label: labels.SelectorFromSet(labels.Set{"app": sel[4:]}), Field: apistorage.Everything.Field, GetAttrs: apistorage.DefaultNamespaceScopedAttr}
		if err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Recursive: true, Predicate: pred}, list); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != n {
			t.Errorf("%s: %d items, want %d", sel, len(list.Items), n)
		}
	}
	// Resuming a watch from before the restore is 410 Gone; from it, fine.
	old, err := s.Watch(ctx, "/pods/", apistorage.ListOptions{Recursive: true, ResourceVersion: strconv.FormatInt(before-1, 10), Predicate: apistorage.Everything})
	if err != nil {
		t.Fatal(err)
	}
	if e := <-old.ResultChan(); e.Type != "ERROR" || !apierrors.IsResourceExpired(apierrors.FromObject(e.Object)) {
		t.Errorf("watch from before the restore: %v %v", e.Type, e.Object)
	}
	fresh, err := s.Watch(ctx, "/pods/", apistorage.ListOptions{Recursive: true, ResourceVersion: strconv.FormatInt(rev, 10), Predicate: apistorage.Everything})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Stop()
	if err := s.Create(ctx, "/pods/ns/d", pod("d", "after"), out, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-fresh.ResultChan():
		if p, ok := e.Object.(*example.Pod); e.Type != "ADDED" || !ok || p.Name != "d" {
			t.Errorf("watch after the restore: %v %v", e.Type, e.Object)
		}
	case <-time.After(10 * time.Second):
		t.Error("no event after the restore")
	}
	// The state itself did not change with the writes after it.
	if state.Len() != 3 {
		t.Errorf("state changed: %d keys", state.Len())
	}
	// Restoring the state the store holds writes nothing.
	now := s.b.State()
	last := s.b.LastWrite()
	if rev, changed := s.b.Restore(now); changed != 0 || rev != now.Revision() || s.b.Revision() != now.Revision() || !s.b.LastWrite().Equal(last) {
		t.Errorf("restore of the current state: revision %d, %d changes, store at %d (was %d), last write moved: %v",
			rev, changed, s.b.Revision(), now.Revision(), !s.b.LastWrite().Equal(last))
	}
}

// Restores of one state, many times, after random creates, updates and
// deletes in between: the key space is the state's each time, and a
// restore right after finds nothing to change.
func TestRestoreRandom(t *testing.T) {
	ctx, s := testSetup(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	out := &example.Pod{}
	write := func(n int) {
		for range n {
			name := fmt.Sprintf("p%02d", rnd.IntN(60))
			key := "/pods/ns/" + name
			switch err := s.Create(ctx, key, &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{"v": fmt.Sprint(rnd.IntN(1000))}}}, out, 0); {
			case apistorage.IsExist(err) && rnd.IntN(2) == 0:
				if err := s.Delete(ctx, key, &example.Pod{}, nil, apistorage.ValidateAllObjectFunc, nil, apistorage.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			case apistorage.IsExist(err):
				if err := s.GuaranteedUpdate(ctx, key, out, false, nil, func(obj runtime.Object, _ apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
					obj.(*example.Pod).Labels["v"] = fmt.Sprint(rnd.IntN(1000))
					return obj, nil, nil
				}, nil); err != nil {
					t.Fatal(err)
				}
			case err != nil:
				t.Fatal(err)
			}
		}
	}
	contents := func() string {
		list := &example.PodList{}
		if err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Recursive: true, Predicate: apistorage.Everything}, list); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range list.Items {
			got = append(got, p.Name+":"+p.Labels["v"])
		}
		return strings.Join(got, " ")
	}
	write(40)
	state, want := s.b.State(), contents()
	for round := range 20 {
		write(rnd.IntN(30))
		s.b.Restore(state)
		if got := contents(); got != want {
			t.Fatalf("round %d: restored\n%s\nwant\n%s", round, got, want)
		}
		// What it put back is the state's: a second restore finds nothing.
		if _, changed := s.b.Restore(state); changed != 0 {
			t.Fatalf("round %d: a second restore changed %d keys", round, changed)
		}
	}
}

// Restore of a key space 1,000 objects away from its state (each
// iteration adds them back first, untimed).
func BenchmarkRestore1000(b *testing.B) { benchmarkRestore(b, 100, 1000) }

// Restore of a key space holding 10,000 objects, 10 away from its state:
// the unchanged keys cost a walk, nothing more.
func BenchmarkRestoreHeld10000(b *testing.B) { benchmarkRestore(b, 10000, 10) }

func benchmarkRestore(b *testing.B, held, away int) {
	ctx, s := testSetup(b)
	out := &example.Pod{}
	for i := range held {
		if err := s.Create(ctx, fmt.Sprintf("/pods/base/p%d", i), &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "base", Name: fmt.Sprintf("p%d", i)}}, out, 0); err != nil {
			b.Fatal(err)
		}
	}
	state := s.b.State()
	for b.Loop() {
		b.StopTimer()
		for i := range away {
			if err := s.Create(ctx, fmt.Sprintf("/pods/ns/p%d", i), &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("p%d", i), Labels: map[string]string{"app": "x"}}}, out, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if _, changed := s.b.Restore(state); changed != away {
			b.Fatalf("%d changes", changed)
		}
	}
}

// The resources a restore is told to take first change first; the rest by
// key.
func TestRestoreOrder(t *testing.T) {
	ctx, pods := testSetup(t)
	nodesStore, err := NewStore(pods.b, Config{
		Codec:          apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion),
		NewFunc:        func() runtime.Object { return &example.Pod{} },
		NewListFunc:    func() runtime.Object { return &example.PodList{} },
		ResourcePrefix: "/zz-nodes/",
		GroupResource:  schema.GroupResource{Resource: "nodes"},
		AttrFunc:       apistorage.DefaultClusterScopedAttr,
	})
	if err != nil {
		t.Fatal(err)
	}
	state := pods.b.State()
	out := &example.Pod{}
	for _, name := range []string{"b", "a"} {
		if err := pods.Create(ctx, "/pods/ns/"+name, &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}, out, 0); err != nil {
			t.Fatal(err)
		}
		if err := nodesStore.Create(ctx, "/zz-nodes/"+name, &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}, out, 0); err != nil {
			t.Fatal(err)
		}
	}
	rev, changed := pods.b.Restore(state, schema.GroupResource{Resource: "nodes"})
	if changed != 4 {
		t.Fatalf("%d changes, want 4", changed)
	}
	var keys []string
	for _, e := range pods.b.history {
		if e.rev == rev {
			keys = append(keys, e.key)
		}
	}
	if want := []string{"/zz-nodes/a", "/zz-nodes/b", "/pods/ns/a", "/pods/ns/b"}; fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Errorf("restore order %v, want %v", keys, want)
	}
	if pods.b.LastRevision(schema.GroupResource{Resource: "nodes"}) != rev {
		t.Error("the last revision of nodes is not the restore's")
	}
}
