package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/features"
	apistorage "k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/tools/cache"
)

// Config describes one resource's view of a Backend, with the same inputs
// that etcd3.New takes.
type Config struct {
	Codec          runtime.Codec
	NewFunc        func() runtime.Object
	NewListFunc    func() runtime.Object
	Prefix         string // storage prefix, e.g. "/registry"
	ResourcePrefix string // e.g. "/pods"
	GroupResource  schema.GroupResource
	// Transformer, when set, is applied to every value on its way in and out
	// (like encryption at rest). Without one, reads are served from a cache of
	// decoded objects instead of decoding stored bytes each time.
	Transformer value.Transformer
	// AttrFunc is the registry's GetAttrs (the one the watch cache gets).
	// The fields it gives are kept per object version, as the watch cache
	// keeps them, for the predicates that use the same function: a field
	// selector on a field without an index then builds no field set per
	// object and LIST.
	AttrFunc apistorage.AttrFunc
	// Indexers are the registry's indexes (the same the watch cache gets).
	// Field indexes ("f:spec.nodeName") serve LISTs whose field selector
	// requires an exact value of an indexed field, when the predicate names
	// the field in IndexFields as the registry's predicates do. Labels are
	// always indexed.
	Indexers *cache.Indexers
}

// store is a storage.Interface onto a Backend for one resource.
type store struct {
	b              *Backend
	codec          runtime.Codec
	versioner      apistorage.Versioner
	transformer    atomic.Pointer[transformerBox]
	pathPrefix     string
	resourcePrefix string
	groupResource  schema.GroupResource
	newFunc        func() runtime.Object
	newListFunc    func() runtime.Object
	sizeEstimation atomic.Bool
	// keyPrefix is where the resource's keys live, fieldIndexes the field
	// indexes of its registry by field name. indexLabels is false for custom
	// resources, whose LISTs do not use the label index (see GetList).
	keyPrefix    string
	fieldIndexes map[string]cache.IndexFunc
	indexLabels  bool
	// attrFunc is Config.AttrFunc, attrFuncPC its code pointer, by which
	// predicates using it are recognized. Closures of one function literal
	// (method values of a custom resource's strategy) share a code pointer;
	// a store's predicates come from its own registry, whose strategy they
	// share, so there the same code is the same function.
	attrFunc   apistorage.AttrFunc
	attrFuncPC uintptr
}

type transformerBox struct{ value.Transformer }

var _ apistorage.Interface = (*store)(nil)

// NewStore returns the storage.Interface of one resource on b.
func NewStore(b *Backend, c Config) (apistorage.Interface, error) {
	if c.Codec == nil {
		return nil, errors.New("storage: a codec is required")
	}
	pathPrefix := path.Join("/", c.Prefix)
	if pathPrefix != "/" {
		pathPrefix += "/"
	}
	s := &store{
		b:              b,
		codec:          c.Codec,
		versioner:      apistorage.APIObjectVersioner{},
		pathPrefix:     pathPrefix,
		resourcePrefix: c.ResourcePrefix,
		groupResource:  c.GroupResource,
		newFunc:        c.NewFunc,
		newListFunc:    c.NewListFunc,
		keyPrefix:      pathPrefix,
	}
	if rp := strings.Trim(c.ResourcePrefix, "/"); rp != "" {
		s.keyPrefix += rp + "/"
	}
	var names []string
	if c.Indexers != nil {
		for name, fn := range *c.Indexers {
			if field, ok := strings.CutPrefix(name, "f:"); ok && fn != nil {
				if s.fieldIndexes == nil {
					s.fieldIndexes = map[string]cache.IndexFunc{}
				}
				s.fieldIndexes[field] = fn
				names = append(names, field)
			}
		}
	}
	sort.Strings(names)
	b.registerFieldIndexes(s.keyPrefix, strings.Join(names, ","))
	if c.NewFunc != nil {
		_, unstructuredObjects := c.NewFunc().(*unstructured.Unstructured)
		s.indexLabels = !unstructuredObjects
	}
	if c.AttrFunc != nil {
		s.attrFunc, s.attrFuncPC = c.AttrFunc, reflect.ValueOf(c.AttrFunc).Pointer()
	}
	s.setTransformer(c.Transformer)
	b.registerStore(s)
	return s, nil
}

func (s *store) getTransformer() value.Transformer {
	if t := s.transformer.Load(); t != nil {
		return t.Transformer
	}
	return nil
}

func (s *store) setTransformer(t value.Transformer) {
	if t == nil {
		s.transformer.Store(nil)
		return
	}
	s.transformer.Store(&transformerBox{t})
}

type authenticatedDataString string

