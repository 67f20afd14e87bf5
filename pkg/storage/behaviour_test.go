package storage

// Behaviour the upstream suite does not cover: bad input, isolation of the
// objects handed in and out, the history window, and the RESTOptionsGetter.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	apistorage "k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
)

func mustCreate(t *testing.T, ctx context.Context, s *store, name string) *example.Pod {
	t.Helper()
	out := &example.Pod{}
	pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{"a": "b"}}}
	if err := s.Create(ctx, "/pods/ns/"+name, pod, out, 0); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBadInput(t *testing.T) {
	ctx, s := testSetup(t)
	mustCreate(t, ctx, s, "foo")

	t.Run("wrong type", func(t *testing.T) {
		err := s.Create(ctx, "/pods/ns/bar", &example.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "bar"}}, &example.Pod{}, 0)
		if !apistorage.IsInternalError(err) {
			t.Fatalf("want an internal storage error, got %v", err)
		}
		err = s.GuaranteedUpdate(ctx, "/pods/ns/foo", &example.Pod{}, false, nil, func(runtime.Object, apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
			return &example.ReplicaSet{}, nil, nil
		}, nil)
		if !apistorage.IsInternalError(err) {
			t.Fatalf("want an internal storage error, got %v", err)
		}
		// Reading into the wrong type fails without a panic.
		if err := s.Get(ctx, "/pods/ns/foo", apistorage.GetOptions{}, &example.ReplicaSet{}); err == nil {
			t.Fatal("reading a Pod into a ReplicaSet succeeded")
		}
		if err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Predicate: apistorage.Everything, Recursive: true}, &example.Pod{}); err == nil {
			t.Fatal("listing into a non-list succeeded")
		}
	})

	t.Run("key outside the resource prefix", func(t *testing.T) {
		for _, key := range []string{"/nodes/foo", "/pods/../secrets/x", "", "/"} {
			if err := s.Get(ctx, key, apistorage.GetOptions{}, &example.Pod{}); err == nil || apistorage.IsNotFound(err) {
				t.Errorf("Get(%q): want a key error, got %v", key, err)
			}
			if err := s.Create(ctx, key, &example.Pod{}, &example.Pod{}, 0); err == nil {
				t.Errorf("Create(%q) succeeded", key)
			}
			if _, err := s.Watch(ctx, key, apistorage.ListOptions{Predicate: apistorage.Everything}); err == nil {
				t.Errorf("Watch(%q) succeeded", key)
			}
		}
	})

	t.Run("malformed resourceVersion", func(t *testing.T) {
		err := s.Get(ctx, "/pods/ns/foo", apistorage.GetOptions{ResourceVersion: "abc"}, &example.Pod{})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "invalid resource version") {
			t.Errorf("Get: want 400 invalid resource version, got %v", err)
		}
		err = s.GetList(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: "-1", Predicate: apistorage.Everything, Recursive: true}, &example.PodList{})
		if !apierrors.IsBadRequest(err) {
			t.Errorf("GetList: want 400, got %v", err)
		}
		if _, err := s.Watch(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: "x1", Predicate: apistorage.Everything, Recursive: true}); !apistorage.IsInvalidError(err) {
			t.Errorf("Watch: want an invalid resourceVersion error, got %v", err)
		}
		err = s.GetList(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: "1", ResourceVersionMatch: "Sometime", Predicate: apistorage.Everything, Recursive: true}, &example.PodList{})
		if err == nil || !strings.Contains(err.Error(), "unknown ResourceVersionMatch") {
			t.Errorf("GetList: want unknown ResourceVersionMatch, got %v", err)
		}
	})

	t.Run("too large resourceVersion", func(t *testing.T) {
		err := s.Get(ctx, "/pods/ns/foo", apistorage.GetOptions{ResourceVersion: "100000"}, &example.Pod{})
		if !apistorage.IsTooLargeResourceVersion(err) {
			t.Errorf("Get: want too large resource version, got %v", err)
		}
		err = s.GetList(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: "100000", ResourceVersionMatch: metav1.ResourceVersionMatchExact, Predicate: apistorage.Everything, Recursive: true}, &example.PodList{})
		if !apistorage.IsTooLargeResourceVersion(err) {
			t.Errorf("GetList: want too large resource version, got %v", err)
		}
	})

	t.Run("malformed continue token", func(t *testing.T) {
		for _, token := range []string{"%%%", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiIuLi9zZWNyZXRzIn0", "e30"} {
			pred := apistorage.Everything
			pred.Limit = 1
			pred.Continue = token
			err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Predicate: pred, Recursive: true}, &example.PodList{})
			if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "invalid continue token") {
				t.Errorf("continue %q: want 400 invalid continue token, got %v", token, err)
			}
		}
	})
}

