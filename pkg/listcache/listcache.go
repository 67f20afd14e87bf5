// Package listcache writes LIST responses (JSON and protobuf) from a
// cache of each object version's encoding.
//
// Three quarters of a LIST's time is encoding, and kube-apiserver encodes
// every item again for every LIST. An object's encoding is fixed by its
// type, its uid and its resourceVersion (every write gives it a new
// resourceVersion, and revisions never go back, not even on a reset), so
// the encoding of an item listed before is reused as bytes. The output is
// the same, byte for byte, as upstream's streaming list encoders
// (k8s.io/apimachinery's JSON and protobuf serializers with
// StreamingCollectionsEncoding, kube-apiserver's default), whose framing is
// copied here.
//
// Only typed built-in lists go through the cache; custom resources
// (unstructured, their encoding can change with their CRD's schema), tables,
// partial object metadata, YAML, CBOR and pretty output are left to
// upstream.
package listcache

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// DefaultMaxBytes bounds the encodings one Cache keeps.
const DefaultMaxBytes = 64 << 20

// Cache keeps item encodings for the serializers wrapped with it. One
// server has one: its API groups share it.
type Cache struct {
	// maxBytes bounds the encodings kept: entries fill the current
	// generation; once it holds half the bound, it becomes the previous
	// one and the one before it is dropped. An entry read from the previous
	// generation moves to the current one, so what is listed stays and
	// the encodings of deleted objects go within two generations.
	maxBytes int64

	mu         sync.Mutex
	encoders   map[runtime.Identifier]int
	cur, prev  map[key]*entry
	curBytes   int64
	hits, miss int64
}

// key is one object in one encoding.
type key struct {
	encoder int // the index of the encoder's runtime.Identifier
	typ     reflect.Type
	uid     types.UID
}

// entry is the encoding of one version of the object.
type entry struct {
	resourceVersion, apiVersion, kind string
	data                              []byte
}

// New returns a Cache that keeps at most maxBytes of encodings
// (DefaultMaxBytes if maxBytes is not positive).
func New(maxBytes int64) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Cache{maxBytes: maxBytes, encoders: map[runtime.Identifier]int{}, cur: map[key]*entry{}}
}

// Stats reports how many listed items were written from the cache and how
// many were encoded.
func (c *Cache) Stats() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.miss
}

// encoder returns the index that stands for id in keys.
func (c *Cache) encoder(id runtime.Identifier) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.encoders[id]
	if !ok {
		i = len(c.encoders)
		c.encoders[id] = i
	}
	return i
}

// lookup is one listed item: what identifies its version, and its
// encoding once found or made.
type lookup struct {
	key
	rv   string
	tm   *metav1.TypeMeta
	data []byte
}

// get fills in the encodings the cache holds for ls, under one lock.
func (c *Cache) get(ls []lookup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range ls {
		l := &ls[i]
		if l.uid == "" {
			continue
		}
		e, ok := c.cur[l.key]
		if !ok {
			if e, ok = c.prev[l.key]; ok {
				delete(c.prev, l.key)
				c.putLocked(l.key, e)
			}
		}
		if ok && e.resourceVersion == l.rv && e.apiVersion == l.tm.APIVersion && e.kind == l.tm.Kind {
			l.data = e.data
			c.hits++
		} else {
			c.miss++
		}
	}
}

// encodings returns the encoding of each item: the cache's where it holds
// the item's version, else encode's, which the cache then keeps (items
// without a uid, resourceVersion or plain TypeMeta are encoded, not kept).
func (c *Cache) encodings(encoder int, items reflect.Value, encode func(any) ([]byte, error)) ([][]byte, error) {
	typ := items.Type().Elem()
	ls := make([]lookup, items.Len())
	objs := make([]any, items.Len())
	for i := range ls {
		item := items.Index(i).Addr().Interface()
		objs[i] = item
		m := item.(metav1.ObjectMetaAccessor).GetObjectMeta()
		uid, rv, tm := m.GetUID(), m.GetResourceVersion(), typeMetaOf(item)
		if uid == "" || rv == "" || tm == nil {
			continue // uid "" marks it: not kept
		}
		ls[i] = lookup{key: key{encoder: encoder, typ: typ, uid: uid}, rv: rv, tm: tm}
	}
	c.get(ls)
	out := make([][]byte, len(ls))
	var made []int
	for i := range ls {
		if ls[i].data == nil {
			data, err := encode(objs[i])
			if err != nil {
				return nil, err
			}
			ls[i].data = data
			if ls[i].uid != "" {
				made = append(made, i)
			}
		}
		out[i] = ls[i].data
	}
	if len(made) > 0 {
		c.mu.Lock()
		for _, i := range made {
			l := &ls[i]
			c.putLocked(l.key, &entry{resourceVersion: l.rv, apiVersion: l.tm.APIVersion, kind: l.tm.Kind, data: l.data})
		}
		c.mu.Unlock()
	}
	return out, nil
}