func (d authenticatedDataString) AuthenticatedData() []byte { return []byte(string(d)) }

// Versioner implements storage.Interface.
func (s *store) Versioner() apistorage.Versioner { return s.versioner }

// ReadinessCheck implements storage.Interface: memory is always ready.
func (s *store) ReadinessCheck() error { return nil }

// CompactRevision implements storage.Interface.
func (s *store) CompactRevision() int64 { return s.b.CompactedRevision() }

// RequestWatchProgress implements storage.Interface: every progress-notify
// watch gets a bookmark at the current revision.
func (s *store) RequestWatchProgress(ctx context.Context) error {
	s.b.notifyProgress(func(w *watchChan) bool { return w.progressNotify })
	return nil
}

// GetCurrentResourceVersion implements storage.Interface.
func (s *store) GetCurrentResourceVersion(ctx context.Context) (uint64, error) {
	return uint64(s.b.Revision()), nil
}

// EnableResourceSizeEstimation implements storage.Interface. The sizes are
// known exactly here, so the keys function is not needed.
func (s *store) EnableResourceSizeEstimation(getKeys apistorage.KeysFunc) error {
	if getKeys == nil {
		return errors.New("KeysFunc cannot be nil")
	}
	if !s.sizeEstimation.CompareAndSwap(false, true) {
		return errors.New("resourceSizeEstimator already enabled")
	}
	return nil
}

// Stats implements storage.Interface.
func (s *store) Stats(ctx context.Context) (apistorage.Stats, error) {
	prefix, err := s.prepareKey(s.resourcePrefix, true)
	if err != nil {
		return apistorage.Stats{}, err
	}
	count, size := s.b.countPrefix(prefix)
	stats := apistorage.Stats{ObjectCount: count}
	if s.sizeEstimation.Load() && count > 0 {
		stats.EstimatedAverageObjectSizeBytes = size / count
	}
	return stats, nil
}

func (s *store) prepareKey(key string, recursive bool) (string, error) {
	key, err := apistorage.PrepareKey(s.resourcePrefix, key, recursive)
	if err != nil {
		return "", err
	}
	if key[0] == '/' {
		key = key[1:]
	}
	return s.pathPrefix + key, nil
}

// --- writes ---

// Create implements storage.Interface.
func (s *store) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	preparedKey, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	if err := s.checkType(obj); err != nil {
		return err
	}
	if version, err := s.versioner.ObjectResourceVersion(obj); err == nil && version != 0 {
		return apistorage.ErrResourceVersionSetOnCreate
	}
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return fmt.Errorf("PrepareObjectForStorage failed: %v", err)
	}
	data, err := runtime.Encode(s.codec, obj)
	if err != nil {
		return err
	}
	next, err := s.newItem(ctx, preparedKey, data, obj, ttl)
	if err != nil {
		return err
	}
	rev, _, ok := s.b.commit(preparedKey, 0, next)
	if !ok {
		return apistorage.NewKeyExistsError(preparedKey, 0)
	}
	if out != nil {
		return s.decodeFresh(next, data, out, rev)
	}
	return nil
}

// newItem builds the item for obj, encoded as data, at key, transforming it if
// the store has a transformer. Its revision is set by the commit.
func (s *store) newItem(ctx context.Context, key string, data []byte, obj runtime.Object, ttl uint64) (*item, error) {
	stored := data
	if t := s.getTransformer(); t != nil {
		var err error
		stored, err = t.TransformToStorage(ctx, data, authenticatedDataString(key))
		if err != nil {
			return nil, apistorage.NewInternalError(err)
		}
	}
	index, err := s.indexKeys(obj)
	if err != nil {
		return nil, apistorage.NewInternalError(err)
	}
	it := &item{key: key, data: stored, index: index}
	if ttl != 0 {
		it.expires = time.Now().Add(time.Duration(ttl) * time.Second)
	}
	return it, nil
}

// indexKeys lists the labels and indexed field values of obj for the index.
func (s *store) indexKeys(obj runtime.Object) ([]indexKey, error) {
	var l map[string]string
	if m, err := meta.Accessor(obj); err == nil && s.indexLabels {
		l = m.GetLabels()
	}
	if len(l) == 0 && len(s.fieldIndexes) == 0 {
		return nil, nil
	}
	keys := make([]indexKey, 0, len(l)+len(s.fieldIndexes))
	for k, v := range l {
		keys = append(keys, indexKey{name: k, value: v})
	}
	for field, fn := range s.fieldIndexes {
		values, err := fn(obj)
		if err != nil {
			// As the watch cache, which cannot index such an object either.
			return nil, fmt.Errorf("unable to calculate the %s index entry of a %T: %w", field, obj, err)
		}
		for _, v := range values {
			keys = append(keys, indexKey{field: true, name: field, value: v})
		}
	}
	return keys, nil
}