// TestNoAliasing checks that nothing handed in or out shares memory with the
// store: changing it afterwards does not change what the store returns.
//
// With ReadOnlyLists, listed items are shared by contract (the caller must
// not modify them, as with kube-apiserver's watch cache), and with
// SharedWatchObjects watch events' objects (whose setters copy first);
// everything else stays isolated.
func TestNoAliasing(t *testing.T) {
	for _, m := range readModes {
		t.Run(m.name, func(t *testing.T) {
			ctx, s := testSetup(t, m.opts...)
			in := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "foo", Labels: map[string]string{"a": "b"}}}
			out := &example.Pod{}
			if err := s.Create(ctx, "/pods/ns/foo", in, out, 0); err != nil {
				t.Fatal(err)
			}
			in.Labels["a"] = "changed-input"
			out.Labels["a"] = "changed-output"

			got := &example.Pod{}
			if err := s.Get(ctx, "/pods/ns/foo", apistorage.GetOptions{}, got); err != nil {
				t.Fatal(err)
			}
			got.Labels["a"] = "changed-get"

			list := &example.PodList{}
			if err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Predicate: apistorage.Everything, Recursive: true}, list); err != nil {
				t.Fatal(err)
			}
			if !s.b.opts.ReadOnlyLists {
				list.Items[0].Labels["a"] = "changed-list"
			} else if len(list.Items) != 1 || list.Items[0].Labels["a"] != "b" {
				t.Fatalf("read-only list: %v", list.Items)
			}

			w, err := s.Watch(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: "0", Predicate: apistorage.Everything, Recursive: true})
			if err != nil {
				t.Fatal(err)
			}
			ev := <-w.ResultChan()
			if co, ok := ev.Object.(runtime.CacheableObject); s.b.opts.SharedWatchObjects {
				// Shared by contract; its copy and its setters are not.
				if !ok {
					t.Fatalf("shared watch object: %T", ev.Object)
				}
				co.GetObject().(*example.Pod).Labels["a"] = "changed-watch-copy"
				co.(metav1.Object).SetLabels(map[string]string{"a": "changed-watch-set"})
			} else {
				ev.Object.(*example.Pod).Labels["a"] = "changed-watch"
			}
			w.Stop()

			var seen *example.Pod
			err = s.GuaranteedUpdate(ctx, "/pods/ns/foo", &example.Pod{}, false, nil, func(obj runtime.Object, _ apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
				seen = obj.(*example.Pod)
				return nil, nil, errors.New("look only")
			}, nil)
			if err == nil || seen == nil {
				t.Fatalf("update func did not run: %v", err)
			}
			if seen.Labels["a"] != "b" {
				t.Fatalf("store state changed through a handed-out object: label a=%q", seen.Labels["a"])
			}
			seen.Labels["a"] = "changed-in-update"

			final := &example.Pod{}
			if err := s.Get(ctx, "/pods/ns/foo", apistorage.GetOptions{}, final); err != nil {
				t.Fatal(err)
			}
			if final.Labels["a"] != "b" {
				t.Fatalf("store state changed through a handed-out object: label a=%q", final.Labels["a"])
			}
		})
	}
}

