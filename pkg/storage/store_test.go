package storage

// The conformance suite for storage.Interface implementations,
// k8s.io/apiserver/pkg/storage/testing, run the way etcd3's store_test.go and
// watcher_test.go run it. Every RunTest* function that etcd3 runs is listed
// here; the few that cannot apply say why at their place.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	apistorage "k8s.io/apiserver/pkg/storage"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/tools/cache"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

const testPrefix = "test!"

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
}

type setupOptions struct {
	transformer value.Transformer
	codec       runtime.Codec
	backend     Options
	indexers    *cache.Indexers
	attrFunc    apistorage.AttrFunc
}

// nodeNameIndexers index example pods by spec.nodeName, as the pod registry
// indexes pods (pkg/registry/core/pod Indexers): test stores have them, so
// that the suite's LISTs by node (RunTestNamespaceScopedList) use the index.
func nodeNameIndexers() *cache.Indexers {
	return &cache.Indexers{apistorage.FieldIndex("spec.nodeName"): func(obj any) ([]string, error) {
		pod, ok := obj.(*example.Pod)
		if !ok {
			return nil, fmt.Errorf("not a pod: %T", obj)
		}
		return []string{pod.Spec.NodeName}, nil
	}}
}

func withIndexers(i *cache.Indexers) setupOption {
	return func(o *setupOptions) { o.indexers = i }
}

// withAttrFunc gives the store a registry GetAttrs other than the default,
// DefaultNamespaceScopedAttr (what most namespaced registries have, and
// what the suite's namespaced predicates use, so that their field selectors
// are matched on the fields kept per object).
func withAttrFunc(f apistorage.AttrFunc) setupOption {
	return func(o *setupOptions) { o.attrFunc = f }
}

type setupOption func(*setupOptions)

// withTransformer stores values through t, which turns the decode cache off:
// every read goes through the transformer and the codec, as in etcd3.
func withTransformer(t value.Transformer) setupOption {
	return func(o *setupOptions) { o.transformer = t }
}

func withPrefixTransformer() setupOption {
	return withTransformer(storagetesting.NewPrefixTransformer([]byte(testPrefix), false))
}

func withCodec(c runtime.Codec) setupOption {
	return func(o *setupOptions) { o.codec = c }
}

func withBackendOptions(b Options) setupOption {
	return func(o *setupOptions) { o.backend = b }
}

// testSetup returns a pods store on a fresh backend, like etcd3's testSetup.
func testSetup(t testing.TB, opts ...setupOption) (context.Context, *store) {
	o := setupOptions{codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion), indexers: nodeNameIndexers(), attrFunc: apistorage.DefaultNamespaceScopedAttr}
	for _, opt := range opts {
		opt(&o)
	}
	b := NewBackend(o.backend)
	t.Cleanup(b.Close)
	s, err := NewStore(b, Config{
		Codec:          o.codec,
		NewFunc:        func() runtime.Object { return &example.Pod{} },
		NewListFunc:    func() runtime.Object { return &example.PodList{} },
		Prefix:         "",
		ResourcePrefix: "/pods/",
		GroupResource:  schema.GroupResource{Resource: "pods"},
		Transformer:    o.transformer,
		Indexers:       o.indexers,
		AttrFunc:       o.attrFunc,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, s.(*store)
}

// checkStorageInvariants reads the raw stored value: it must decode and
// carry no resourceVersion or selfLink, as etcd3's check demands.
func checkStorageInvariants(s *store) storagetesting.KeyValidation {
	return func(ctx context.Context, t *testing.T, key string) {
		s.b.mu.RLock()
		it := s.b.getLocked(key)
		s.b.mu.RUnlock()
		if it == nil {
			t.Fatalf("expecting non empty result on key: %s", key)
		}
		data, _, err := s.fromStorage(ctx, it)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := runtime.Decode(s.codec, data)
		if err != nil {
			t.Fatalf("expecting successful decode of object from %v\n%v", err, string(data))
		}
		obj := decoded.(*example.Pod)
		if obj.ResourceVersion != "" {
			t.Errorf("stored object should have empty resource version")
		}
		if obj.SelfLink != "" {
			t.Errorf("stored output should have empty selfLink")
		}
	}
}

// increaseRV advances the global revision with a write outside the pods
// prefix, as etcd3's test writes an unrelated key.
func increaseRV(s *store) storagetesting.IncreaseRVFunc {
	return func(ctx context.Context, t *testing.T) int64 {
		other, err := NewStore(s.b, Config{
			Codec:          s.codec,
			NewFunc:        func() runtime.Object { return &example.Pod{} },
			ResourcePrefix: "/increaserv/",
		})
		if err != nil {
			t.Fatal(err)
		}
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "x"}}
		out := &example.Pod{}
		if err := other.Create(ctx, fmt.Sprintf("/increaserv/%d", s.b.Revision()), pod, out, 0); err != nil {
			t.Fatal(err)
		}
		rv, err := s.versioner.ParseResourceVersion(out.ResourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		return int64(rv)
	}
}