// labelIndexKeys returns the labels that every object sel can select
// carries: those of its equality requirements (key=value, key==value,
// key in (value)).
func labelIndexKeys(sel labels.Selector) []indexKey {
	if sel == nil {
		return nil
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return nil
	}
	var keys []indexKey
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if values := r.ValuesUnsorted(); len(values) == 1 {
				keys = append(keys, indexKey{name: r.Key(), value: values[0]})
			}
		}
	}
	return keys
}

// fieldIndexKeys returns the field values that every object pred can select
// carries: the exact values its field selector requires of the fields that
// the predicate names in IndexFields and the store indexes. They serve a
// LIST while the backend finds the store's field indexes usable.
func (s *store) fieldIndexKeys(pred *apistorage.SelectionPredicate) []indexKey {
	if pred.Field == nil || len(s.fieldIndexes) == 0 {
		return nil
	}
	var keys []indexKey
	for _, field := range pred.IndexFields {
		if _, indexed := s.fieldIndexes[field]; !indexed {
			continue
		}
		if v, exact := pred.Field.RequiresExactMatch(field); exact {
			keys = append(keys, indexKey{field: true, name: field, value: v})
		}
	}
	return keys
}

// decodeFresh decodes the plain data of it into out at rev and, unless the
// store has a transformer, keeps a copy in the item's decode cache.
func (s *store) decodeFresh(it *item, data []byte, out runtime.Object, rev int64) error {
	if _, err := conversion.EnforcePtr(out); err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %v", err)
	}
	if _, _, err := s.codec.Decode(data, nil, out); err != nil {
		return err
	}
	if err := s.versioner.UpdateObject(out, uint64(rev)); err != nil {
		return err
	}
	if s.getTransformer() == nil && it != nil {
		if !it.superseded.Load() {
			it.cache(&decodedObject{by: s, gvk: targetVersion(out), obj: out.DeepCopyObject()})
		}
	}
	return nil
}

// checkType refuses an object that this resource cannot hold, where etcd
// would store it and fail every later read.
func (s *store) checkType(obj runtime.Object) error {
	if s.newFunc == nil || obj == nil {
		return nil
	}
	if want := s.newFunc(); reflect.TypeOf(want) != reflect.TypeOf(obj) {
		return apistorage.NewInternalError(fmt.Errorf("object of type %T cannot be stored as %s, which holds %T", obj, s.groupResource.String(), want))
	}
	return nil
}

// objState is what GuaranteedUpdate and Delete know of the current value.
type objState struct {
	obj   runtime.Object
	meta  *apistorage.ResponseMeta
	rev   int64
	data  []byte // encoded, untransformed
	stale bool
}

func (s *store) getState(ctx context.Context, it *item, key string, v reflect.Value, ignoreNotFound, expectTransformOrDecodeError bool) (*objState, error) {
	state := &objState{meta: &apistorage.ResponseMeta{}}
	if u, ok := v.Addr().Interface().(runtime.Unstructured); ok {
		state.obj = u.NewEmptyInstance()
	} else {
		state.obj = reflect.New(v.Type()).Interface().(runtime.Object)
	}
	if it == nil {
		if !ignoreNotFound {
			return nil, apistorage.NewKeyNotFoundError(key, 0)
		}
		if err := runtime.SetZeroValue(state.obj); err != nil {
			return nil, err
		}
		return state, nil
	}
	state.rev = it.rev
	state.meta.ResourceVersion = uint64(it.rev)
	if !it.expires.IsZero() {
		state.meta.TTL = int64(time.Until(it.expires).Seconds())
	}
	data, stale, err := s.fromStorage(ctx, it)
	if err != nil {
		if !expectTransformOrDecodeError {
			return nil, apistorage.NewInternalError(err)
		}
		state.obj = nil
		state.stale = true
		return state, nil
	}
	state.data = data
	state.stale = stale
	if err := s.decodeItem(it, data, state.obj, it.rev); err != nil {
		if !expectTransformOrDecodeError {
			return nil, err
		}
		state.obj = nil
		return state, nil
	}
	if expectTransformOrDecodeError {
		return nil, apistorage.NewInvalidObjError(key, "unsafe deletion is not allowed because the object is decodable from storage")
	}
	return state, nil
}

func (s *store) currentState(ctx context.Context, key string, v reflect.Value, ignoreNotFound, expectErr bool) func() (*objState, error) {
	return func() (*objState, error) {
		s.b.mu.RLock()
		it := s.b.getLocked(key)
		s.b.mu.RUnlock()
		return s.getState(ctx, it, key, v, ignoreNotFound, expectErr)
	}
}