func (c *Cache) putLocked(k key, e *entry) {
	if old, ok := c.cur[k]; ok {
		c.curBytes -= int64(len(old.data))
	}
	c.cur[k] = e
	c.curBytes += int64(len(e.data))
	if c.curBytes > c.maxBytes/2 {
		c.prev, c.cur, c.curBytes = c.cur, map[key]*entry{}, 0
	}
}

// Wrap returns s with its JSON and protobuf serializers writing lists
// through c.
func Wrap(s runtime.NegotiatedSerializer, c *Cache) runtime.NegotiatedSerializer {
	infos := append([]runtime.SerializerInfo(nil), s.SupportedMediaTypes()...)
	for i := range infos {
		inner := infos[i].Serializer
		if inner == nil {
			continue
		}
		switch infos[i].MediaType {
		case runtime.ContentTypeJSON:
			infos[i].Serializer = &jsonSerializer{Serializer: inner, cache: c, encoder: c.encoder(inner.Identifier())}
		case runtime.ContentTypeProtobuf:
			infos[i].Serializer = &protobufSerializer{Serializer: inner, cache: c, encoder: c.encoder(inner.Identifier())}
		}
	}
	return &negotiated{NegotiatedSerializer: s, infos: infos}
}

type negotiated struct {
	runtime.NegotiatedSerializer
	infos []runtime.SerializerInfo
}

func (n *negotiated) SupportedMediaTypes() []runtime.SerializerInfo { return n.infos }

// jsonSerializer is the JSON serializer with lists encoded through the
// cache. Everything else, decoding included, is the wrapped serializer's.
type jsonSerializer struct {
	runtime.Serializer
	cache   *Cache
	encoder int
}

// Encode writes a typed list from the cached encodings of its items, and
// anything else as the wrapped serializer does.
func (s *jsonSerializer) Encode(obj runtime.Object, w io.Writer) error {
	if _, ok := obj.(json.Marshaler); ok { // UnstructuredList included: upstream's own path
		return s.Serializer.Encode(obj, w)
	}
	list, ok := listOf(obj, jsonTags)
	if !ok {
		return s.Serializer.Encode(obj, w)
	}
	return s.encodeList(list, w)
}

// list is a typed list's parts, as upstream's streaming encoder takes them.
type list struct {
	typeMeta metav1.TypeMeta
	listMeta metav1.ListMeta
	items    reflect.Value // the Items slice
}

// listTags are the struct tags a list's fields must have for a format's
// streaming list encoder to write it field by field.
type listTags struct {
	name                  string // "json" or "protobuf"
	typeMeta              func(tag string, ok bool) bool
	listMeta, items       string
	itemsMustNotImplement reflect.Type // a custom encoding upstream would use
	itemsMustImplement    reflect.Type // the encoding the cache uses
}

var (
	jsonTags = listTags{
		name:                  "json",
		typeMeta:              func(tag string, ok bool) bool { return ok && (tag == "" || tag == ",inline") },
		listMeta:              "metadata,omitempty",
		items:                 "items",
		itemsMustNotImplement: marshalerType,
	}
	protobufTags = listTags{
		name:               "protobuf",
		typeMeta:           func(tag string, _ bool) bool { return tag == "" },
		listMeta:           "bytes,1,opt,name=metadata",
		items:              "bytes,2,rep,name=items",
		itemsMustImplement: protoMarshalerType,
	}
)