func compactStorage(s *store) storagetesting.Compaction {
	return func(ctx context.Context, t *testing.T, resourceVersion string) {
		rv, err := s.versioner.ParseResourceVersion(resourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		s.b.Compact(int64(rv))
		// etcd3's compaction writes its compact key, so the revision moves
		// on by one; the suite counts on that.
		s.b.bump()
	}
}

// storeWithPrefixTransformer lets the suite swap the transformer, as etcd3's does.
type storeWithPrefixTransformer struct{ *store }

func (s storeWithPrefixTransformer) UpdatePrefixTransformer(modifier storagetesting.PrefixTransformerModifier) func() {
	original := s.getTransformer().(*storagetesting.PrefixTransformer)
	copied := *original
	s.setTransformer(modifier(&copied))
	return func() { s.setTransformer(original) }
}

// storeWithTransformerOverride lets the suite wrap the transformer.
type storeWithTransformerOverride struct{ *store }

func (s storeWithTransformerOverride) UpdateTransformer(modifier storagetesting.TransformerModifier) func() {
	original := s.getTransformer()
	s.setTransformer(modifier(original))
	return func() { s.setTransformer(original) }
}

// failingTransformer fails every read while set, like etcd3's testTransformer.
type failingTransformer struct {
	value.Transformer
	fail atomic.Bool
}

func (f *failingTransformer) TransformFromStorage(ctx context.Context, data []byte, dataCtx value.Context) ([]byte, bool, error) {
	if f.fail.Load() {
		return nil, false, errors.New("synthetic error")
	}
	return f.Transformer.TransformFromStorage(ctx, data, dataCtx)
}

type failingCodec struct {
	runtime.Codec
	fail atomic.Bool
}

func (c *failingCodec) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	if c.fail.Load() {
		return nil, nil, errors.New("synthetic error")
	}
	return c.Codec.Decode(data, defaults, into)
}

// Every way of serving reads runs the suites: from the decode cache (the
// default), with lists handed out read-only and watch objects shared (the
// server's mode), and through a value transformer (each read decodes, as
// etcd3).
var readModes = []struct {
	name string
	opts []setupOption
}{
	{"cached", nil},
	{"server", []setupOption{withBackendOptions(Options{ReadOnlyLists: true, SharedWatchObjects: true})}},
	{"transformer", []setupOption{withPrefixTransformer()}},
}

func forReadModes(t *testing.T, run func(t *testing.T, ctx context.Context, s *store)) {
	for _, m := range readModes {
		t.Run(m.name, func(t *testing.T) {
			ctx, s := testSetup(t, m.opts...)
			run(t, ctx, s)
		})
	}
}

func TestCreate(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestCreate(ctx, t, s, checkStorageInvariants(s))
	})
}

func TestCreateWithTTL(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestCreateWithTTL(ctx, t, s)
}

func TestCreateWithKeyExist(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestCreateWithKeyExist(ctx, t, s)
}

func TestGet(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestGet(ctx, t, s)
	})
}

func TestUnconditionalDelete(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestUnconditionalDelete(ctx, t, s)
	})
}

func TestConditionalDelete(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestConditionalDelete(ctx, t, s)
	})
}

func TestDeleteWithSuggestion(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestDeleteWithSuggestion(ctx, t, s)
}

func TestDeleteWithSuggestionAndConflict(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestDeleteWithSuggestionAndConflict(ctx, t, s)
}

func TestDeleteWithSuggestionOfDeletedObject(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestDeleteWithSuggestionOfDeletedObject(ctx, t, s)
}

func TestValidateDeletionWithSuggestion(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestValidateDeletionWithSuggestion(ctx, t, s)
}

func TestValidateDeletionWithOnlySuggestionValid(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestValidateDeletionWithOnlySuggestionValid(ctx, t, s)
}

func TestDeleteWithConflict(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestDeleteWithConflict(ctx, t, s)
}

// The ExpectTransformOrDecodeError tests need reads that can fail: they run
// on a store with a transformer, where every read decodes.

func TestDeleteWithConflictAndMissingExpectedTransformOrDecodeError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	codec := &failingCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}
	ctx, s := testSetup(t, withCodec(codec), withPrefixTransformer())
	storagetesting.RunTestDeleteWithConflictAndMissingExpectedTransformOrDecodeError(ctx, t, s, codec.fail.Store)
}

func TestDeleteWithConflictAndExpectedTransformError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	transformer := &failingTransformer{Transformer: storagetesting.NewPrefixTransformer([]byte(testPrefix), false)}
	ctx, s := testSetup(t, withTransformer(transformer))
	storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, s, transformer.fail.Store)
}