func (s *store) getStateFromObject(obj runtime.Object) (*objState, error) {
	state := &objState{obj: obj, meta: &apistorage.ResponseMeta{}}
	rv, err := s.versioner.ObjectResourceVersion(obj)
	if err != nil {
		return nil, fmt.Errorf("couldn't get resource version: %v", err)
	}
	state.rev = int64(rv)
	state.meta.ResourceVersion = rv
	// The serialized form has no resourceVersion; clear it for encoding.
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return nil, fmt.Errorf("PrepareObjectForStorage failed: %v", err)
	}
	state.data, err = runtime.Encode(s.codec, obj)
	if err != nil {
		return nil, err
	}
	if err := s.versioner.UpdateObject(state.obj, rv); err != nil {
		return nil, err
	}
	return state, nil
}

// Delete implements storage.Interface, as etcd3's conditional delete.
func (s *store) Delete(ctx context.Context, key string, out runtime.Object, preconditions *apistorage.Preconditions,
	validateDeletion apistorage.ValidateObjectFunc, cachedExistingObject runtime.Object, opts apistorage.DeleteOptions) error {
	preparedKey, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(out)
	if err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %v", err)
	}
	expectErr := utilfeature.DefaultFeatureGate.Enabled(features.AllowUnsafeMalformedObjectDeletion) && opts.ExpectTransformOrDecodeError
	getCurrentState := s.currentState(ctx, preparedKey, v, false, expectErr)

	var origState *objState
	var origStateIsCurrent bool
	if cachedExistingObject != nil && !expectErr {
		origState, err = s.getStateFromObject(cachedExistingObject)
	} else {
		origState, err = getCurrentState()
		origStateIsCurrent = true
	}
	if err != nil {
		return err
	}

	for {
		checkErr := preconditions.Check(preparedKey, origState.obj)
		if checkErr == nil {
			checkErr = validateDeletion(ctx, origState.obj)
		}
		if checkErr != nil {
			if origStateIsCurrent {
				return checkErr
			}
			// The suggestion may be stale: read the current state and retry
			// unless it turns out to be the same revision.
			cachedRev := origState.rev
			origState, err = getCurrentState()
			if err != nil {
				return err
			}
			origStateIsCurrent = true
			if cachedRev == origState.rev {
				return checkErr
			}
			continue
		}

		rev, cur, ok := s.b.commit(preparedKey, origState.rev, nil)
		if !ok {
			origState, err = s.getState(ctx, cur, preparedKey, v, false, expectErr)
			if err != nil {
				return err
			}
			origStateIsCurrent = true
			continue
		}
		if expectErr {
			return nil
		}
		if _, _, err := s.codec.Decode(origState.data, nil, out); err != nil {
			return err
		}
		return s.versioner.UpdateObject(out, uint64(rev))
	}
}

// GuaranteedUpdate implements storage.Interface, as etcd3's.
func (s *store) GuaranteedUpdate(ctx context.Context, key string, destination runtime.Object, ignoreNotFound bool,
	preconditions *apistorage.Preconditions, tryUpdate apistorage.UpdateFunc, cachedExistingObject runtime.Object) error {
	preparedKey, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(destination)
	if err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %v", err)
	}
	getCurrentState := s.currentState(ctx, preparedKey, v, ignoreNotFound, false)

	var origState *objState
	var origStateIsCurrent bool
	if cachedExistingObject != nil {
		origState, err = s.getStateFromObject(cachedExistingObject)
	} else {
		origState, err = getCurrentState()
		origStateIsCurrent = true
	}
	if err != nil {
		return err
	}

	for {
		if err := preconditions.Check(preparedKey, origState.obj); err != nil {
			if origStateIsCurrent {
				return err
			}
			origState, err = getCurrentState()
			if err != nil {
				return err
			}
			origStateIsCurrent = true
			continue
		}

		ret, ttl, err := s.updateState(origState, tryUpdate)
		if err != nil {
			if origStateIsCurrent {
				return err
			}
			cachedRev := origState.rev
			cachedUpdateErr := err
			origState, err = getCurrentState()
			if err != nil {
				return err
			}
			origStateIsCurrent = true
			if cachedRev == origState.rev {
				return cachedUpdateErr
			}
			continue
		}
		if err := s.checkType(ret); err != nil {
			return err
		}

		data, err := runtime.Encode(s.codec, ret)
		if err != nil {
			return err
		}
		if !origState.stale && bytes.Equal(data, origState.data) {
			// A no-op: make sure it is one against the current value, not a
			// stale suggestion, then answer without writing.
			if !origStateIsCurrent {
				origState, err = getCurrentState()
				if err != nil {
					return err
				}
				origStateIsCurrent = true
				if !bytes.Equal(data, origState.data) {
					continue
				}
			}
			if !origState.stale {
				if _, _, err := s.codec.Decode(origState.data, nil, destination); err != nil {
					return err
				}
				return s.versioner.UpdateObject(destination, uint64(origState.rev))
			}
		}

		next, err := s.newItem(ctx, preparedKey, data, ret, ttl)
		if err != nil {
			return err
		}
		rev, cur, ok := s.b.commit(preparedKey, origState.rev, next)
		if !ok {
			origState, err = s.getState(ctx, cur, preparedKey, v, ignoreNotFound, false)
			if err != nil {
				return err
			}
			origStateIsCurrent = true
			continue
		}
		return s.decodeFresh(next, data, destination, rev)
	}
}