// TestHistoryWindow checks that the retained history follows the options:
// old revisions stay readable inside the window and the event bound, and
// answer 410 past them, as after an etcd compaction.
func TestHistoryWindow(t *testing.T) {
	ctx, s := testSetup(t, withBackendOptions(Options{MaxHistoryEvents: 5}))
	first := mustCreate(t, ctx, s, "p0")
	for i := 1; i < 4; i++ {
		mustCreate(t, ctx, s, fmt.Sprintf("p%d", i))
	}
	// 4 events kept: the list at the first revision is still there.
	exact := func(rv string) error {
		return s.GetList(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: rv, ResourceVersionMatch: metav1.ResourceVersionMatchExact, Predicate: apistorage.Everything, Recursive: true}, &example.PodList{})
	}
	if err := exact(first.ResourceVersion); err != nil {
		t.Fatalf("list at a retained revision: %v", err)
	}
	for i := 4; i < 10; i++ {
		mustCreate(t, ctx, s, fmt.Sprintf("p%d", i))
	}
	if err := exact(first.ResourceVersion); !apierrors.IsResourceExpired(err) {
		t.Fatalf("list at a revision past the bound: want 410 Expired, got %v", err)
	}
	if s.CompactRevision() == 0 {
		t.Fatal("no compaction observed")
	}
	w, err := s.Watch(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: first.ResourceVersion, Predicate: apistorage.Everything, Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev := <-w.ResultChan()
	status, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok || status.Code != 410 || status.Message != "The resourceVersion for the provided watch is too old." {
		t.Fatalf("watch from a compacted revision: want a 410 error event, got %v %#v", ev.Type, ev.Object)
	}

	// The time window: events older than it are compacted on the next write.
	ctx2, s2 := testSetup(t, withBackendOptions(Options{HistoryWindow: 50 * time.Millisecond}))
	// A compaction at revision R keeps R itself readable, as etcd's does:
	// the revision before the newest dropped one is the first to go.
	old := mustCreate(t, ctx2, s2, "old")
	mustCreate(t, ctx2, s2, "old2")
	time.Sleep(100 * time.Millisecond)
	mustCreate(t, ctx2, s2, "new")
	err = s2.GetList(ctx2, "/pods/", apistorage.ListOptions{ResourceVersion: old.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact, Predicate: apistorage.Everything, Recursive: true}, &example.PodList{})
	if !apierrors.IsResourceExpired(err) {
		t.Fatalf("list at a revision older than the window: want 410 Expired, got %v", err)
	}
}

// TestSharedRevision checks that two resources on one backend share one
// increasing revision, as resources in one etcd do.
func TestSharedRevision(t *testing.T) {
	ctx, pods := testSetup(t)
	other, err := NewStore(pods.b, Config{Codec: pods.codec, NewFunc: func() runtime.Object { return &example.Pod{} }, ResourcePrefix: "/others/"})
	if err != nil {
		t.Fatal(err)
	}
	a := mustCreate(t, ctx, pods, "a")
	out := &example.Pod{}
	if err := other.Create(ctx, "/others/ns/b", &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}}, out, 0); err != nil {
		t.Fatal(err)
	}
	c := mustCreate(t, ctx, pods, "c")
	if !(a.ResourceVersion < out.ResourceVersion && out.ResourceVersion < c.ResourceVersion) {
		t.Fatalf("revisions not shared: %s %s %s", a.ResourceVersion, out.ResourceVersion, c.ResourceVersion)
	}
	list := &example.PodList{}
	if err := pods.GetList(ctx, "/pods/", apistorage.ListOptions{Predicate: apistorage.Everything, Recursive: true}, list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.ResourceVersion != c.ResourceVersion {
		t.Fatalf("pods list: %d items at %s", len(list.Items), list.ResourceVersion)
	}
}

// TestConcurrentWriters races writers on one key and on many; every update
// lands exactly once (optimistic concurrency retries) and a watcher sees
// them all in order. Meant for -race.
func TestConcurrentWriters(t *testing.T) {
	ctx, s := testSetup(t)
	start := mustCreate(t, ctx, s, "counter")
	w, err := s.Watch(ctx, "/pods/ns/counter", apistorage.ListOptions{ResourceVersion: start.ResourceVersion, Predicate: apistorage.Everything})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				err := s.GuaranteedUpdate(ctx, "/pods/ns/counter", &example.Pod{}, false, nil,
					apistorage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
						p := obj.(*example.Pod)
						p.Spec.ActiveDeadlineSeconds = ptrTo(ptrValue(p.Spec.ActiveDeadlineSeconds) + 1)
						return p, nil
					}), nil)
				if err != nil {
					t.Error(err)
				}
			}
		}()
		go func(i int) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				mustCreate(t, ctx, s, fmt.Sprintf("w%d-%d", i, j))
				if err := s.Get(ctx, "/pods/ns/counter", apistorage.GetOptions{}, &example.Pod{}); err != nil {
					t.Error(err)
				}
			}
		}(i)
	}
	wg.Wait()
	final := &example.Pod{}
	if err := s.Get(ctx, "/pods/ns/counter", apistorage.GetOptions{}, final); err != nil {
		t.Fatal(err)
	}
	if got := ptrValue(final.Spec.ActiveDeadlineSeconds); got != writers*each {
		t.Fatalf("counter = %d, want %d", got, writers*each)
	}
	for n := int64(1); n <= writers*each; n++ {
		ev := <-w.ResultChan()
		if got := ptrValue(ev.Object.(*example.Pod).Spec.ActiveDeadlineSeconds); ev.Type != watch.Modified || got != n {
			t.Fatalf("event %d: %v with counter %d", n, ev.Type, got)
		}
	}
}