func TestDeleteWithConflictAndExpectedDecodeError(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	codec := &failingCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}
	ctx, s := testSetup(t, withCodec(codec), withPrefixTransformer())
	storagetesting.RunTestDeleteExpectedTransformOrDecodeError(ctx, t, s, codec.fail.Store)
}

func TestDeleteWithSuggestionAndMissingExpectedTransformOrDecodeFailure(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, true)
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestDeleteWithSuggestionAndMissingExpectedTransformOrDecodeError(ctx, t, s)
	})
}

func TestPreconditionalDeleteWithSuggestion(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestPreconditionalDeleteWithSuggestion(ctx, t, s)
}

func TestPreconditionalDeleteWithSuggestionPass(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestPreconditionalDeleteWithOnlySuggestionPass(ctx, t, s)
}

func TestListPaging(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestListPaging(ctx, t, s)
}

func TestGetListNonRecursive(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestGetListNonRecursive(ctx, t, increaseRV(s), s)
	})
}

func TestGetListRecursivePrefix(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestGetListRecursivePrefix(ctx, t, s)
}

func TestKeySchema(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestKeySchema(ctx, t, s)
}

// TestGetListWithErrorAggregation (RunTestGetListWithErrorAggregation) does
// not run: it injects etcd3's unexported corruptObjectError through etcd3's
// corrupt-object-deletion wrapper, which exists to clean up values that an
// external writer or a lost encryption key left undecodable in etcd. Nothing
// but this process writes here, and every value is encoded by the same codec
// that reads it, so no such value can exist and there is nothing to collect.

func TestGetListWithoutErrorAggregation(t *testing.T) {
	featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, features.AllowUnsafeMalformedObjectDeletion, false)
	ctx, s := testSetup(t, withPrefixTransformer())
	storagetesting.RunTestGetListWithoutErrorAggregation(ctx, t, storeWithTransformerOverride{s}, errors.New("bits flipped"))
}

func TestGuaranteedUpdate(t *testing.T) {
	ctx, s := testSetup(t, withPrefixTransformer())
	storagetesting.RunTestGuaranteedUpdate(ctx, t, storeWithPrefixTransformer{s}, checkStorageInvariants(s))
}

func TestGuaranteedUpdateWithTTL(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestGuaranteedUpdateWithTTL(ctx, t, s)
}

func TestGuaranteedUpdateChecksStoredData(t *testing.T) {
	ctx, s := testSetup(t, withPrefixTransformer())
	storagetesting.RunTestGuaranteedUpdateChecksStoredData(ctx, t, storeWithPrefixTransformer{s})
}

func TestGuaranteedUpdateWithConflict(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestGuaranteedUpdateWithConflict(ctx, t, s)
	})
}

func TestGuaranteedUpdateWithSuggestionAndConflict(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestGuaranteedUpdateWithSuggestionAndConflict(ctx, t, s)
}

func TestTransformationFailure(t *testing.T) {
	ctx, s := testSetup(t, withPrefixTransformer())
	storagetesting.RunTestTransformationFailure(ctx, t, storeWithPrefixTransformer{s})
}

func TestList(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestList(ctx, t, s, compactStorage(s), false, nil)
	})
}

func TestConsistentList(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestConsistentList(ctx, t, s, increaseRV(s), false, true, false)
}

func TestCompactRevision(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestCompactRevision(ctx, t, s, increaseRV(s), compactStorage(s))
}

// The List* continuation tests take a CallsValidation that counts etcd
// range requests and transformer reads per page; there are no round trips
// here to count, so none is passed (the suites' own result checks still run).
func TestListContinuation(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestListContinuation(ctx, t, s, nil)
}

func TestListPaginationRareObject(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestListPaginationRareObject(ctx, t, s, nil)
}

func TestListContinuationWithFilter(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestListContinuationWithFilter(ctx, t, s, nil)
}

func TestNamespaceScopedList(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestNamespaceScopedList(ctx, t, s)
	})
}

func TestListInconsistentContinuation(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestListInconsistentContinuation(ctx, t, s, compactStorage(s))
}

func TestListResourceVersionMatch(t *testing.T) {
	ctx, s := testSetup(t, withPrefixTransformer())
	storagetesting.RunTestListResourceVersionMatch(ctx, t, storeWithPrefixTransformer{s})
}