func (s *store) updateState(st *objState, userUpdate apistorage.UpdateFunc) (runtime.Object, uint64, error) {
	ret, ttlPtr, err := userUpdate(st.obj, *st.meta)
	if err != nil {
		return nil, 0, err
	}
	if err := s.versioner.PrepareObjectForStorage(ret); err != nil {
		return nil, 0, fmt.Errorf("PrepareObjectForStorage failed: %v", err)
	}
	var ttl uint64
	if ttlPtr != nil {
		ttl = *ttlPtr
	}
	return ret, ttl, nil
}

// --- reads ---

// fromStorage returns the plain encoded value of it: the stored bytes, run
// back through the transformer if there is one.
func (s *store) fromStorage(ctx context.Context, it *item) ([]byte, bool, error) {
	t := s.getTransformer()
	if t == nil {
		return it.data, false, nil
	}
	return t.TransformFromStorage(ctx, it.data, authenticatedDataString(it.key))
}

// targetVersion is the apiVersion an unstructured target asks to be decoded
// to; typed targets have their type.
func targetVersion(obj runtime.Object) string {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.GetAPIVersion()
	}
	return ""
}

// decodeItem fills out with the value of it at rev, from the decode cache
// when this store decoded it into the same kind of target before, otherwise
// by decoding data (the plain value).
func (s *store) decodeItem(it *item, data []byte, out runtime.Object, rev int64) error {
	if view := s.cachedView(it, out); view != nil {
		if err := copyInto(out, view); err != nil {
			return err
		}
	} else if err := s.decodeFresh(it, data, out, it.rev); err != nil {
		return err
	}
	if rev != it.rev {
		return s.versioner.UpdateObject(out, uint64(rev))
	}
	return nil
}

// cachedView returns the cached decoded object of it for a target like
// sample, without copying, or nil. The result must not be modified.
func (s *store) cachedView(it *item, sample runtime.Object) runtime.Object {
	if s.getTransformer() != nil {
		return nil
	}
	return cachedAs(it, s, targetVersion(sample), reflect.TypeOf(sample))
}

// cachedAs is cachedView with the target's checks done by the caller, once
// for a whole list.
func cachedAs(it *item, by *store, gvk string, typ reflect.Type) runtime.Object {
	if d := it.decoded.Load(); d != nil && d.by == by && d.gvk == gvk && reflect.TypeOf(d.obj) == typ {
		return d.obj
	}
	return nil
}

// copyInto deep-copies src into the object dst points to, of the same type.
func copyInto(dst, src runtime.Object) error {
	if reflect.TypeOf(dst) != reflect.TypeOf(src) {
		return fmt.Errorf("cannot copy %T into %T", src, dst)
	}
	deepCopyInto(src, reflect.ValueOf(dst))
	return nil
}

// Get implements storage.Interface.
func (s *store) Get(ctx context.Context, key string, opts apistorage.GetOptions, out runtime.Object) error {
	preparedKey, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	if _, err := conversion.EnforcePtr(out); err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %v", err)
	}
	s.b.mu.RLock()
	rev := s.b.rev
	it := s.b.getLocked(preparedKey)
	s.b.mu.RUnlock()
	if err := s.validateMinimumResourceVersion(opts.ResourceVersion, uint64(rev)); err != nil {
		return err
	}
	if it == nil {
		if opts.IgnoreNotFound {
			return runtime.SetZeroValue(out)
		}
		return apistorage.NewKeyNotFoundError(preparedKey, 0)
	}
	data, _, err := s.fromStorage(ctx, it)
	if err != nil {
		return apistorage.NewInternalError(err)
	}
	return s.decodeItem(it, data, out, it.rev)
}