func ptrValue(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// TestRESTOptionsGetter plugs the store into the registry the way the server
// does: storage config from a storage factory, this package's Decorator.
func TestRESTOptionsGetter(t *testing.T) {
	b := NewBackend(Options{})
	defer b.Close()
	encoding := serverstorage.NewDefaultResourceEncodingConfig(scheme)
	encoding.SetResourceEncoding(schema.GroupResource{Group: examplev1.GroupName, Resource: "pods"}, examplev1.SchemeGroupVersion, example.SchemeGroupVersion)
	factory := serverstorage.NewDefaultStorageFactory(storagebackend.Config{Prefix: "/registry"}, runtime.ContentTypeJSON, codecs, encoding, serverstorage.NewResourceConfig(), nil)
	getter := &RESTOptionsGetter{StorageFactory: factory, Backend: b, EnableGarbageCollection: true}

	gr := schema.GroupResource{Group: examplev1.GroupName, Resource: "pods"}
	opts, err := getter.GetRESTOptions(gr, &example.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	if !opts.EnableGarbageCollection || opts.ResourcePrefix != "pods" {
		t.Fatalf("unexpected options: %+v", opts)
	}
	s, destroy, err := opts.Decorator(opts.StorageConfig, "/"+opts.ResourcePrefix, nil,
		func() runtime.Object { return &example.Pod{} }, func() runtime.Object { return &example.PodList{} }, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer destroy()
	ctx := context.Background()
	key := "/" + opts.ResourcePrefix + "/ns/foo"
	out := &example.Pod{}
	if err := s.Create(ctx, key, &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "foo"}}, out, 0); err != nil {
		t.Fatal(err)
	}
	if keys := b.Keys("/registry/"); len(keys) != 1 || keys[0] != "/registry/pods/ns/foo" {
		t.Fatalf("stored under %v", keys)
	}
	// Stored in the storage version (JSON, example.apiserver.k8s.io/v1), as etcd would hold it.
	b.mu.RLock()
	data := string(b.getLocked("/registry/pods/ns/foo").data)
	b.mu.RUnlock()
	if !strings.Contains(data, `"apiVersion":"example.apiserver.k8s.io/v1"`) || strings.Contains(data, "resourceVersion") {
		t.Fatalf("stored value: %s", data)
	}
	got := &example.Pod{}
	if err := s.Get(ctx, key, apistorage.GetOptions{}, got); err != nil || got.ResourceVersion != out.ResourceVersion {
		t.Fatalf("get: %v, rv %s want %s", err, got.ResourceVersion, out.ResourceVersion)
	}
}

// TestWatchFromFutureRevision checks that a watch from a revision not yet
// reached starts after it, as an etcd watch does, instead of replaying the
// writes in between.
func TestWatchFromFutureRevision(t *testing.T) {
	ctx, s := testSetup(t)
	future := s.b.Revision() + 3
	w, err := s.Watch(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: fmt.Sprint(future), Predicate: apistorage.Everything, Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var last *example.Pod
	for i := 0; i < 5; i++ {
		last = mustCreate(t, ctx, s, fmt.Sprintf("p%d", i))
	}
	// Revisions future-2 .. future are before the watch starts; only the
	// writes after it arrive.
	for _, want := range []int64{future + 1, future + 2} {
		select {
		case ev := <-w.ResultChan():
			got := ev.Object.(*example.Pod).ResourceVersion
			if ev.Type != watch.Added || got != fmt.Sprint(want) {
				t.Fatalf("got %v at %s, want ADDED at %d", ev.Type, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event for revision %d", want)
		}
	}
	if last.ResourceVersion != fmt.Sprint(future+2) {
		t.Fatalf("last write at %s, want %d", last.ResourceVersion, future+2)
	}
}

// FuzzReadOptions feeds arbitrary resourceVersions, match rules, continue
// tokens and keys to the read paths: each answers or errs, never panics or
// hangs. `go test` runs the seeds; `go test -fuzz FuzzReadOptions` explores.
func FuzzReadOptions(f *testing.F) {
	f.Add("/pods/", "", "", "", int64(0))
	f.Add("/pods/ns", "1", "Exact", "", int64(2))
	f.Add("/pods/", "0", "NotOlderThan", "e30", int64(1))
	f.Add("/pods/../x", "-5", "", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6LTEsInN0YXJ0IjoiL3BvZHMvIn0", int64(1))
	f.Add("/pods/ns/a", "99999999999999999999", "Exact", "%%", int64(-1))
	ctx, s := testSetup(f)
	for i := 0; i < 3; i++ {
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("p%d", i)}}
		if err := s.Create(ctx, "/pods/ns/"+pod.Name, pod, &example.Pod{}, 0); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, key, rv, match, token string, limit int64) {
		pred := apistorage.Everything
		pred.Limit = limit
		pred.Continue = token
		opts := apistorage.ListOptions{ResourceVersion: rv, ResourceVersionMatch: metav1.ResourceVersionMatch(match), Predicate: pred, Recursive: true}
		_ = s.GetList(ctx, key, opts, &example.PodList{})
		opts.Recursive = false
		_ = s.GetList(ctx, key, opts, &example.PodList{})
		_ = s.Get(ctx, key, apistorage.GetOptions{ResourceVersion: rv}, &example.Pod{})
		wctx, cancel := context.WithCancel(ctx)
		if w, err := s.Watch(wctx, key, apistorage.ListOptions{ResourceVersion: rv, Predicate: apistorage.Everything, Recursive: true}); err == nil {
			w.Stop()
		}
		cancel()
	})
}

// TestVerifyCache checks that VerifyCache finds a listed item modified by a
// caller of a store with ReadOnlyLists, and nothing before that.
func TestVerifyCache(t *testing.T) {
	ctx, s := testSetup(t, withBackendOptions(Options{ReadOnlyLists: true}))
	mustCreate(t, ctx, s, "foo")
	mustCreate(t, ctx, s, "bar")
	list := &example.PodList{}
	if err := s.GetList(ctx, "/pods/", apistorage.ListOptions{Predicate: apistorage.Everything, Recursive: true}, list); err != nil {
		t.Fatal(err)
	}
	if err := s.b.VerifyCache(); err != nil {
		t.Fatalf("before any change: %v", err)
	}
	list.Items[1].Labels["a"] = "changed" // foo, after bar
	err := s.b.VerifyCache()
	if err == nil || !strings.Contains(err.Error(), "/pods/ns/foo") || strings.Contains(err.Error(), "/pods/ns/bar") {
		t.Fatalf("want foo reported, got %v", err)
	}
}

// The history is bounded in bytes as well: churn of large values compacts
// the oldest revisions once what the history alone keeps passes the bound
// (lists there answer 410, as after an etcd compaction).
func TestHistoryByteBound(t *testing.T) {
	ctx, s := testSetup(t, withBackendOptions(Options{MaxHistoryBytes: 64 << 10}))
	big := strings.Repeat("x", 8<<10)
	first := mustCreate(t, ctx, s, "p0")
	for i := range 30 {
		out := &example.Pod{}
		if err := s.GuaranteedUpdate(ctx, "/pods/ns/p0", out, false, nil, func(in runtime.Object, _ apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
			p := in.(*example.Pod).DeepCopy()
			p.Spec.Hostname = big[:len(big)-i]
			return p, nil, nil
		}, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.b.mu.Lock()
	events, bytes := len(s.b.history), s.b.historyBytes
	s.b.mu.Unlock()
	if bytes > 64<<10 || events >= 31 || events < 4 {
		t.Errorf("history after 30 updates of 8 KiB values under a 64 KiB bound: %d events, %d bytes", events, bytes)
	}
	err := s.GetList(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: first.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact, Predicate: apistorage.Everything, Recursive: true}, &example.PodList{})
	if !apierrors.IsResourceExpired(err) {
		t.Errorf("list at a revision past the byte bound: want 410 Expired, got %v", err)
	}
}

// With SharedWatchObjects, the watchers of an event get one object, and
// encoding it for one of them encodes it for all: the encode function
// runs once per format, not once per watcher. A DELETED event's object
// carries the deletion's revision, and a watcher whose selector the
// object left gets it as DELETED too, shared with the plain watchers'.
func TestSharedWatchObjects(t *testing.T) {
	ctx, s := testSetup(t, withBackendOptions(Options{SharedWatchObjects: true}))
	start := mustCreate(t, ctx, s, "start")
	var watchers []watch.Interface
	for _, selector := range []string{"", "", "a=b"} {
		pred := apistorage.Everything
		if selector != "" {
			pred = apistorage.SelectionPredicate{Label: mustParse(t, selector), Field: fields.Everything(), GetAttrs: apistorage.DefaultNamespaceScopedAttr}
		}
		w, err := s.Watch(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: start.ResourceVersion, Predicate: pred, Recursive: true})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		watchers = append(watchers, w)
	}
	created := mustCreate(t, ctx, s, "p")
	updated := &example.Pod{}
	if err := s.GuaranteedUpdate(ctx, "/pods/ns/p", updated, false, nil, func(obj runtime.Object, _ apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
		pod := obj.(*example.Pod)
		pod.Labels = map[string]string{"a": "c"}
		return pod, nil, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	next := func(w watch.Interface) watch.Event {
		t.Helper()
		select {
		case ev := <-w.ResultChan():
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return watch.Event{}
		}
	}
	encodes := 0
	encode := func(obj runtime.Object, w io.Writer) error {
		encodes++
		_, err := fmt.Fprint(w, obj.(*example.Pod).ResourceVersion)
		return err
	}
	for _, want := range []struct {
		types [3]watch.EventType
		rv    string
	}{
		{[3]watch.EventType{watch.Added, watch.Added, watch.Added}, created.ResourceVersion},
		{[3]watch.EventType{watch.Modified, watch.Modified, watch.Deleted}, updated.ResourceVersion},
	} {
		var objs [3]runtime.Object
		for i, w := range watchers {
			ev := next(w)
			if ev.Type != want.types[i] {
				t.Fatalf("watcher %d: %s, want %s", i, ev.Type, want.types[i])
			}
			objs[i] = ev.Object
		}
		if objs[0] != objs[1] {
			t.Errorf("%s: two watchers without a selector got two objects", want.types[0])
		}
		encodes = 0
		for i, obj := range objs {
			var buf bytes.Buffer
			if err := obj.(runtime.CacheableObject).CacheEncode("test", encode, &buf); err != nil || buf.String() != want.rv {
				t.Errorf("watcher %d's %s: %v %q, want resourceVersion %s", i, want.types[i], err, buf.String(), want.rv)
			}
		}
		if want.types[2] == watch.Deleted {
			// The object as it was, at the update's revision: not the
			// updated object the others got.
			if objs[2] == objs[0] || objs[2].(metav1.Object).GetLabels()["a"] != "b" {
				t.Errorf("the selector's DELETED object: %+v", objs[2])
			}
			if encodes != 2 {
				t.Errorf("encoded %d times for the MODIFIED and the DELETED object, want 2", encodes)
			}
		} else if objs[2] != objs[0] || encodes != 1 {
			t.Errorf("three watchers: shared %v, encoded %d times, want once", objs[2] == objs[0], encodes)
		}
	}
	if err := s.Delete(ctx, "/pods/ns/p", &example.Pod{}, nil, apistorage.ValidateAllObjectFunc, nil, apistorage.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	first, second := next(watchers[0]), next(watchers[1])
	if first.Type != watch.Deleted || first.Object != second.Object {
		t.Fatalf("delete: %s, shared %v", first.Type, first.Object == second.Object)
	}
	if rv := first.Object.(metav1.Object).GetResourceVersion(); rv == updated.ResourceVersion {
		t.Errorf("the DELETED object carries the update's resourceVersion %s, not the deletion's", rv)
	}
}