func TestStats(t *testing.T) {
	for _, sizeEstimate := range []bool{true, false} {
		for _, m := range readModes {
			t.Run(fmt.Sprintf("%s/SizeBasedListCostEstimate=%v", m.name, sizeEstimate), func(t *testing.T) {
				ctx, s := testSetup(t, m.opts...)
				if sizeEstimate {
					if err := s.EnableResourceSizeEstimation(func(context.Context) ([]string, error) { return nil, nil }); err != nil {
						t.Fatal(err)
					}
				}
				transformer := s.getTransformer()
				if transformer == nil {
					transformer = identityTransformer{}
				}
				storagetesting.RunTestStats(ctx, t, s, s.codec, transformer, sizeEstimate)
			})
		}
	}
}

type identityTransformer struct{}

func (identityTransformer) TransformFromStorage(_ context.Context, data []byte, _ value.Context) ([]byte, bool, error) {
	return data, false, nil
}

func (identityTransformer) TransformToStorage(_ context.Context, data []byte, _ value.Context) ([]byte, error) {
	return data, nil
}

// --- watch, as etcd3's watcher_test.go ---

func TestWatch(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestWatch(ctx, t, s)
	})
}

func TestClusterScopedWatch(t *testing.T) {
	ctx, s := testSetup(t, withAttrFunc(apistorage.DefaultClusterScopedAttr))
	storagetesting.RunTestClusterScopedWatch(ctx, t, s)
}

func TestNamespaceScopedWatch(t *testing.T) {
	forReadModes(t, func(t *testing.T, ctx context.Context, s *store) {
		storagetesting.RunTestNamespaceScopedWatch(ctx, t, s)
	})
}

func TestDeleteTriggerWatch(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestDeleteTriggerWatch(ctx, t, s)
}

func TestWatchFromZero(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestWatchFromZero(ctx, t, s, compactStorage(s))
}

func TestWatchFromNonZero(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestWatchFromNonZero(ctx, t, s)
}

func TestDelayedWatchDelivery(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestDelayedWatchDelivery(ctx, t, s)
}

func TestWatchError(t *testing.T) {
	ctx, s := testSetup(t, withPrefixTransformer())
	storagetesting.RunTestWatchError(ctx, t, storeWithPrefixTransformer{s})
}

func TestWatchContextCancel(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestWatchContextCancel(ctx, t, s)
}

func TestWatcherTimeout(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestWatcherTimeout(ctx, t, s)
}

func TestWatchDeleteEventObjectHaveLatestRV(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(ctx, t, s)
}

func TestWatchInitializationSignal(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunTestWatchInitializationSignal(ctx, t, s)
}

// TestWatchWithUnsafeDelete (RunTestWatchWithUnsafeDelete) does not run, for
// the reason given at TestGetListWithErrorAggregation: it needs etcd3's
// corrupt-object wrapper and an undecodable stored value.

func TestWatchDispatchBookmarkEvents(t *testing.T) {
	// Without a BookmarkInterval the store sends no unsolicited bookmarks,
	// exactly as etcd3 (expectedWatchBookmarks=false there too).
	ctx, s := testSetup(t)
	storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, s, false)
}

func TestWatchDispatchBookmarkEventsWithInterval(t *testing.T) {
	// With one, watchers that allow bookmarks get them, as from the watch cache.
	ctx, s := testSetup(t, withBackendOptions(Options{BookmarkInterval: 500 * time.Millisecond}))
	storagetesting.RunTestWatchDispatchBookmarkEvents(ctx, t, s, true)
}

func TestOptionalWatchBookmarksWithCorrectResourceVersion(t *testing.T) {
	ctx, s := testSetup(t, withBackendOptions(Options{BookmarkInterval: 200 * time.Millisecond}))
	storagetesting.RunTestOptionalWatchBookmarksWithCorrectResourceVersion(ctx, t, s)
}

// The watch semantics suites that etcd3 runs besides the RunTest* ones.

func TestProgressNotify(t *testing.T) {
	ctx, s := testSetup(t, withBackendOptions(Options{ProgressNotifyInterval: time.Second}))
	storagetesting.RunOptionalTestProgressNotify(ctx, t, s, increaseRV(s))
}

func TestSendInitialEventsBackwardCompatibility(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunSendInitialEventsBackwardCompatibility(ctx, t, s)
}

func TestWatchSemantics(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunWatchSemantics(ctx, t, s)
}

func TestWatchSemanticInitialEventsExtended(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunWatchSemanticInitialEventsExtended(ctx, t, s)
}

func TestWatchListMatchSingle(t *testing.T) {
	ctx, s := testSetup(t)
	storagetesting.RunWatchListMatchSingle(ctx, t, s)
}

func TestWatchErrorEventIsBlockingFurtherEvent(t *testing.T) {
	ctx, s := testSetup(t, withPrefixTransformer())
	storagetesting.RunWatchErrorIsBlockingFurtherEvents(ctx, t, storeWithPrefixTransformer{s})
}

// bump advances the revision without touching any key, like the write to
// its compact key that etcd's compaction makes.
func (b *Backend) bump() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rev++
	return b.rev
}