func (s *store) validateMinimumResourceVersion(minimumResourceVersion string, actualRevision uint64) error {
	if minimumResourceVersion == "" {
		return nil
	}
	minimumRV, err := s.versioner.ParseResourceVersion(minimumResourceVersion)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %v", err))
	}
	if minimumRV > actualRevision {
		return apistorage.NewTooLargeResourceVersionError(minimumRV, actualRevision, 0)
	}
	return nil
}

// GetList implements storage.Interface: a list at the current revision or,
// inside the history window, at an older one, with etcd3's paging.
func (s *store) GetList(ctx context.Context, key string, opts apistorage.ListOptions, listObj runtime.Object) error {
	keyPrefix, err := s.prepareKey(key, opts.Recursive)
	if err != nil {
		return err
	}
	listPtr, err := meta.GetItemsPtr(listObj)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(listPtr)
	if err != nil || v.Kind() != reflect.Slice {
		return fmt.Errorf("need ptr to slice: %v", err)
	}
	newItemFunc := getNewItemFunc(listObj, v)
	withRev, continueKey, err := apistorage.ValidateListOptions(keyPrefix, s.versioner, opts)
	if err != nil {
		return err
	}
	paging := opts.Predicate.Limit > 0

	start, end := keyPrefix, keyPrefix+"\x00"
	if opts.Recursive {
		end = prefixEnd(keyPrefix)
		if continueKey != "" {
			start = continueKey
		}
	}

	// With an equality label or indexed field selector on the current
	// revision, only the items with that label or field value are visited.
	// Typed objects only: a conversion webhook may change the labels of a
	// custom resource between versions.
	sample := newItemFunc()
	_, isUnstructured := sample.(*unstructured.Unstructured)
	var labelKeys, fieldKeys []indexKey
	if !isUnstructured {
		labelKeys, fieldKeys = labelIndexKeys(opts.Predicate.Label), s.fieldIndexKeys(&opts.Predicate)
	}

	// Take the items under the read lock; items are immutable, so filtering
	// and copying happen after it is released.
	var items []*item
	s.b.mu.RLock()
	current, compacted := s.b.rev, s.b.compacted
	switch {
	case withRev > current:
		s.b.mu.RUnlock()
		return apistorage.NewTooLargeResourceVersionError(uint64(withRev), uint64(current), 0)
	case withRev != 0 && withRev < compacted:
		s.b.mu.RUnlock()
		return listCompactedError(len(opts.Predicate.Continue) > 0, continueKey, keyPrefix)
	}
	if withRev == 0 {
		// Not pinned to a revision: serve the newest, which must not be older
		// than the resourceVersion asked for.
		if err := s.validateMinimumResourceVersion(opts.ResourceVersion, uint64(current)); err != nil {
			s.b.mu.RUnlock()
			return err
		}
		withRev = current
	}
	var indexed, moreAfterLast bool
	if withRev == current && (len(labelKeys) > 0 || len(fieldKeys) > 0) {
		keys := labelKeys
		if len(fieldKeys) > 0 && s.b.fieldIndexesUsableLocked(s.keyPrefix) {
			keys = append(keys, fieldKeys...)
		}
		items, moreAfterLast, indexed = s.b.candidatesLocked(keys, start, end)
	}
	if !indexed {
		s.b.rangeAtLocked(start, end, withRev, func(it *item) bool {
			items = append(items, it)
			return true
		})
	}
	s.b.mu.RUnlock()

	pred := opts.Predicate
	readOnly := s.b.opts.ReadOnlyLists
	cached := s.getTransformer() == nil
	gvk, typ := targetVersion(sample), reflect.TypeOf(sample)
	// object returns the object of the item for the list: the cached one
	// (owned=false: shared, to be copied unless lists are read-only) or one
	// decoded for this call.
	object := func(i int, it *item) (obj runtime.Object, owned bool, err error) {
		if i%100 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, false, apistorage.NewTimeoutError(it.key, "request did not complete within requested timeout")
			}
		}
		if cached {
			if obj = cachedAs(it, s, gvk, typ); obj != nil {
				return obj, false, nil
			}
		}
		obj, err = s.decodeForList(ctx, it, newItemFunc)
		return obj, true, err
	}
	var lastKey string
	hasMore := false
	if pred.Empty() {
		// Every item is selected, so the items are filled straight into the
		// result (as the watch cache does in this case).
		n := len(items)
		if paging && int64(n) > pred.Limit {
			n, hasMore = int(pred.Limit), true
		}
		if n > 0 {
			lastKey = items[n-1].key
		}
		if err := fillList(v, n, func(i int) (runtime.Object, bool, error) { return object(i, items[i]) }, readOnly); err != nil {
			return err
		}
	} else {
		// Select first, on the cached objects, then copy only what is
		// returned. owned[i] says selected[i] was decoded for this call
		// (allocated at the first such object).
		var selected []runtime.Object
		var owned []bool
		get := func(i int) (runtime.Object, bool, error) { return selected[i], owned != nil && owned[i], nil }
		keptFields := s.keepsFieldsFor(&pred)
		for i, it := range items {
			if paging && int64(len(selected)) >= pred.Limit {
				hasMore = true
				break
			}
			lastKey = it.key
			obj, fresh, err := object(i, it)
			if err != nil {
				// As etcd3: the items read before the failure stay in the list.
				if fillErr := fillList(v, len(selected), get, readOnly); fillErr != nil {
					return fillErr
				}
				return err
			}
			if !s.matchesItem(&pred, keptFields, it, obj) {
				continue
			}
			if fresh && owned == nil {
				owned = make([]bool, len(selected))
			}
			selected = append(selected, obj)
			if owned != nil {
				owned = append(owned, fresh)
			}
		}
		if indexed && paging && !hasMore && int64(len(selected)) >= pred.Limit {
			// The limit was reached on the last candidate: as etcd3 (which
			// reads every key), there is more if any key follows it.
			hasMore = moreAfterLast
		}
		if err := fillList(v, len(selected), get, readOnly); err != nil {
			return err
		}
	}

	continueValue, remainingItemCount, err := apistorage.PrepareContinueToken(lastKey, keyPrefix, withRev, int64(len(items)), hasMore, opts)
	if err != nil {
		return err
	}
	if v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	if err := s.versioner.UpdateList(listObj, uint64(withRev), continueValue, remainingItemCount); err != nil {
		return err
	}
	if utilfeature.DefaultFeatureGate.Enabled(features.ShardedListAndWatch) {
		pred.SetShardInfoOnList(listObj)
	}
	return nil
}