// listOf takes obj apart if it is a list that upstream's streaming encoder
// of the format writes field by field: TypeMeta inline, ListMeta as
// "metadata", and a slice "items" of structs that are objects with object
// metadata.
func listOf(obj runtime.Object, tags listTags) (list, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return list{}, false
	}
	v = v.Elem()
	t := v.Type()
	if t.Kind() != reflect.Struct || t.NumField() != 3 {
		return list{}, false
	}
	typeMeta, ok := v.Field(0).Interface().(metav1.TypeMeta)
	if !ok || !t.Field(0).Anonymous || !tags.typeMeta(t.Field(0).Tag.Lookup(tags.name)) {
		return list{}, false
	}
	listMeta, ok := v.Field(1).Interface().(metav1.ListMeta)
	if !ok || t.Field(1).Tag.Get(tags.name) != tags.listMeta {
		return list{}, false
	}
	items := v.Field(2)
	if t.Field(2).Tag.Get(tags.name) != tags.items || items.Kind() != reflect.Slice || items.Type().Elem().Kind() != reflect.Struct {
		return list{}, false
	}
	elem := reflect.PointerTo(items.Type().Elem())
	if !elem.Implements(objectType) || !elem.Implements(metaAccessorType) ||
		tags.itemsMustNotImplement != nil && elem.Implements(tags.itemsMustNotImplement) ||
		tags.itemsMustImplement != nil && !elem.Implements(tags.itemsMustImplement) {
		return list{}, false
	}
	return list{typeMeta: typeMeta, listMeta: listMeta, items: items}, true
}

var (
	objectType       = reflect.TypeFor[runtime.Object]()
	metaAccessorType = reflect.TypeFor[metav1.ObjectMetaAccessor]()
	marshalerType    = reflect.TypeFor[json.Marshaler]()
	// protoMarshalerType is what the generated protobuf code of every
	// built-in kind implements.
	protoMarshalerType = reflect.TypeFor[interface{ Marshal() ([]byte, error) }]()
)

// encodeList writes what upstream's streamEncoder.encodeList writes.
func (s *jsonSerializer) encodeList(l list, w io.Writer) error {
	e := &encoder{w: w}
	e.json = json.NewEncoder(&e.buf)
	if _, err := w.Write([]byte(`{`)); err != nil {
		return err
	}
	if l.typeMeta.Kind != "" {
		if err := e.keyValue("kind", l.typeMeta.Kind, []byte(",")); err != nil {
			return err
		}
	}
	if l.typeMeta.APIVersion != "" {
		if err := e.keyValue("apiVersion", l.typeMeta.APIVersion, []byte(",")); err != nil {
			return err
		}
	}
	if err := e.keyValue("metadata", l.listMeta, []byte(",")); err != nil {
		return err
	}
	if l.items.IsNil() {
		if err := e.keyValue("items", nil, nil); err != nil {
			return err
		}
	} else if err := s.encodeItems(e, l.items); err != nil {
		return err
	}
	_, err := w.Write([]byte("}\n"))
	return err
}

// encodeItems writes the items, from the cache where it holds their
// version.
func (s *jsonSerializer) encodeItems(e *encoder, items reflect.Value) error {
	data, err := s.cache.encodings(s.encoder, items, func(item any) ([]byte, error) {
		e.buf.Reset()
		if err := e.json.Encode(item); err != nil {
			return nil, err
		}
		return bytes.Clone(e.buf.Bytes()[:e.buf.Len()-1]), nil // without Encode's newline
	})
	if err != nil {
		return err
	}
	if _, err := e.w.Write([]byte(`"items":[`)); err != nil {
		return err
	}
	for i, d := range data {
		if i > 0 {
			if _, err := e.w.Write([]byte(",")); err != nil {
				return err
			}
		}
		if _, err := e.w.Write(d); err != nil {
			return err
		}
	}
	_, err = e.w.Write([]byte("]"))
	return err
}

// typeMetaOf returns the item's TypeMeta (part of its encoding), nil for
// an object whose kind is not a plain TypeMeta.
func typeMetaOf(item any) *metav1.TypeMeta {
	if o, ok := item.(runtime.Object); ok {
		if tm, ok := o.GetObjectKind().(*metav1.TypeMeta); ok {
			return tm
		}
	}
	return nil
}

// encoder writes JSON values to w, as upstream's streamEncoder does.
type encoder struct {
	w    io.Writer
	buf  bytes.Buffer
	json *json.Encoder
}

func (e *encoder) keyValue(key string, value any, suffix []byte) error {
	if err := e.value(key, []byte(":")); err != nil {
		return err
	}
	return e.value(value, suffix)
}

// value writes value and then suffix; the encoder's newline is dropped so
// that the output is json.Marshal's.
func (e *encoder) value(value any, suffix []byte) error {
	e.buf.Reset()
	if err := e.json.Encode(value); err != nil {
		return err
	}
	e.buf.Truncate(e.buf.Len() - 1)
	e.buf.Write(suffix)
	_, err := e.w.Write(e.buf.Bytes())
	return err
}