// decodeForList decodes it into a new object for a list.
func (s *store) decodeForList(ctx context.Context, it *item, newItemFunc func() runtime.Object) (runtime.Object, error) {
	data, _, err := s.fromStorage(ctx, it)
	if err != nil {
		return nil, apistorage.NewInternalError(fmt.Errorf("unable to transform key %q: %w", it.key, err))
	}
	obj := newItemFunc()
	if err := s.decodeItem(it, data, obj, it.rev); err != nil {
		return nil, err
	}
	return obj, nil
}

// keepsFieldsFor says whether pred's field selector is matched on the field
// sets kept per item: when pred uses the registry's GetAttrs, as the watch
// cache matches on the fields it keeps per object.
func (s *store) keepsFieldsFor(pred *apistorage.SelectionPredicate) bool {
	return !pred.Empty() && pred.Field != nil && !pred.Field.Empty() && pred.ShardSelector == nil &&
		s.attrFunc != nil && pred.GetAttrs != nil && reflect.ValueOf(pred.GetAttrs).Pointer() == s.attrFuncPC
}

// matchesItem evaluates pred on obj, the object of it; with keptFields
// (keepsFieldsFor), on the field set kept in the item, which is immutable,
// computed at the first need.
func (s *store) matchesItem(pred *apistorage.SelectionPredicate, keptFields bool, it *item, obj runtime.Object) bool {
	if !keptFields {
		return matches(pred, obj)
	}
	f := it.fields.Load()
	if f == nil || f.by != s {
		_, set, err := s.attrFunc(obj)
		if err != nil {
			return false
		}
		f = &itemFields{by: s, set: set}
		if !it.superseded.Load() { // as item.cache: not on history
			it.fields.Store(f)
			if it.superseded.Load() {
				it.fields.Store(nil)
			}
		}
	}
	return pred.Field.Matches(f.set) && matchesLabels(pred, obj)
}

// matches evaluates pred on obj. A label-only selector is matched on the
// object's labels directly, which saves building a field set per object.
func matches(pred *apistorage.SelectionPredicate, obj runtime.Object) bool {
	if pred.Empty() {
		return true
	}
	if (pred.Field == nil || pred.Field.Empty()) && pred.ShardSelector == nil {
		return matchesLabels(pred, obj)
	}
	matched, err := pred.Matches(obj)
	return err == nil && matched
}

// matchesLabels evaluates pred's label selector on the labels of obj, which
// every upstream GetAttrs returns as the label set; the caller has matched
// the fields. An object without metadata goes through pred's GetAttrs.
func matchesLabels(pred *apistorage.SelectionPredicate, obj runtime.Object) bool {
	if pred.Label == nil || pred.Label.Empty() {
		return true
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		matched, err := pred.Matches(obj)
		return err == nil && matched
	}
	return pred.Label.Matches(labels.Set(m.GetLabels()))
}

// parallelCopyThreshold is the list size from which items are copied on
// all CPUs: copying dominates the cost of a large LIST.
const parallelCopyThreshold = 512

// fillList appends n objects, the ith from get, to the items slice v: owned
// ones (or all with readOnly) as shallow copies, the others deep-copied
// straight into their slot. On an error the items before the failing one
// stay in v.
func fillList(v reflect.Value, n int, get func(i int) (obj runtime.Object, owned bool, err error), readOnly bool) error {
	base := v.Len()
	if v.Cap() < base+n {
		grown := reflect.MakeSlice(v.Type(), base, base+n)
		reflect.Copy(grown, v)
		v.Set(grown)
	}
	v.SetLen(base + n)
	ptrType := reflect.PointerTo(v.Type().Elem())
	// fill fills [lo, hi) and returns the index of the failure, or hi.
	fill := func(lo, hi int) (int, error) {
		for i := lo; i < hi; i++ {
			obj, owned, err := get(i)
			if err != nil {
				return i, err
			}
			src := reflect.ValueOf(obj)
			if src.Type() != ptrType {
				return i, fmt.Errorf("cannot list %T as %v", obj, ptrType.Elem())
			}
			slot := v.Index(base + i)
			if readOnly || owned {
				slot.Set(src.Elem())
			} else {
				deepCopyInto(obj, slot.Addr())
			}
		}
		return hi, nil
	}
	workers := goruntime.GOMAXPROCS(0)
	if n < parallelCopyThreshold || workers < 2 {
		if failed, err := fill(0, n); err != nil {
			v.SetLen(base + failed)
			return err
		}
		return nil
	}
	failed, errs := make([]int, workers), make([]error, workers)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := range workers {
		wg.Go(func() { failed[w], errs[w] = fill(min(w*chunk, n), min((w+1)*chunk, n)) })
	}
	wg.Wait()
	// Chunks are in order: the first failure ends the list.
	for w, err := range errs {
		if err != nil {
			v.SetLen(base + failed[w])
			return err
		}
	}
	return nil
}

// deepCopyInto calls the generated DeepCopyInto of src with dst, a pointer
// to a value of the same type, so the copy lands in place without the
// intermediate allocation of DeepCopyObject.
func deepCopyInto(src runtime.Object, dst reflect.Value) {
	if u, ok := src.(*unstructured.Unstructured); ok {
		u.DeepCopyInto(dst.Interface().(*unstructured.Unstructured))
		return
	}
	if m := reflect.ValueOf(src).MethodByName("DeepCopyInto"); m.IsValid() {
		m.Call([]reflect.Value{dst})
		return
	}
	dst.Elem().Set(reflect.ValueOf(src.DeepCopyObject()).Elem())
}

const (
	expired         = "The resourceVersion for the provided list is too old."
	continueExpired = "The provided continue parameter is too old " +
		"to display a consistent list result. You can start a new list without " +
		"the continue parameter."
	inconsistentContinue = "The provided continue parameter is too old " +
		"to display a consistent list result. You can start a new list without " +
		"the continue parameter, or use the continue token in this response to " +
		"retrieve the remainder of the results. Continuing with the provided " +
		"token results in an inconsistent list - objects that were created, " +
		"modified, or deleted between the time the first chunk was returned " +
		"and now may show up in the list."
)

// listCompactedError is etcd3's answer to a list at a compacted revision.
func listCompactedError(paging bool, continueKey, keyPrefix string) error {
	if !paging {
		return apierrors.NewResourceExpired(expired)
	}
	newToken, err := apistorage.EncodeContinue(continueKey, keyPrefix, -1)
	if err != nil {
		return apierrors.NewResourceExpired(continueExpired)
	}
	statusError := apierrors.NewResourceExpired(inconsistentContinue)
	statusError.ErrStatus.ListMeta.Continue = newToken
	return statusError
}

func getNewItemFunc(listObj runtime.Object, v reflect.Value) func() runtime.Object {
	if ul, ok := listObj.(*unstructured.UnstructuredList); ok {
		if apiVersion := ul.GetAPIVersion(); len(apiVersion) > 0 {
			return func() runtime.Object {
				return &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": apiVersion}}
			}
		}
	}
	elem := v.Type().Elem()
	return func() runtime.Object {
		return reflect.New(elem).Interface().(runtime.Object)
	}
}

// Watch implements storage.Interface.
func (s *store) Watch(ctx context.Context, key string, opts apistorage.ListOptions) (watch.Interface, error) {
	preparedKey, err := s.prepareKey(key, opts.Recursive)
	if err != nil {
		return nil, err
	}
	rev, err := s.versioner.ParseResourceVersion(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	return s.watch(ctx, preparedKey, int64(rev), opts)
}
