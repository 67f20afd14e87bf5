package listcache

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	runtimeserializer "k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
)

// codecs is what upstream's NewDefaultAPIGroupInfo serves with.
var codecs = runtimeserializer.NewCodecFactory(scheme.Scheme,
	runtimeserializer.WithStreamingCollectionEncodingToJSON(), runtimeserializer.WithStreamingCollectionEncodingToProtobuf())

// mediaTypes are the formats the cache serves lists in.
var mediaTypes = []string{runtime.ContentTypeJSON, runtime.ContentTypeProtobuf}

// encode encodes obj as a handler does: the negotiated JSON serializer,
// converted to v1.
func encode(t *testing.T, ns runtime.NegotiatedSerializer, obj runtime.Object) []byte {
	t.Helper()
	return encodeAs(t, runtime.ContentTypeJSON, ns, obj)
}

// encodeAs encodes obj in a media type as a handler does: the negotiated
// serializer, converted to v1, with an allocator as the handlers give.
func encodeAs(t *testing.T, mediaType string, ns runtime.NegotiatedSerializer, obj runtime.Object) []byte {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(ns.SupportedMediaTypes(), mediaType)
	if !ok {
		t.Fatalf("no %s serializer", mediaType)
	}
	var buf bytes.Buffer
	enc := ns.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion)
	if err := runtime.NewEncoderWithAllocator(enc.(runtime.EncoderWithAllocator), &runtime.Allocator{}).Encode(obj, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pod(i int, rv string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("pod-%d", i), Namespace: "ns", UID: types.UID(fmt.Sprintf("uid-%d", i)), ResourceVersion: rv,
			Labels:            map[string]string{"app": "web", "i": strconv.Itoa(i)},
			CreationTimestamp: metav1.NewTime(time.Date(2026, 12, 3, 12, 0, i, 0, time.UTC)),
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs-uid"}},
			ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "m", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "nginx:1.27",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}},
			Env:       []corev1.EnvVar{{Name: "HTML", Value: "<b>&\"quoted\"\u2028</b>"}},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0." + strconv.Itoa(i)},
	}
}

func podList(rvs ...string) *corev1.PodList {
	l := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "100", Continue: "token"}}
	for i, rv := range rvs {
		l.Items = append(l.Items, pod(i, rv))
	}
	return l
}

// The wrapped serializer writes what upstream's writes, byte for byte,
// whether the items come from the cache or not.
func TestSameBytesAsUpstream(t *testing.T) {
	c := New(0)
	wrapped := Wrap(codecs, c)
	withoutUID := podList("5")
	withoutUID.Items[0].UID = ""
	withTypeMeta := podList("5", "6")
	withTypeMeta.Items[1].TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	cases := map[string]runtime.Object{
		"pods":             podList("5", "6", "7"),
		"empty":            &corev1.PodList{},
		"empty items":      &corev1.PodList{Items: []corev1.Pod{}},
		"no uid":           withoutUID,
		"item kinds":       withTypeMeta,
		"config maps":      &corev1.ConfigMapList{Items: []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "cm", ResourceVersion: "9"}, Data: map[string]string{"k": "v"}}}},
		"one pod":          &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u", ResourceVersion: "1"}},
		"unstructured":     &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "PodList"}, Items: []unstructured.Unstructured{{Object: map[string]any{"metadata": map[string]any{"name": "x", "uid": "x", "resourceVersion": "1"}}}}},
		"status (no list)": &metav1.Status{Status: metav1.StatusFailure, Code: 404},
	}
	for name, obj := range cases {
		for _, mediaType := range mediaTypes {
			if _, ok := obj.(*unstructured.UnstructuredList); ok && mediaType != runtime.ContentTypeJSON {
				continue // no protobuf for unstructured
			}
			t.Run(name+" as "+mediaType, func(t *testing.T) {
				want := encodeAs(t, mediaType, codecs, obj.DeepCopyObject())
				for round := range 3 { // a miss, then hits
					if got := encodeAs(t, mediaType, wrapped, obj.DeepCopyObject()); !bytes.Equal(got, want) {
						t.Fatalf("round %d:\n got %q\nwant %q", round, got, want)
					}
				}
			})
		}
	}
	if hits, misses := c.Stats(); hits == 0 || misses == 0 {
		t.Errorf("hits %d, misses %d: both expected", hits, misses)
	}
}

// A new version, a recreated object (new uid) and a different item kind
// are encoded afresh; unchanged items come from the cache.
func TestNewVersionsEncodedAfresh(t *testing.T) {
	c := New(0)
	wrapped := Wrap(codecs, c)
	check := func(l *corev1.PodList, wantHits, wantMisses int64) {
		t.Helper()
		for _, mediaType := range mediaTypes {
			h0, m0 := c.Stats()
			if got, want := encodeAs(t, mediaType, wrapped, l.DeepCopy()), encodeAs(t, mediaType, codecs, l.DeepCopy()); !bytes.Equal(got, want) {
				t.Fatalf("%s: got %q\nwant %q", mediaType, got, want)
			}
			h1, m1 := c.Stats()
			if h1-h0 != wantHits || m1-m0 != wantMisses {
				t.Errorf("%s: hits %d, misses %d; want %d, %d", mediaType, h1-h0, m1-m0, wantHits, wantMisses)
			}
		}
	}
	l := podList("5", "6", "7")
	check(l, 0, 3)
	check(l, 3, 0)
	// An update: a new resourceVersion and a new image.
	l.Items[1].ResourceVersion = "8"
	l.Items[1].Spec.Containers[0].Image = "nginx:1.28"
	check(l, 2, 1)
	// Deleted and created again under the same name: a new uid.
	l.Items[2].UID = "uid-2-again"
	l.Items[2].Status.Phase = corev1.PodPending
	check(l, 2, 1)
	// The same version with its kind set (another caller's list).
	l.Items[0].TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	check(l, 2, 1)
}

// The cache keeps at most its bound, dropping the oldest generation, and
// keeps what is listed again.
func TestBound(t *testing.T) {
	one := len(encode(t, codecs, podList("1"))) // about one item's size
	c := New(int64(one * 20))
	wrapped := Wrap(codecs, c)
	var live []corev1.Pod
	for i := range 200 {
		p := pod(i, strconv.Itoa(i+1))
		l := &corev1.PodList{Items: []corev1.Pod{p}}
		encode(t, wrapped, l)
		live = append(live, p)
		c.mu.Lock()
		held := c.curBytes
		for _, e := range c.prev {
			held += int64(len(e.data))
		}
		c.mu.Unlock()
		if held > c.maxBytes {
			t.Fatalf("after %d items the cache holds %d bytes, bound %d", i+1, held, c.maxBytes)
		}
	}
	// The last few are still there.
	h0, _ := c.Stats()
	encode(t, wrapped, &corev1.PodList{Items: live[195:]})
	if h1, _ := c.Stats(); h1-h0 != 5 {
		t.Errorf("%d of the 5 last items from the cache", h1-h0)
	}
}

// Concurrent LISTs of overlapping versions give the same bytes as
// upstream's (go test -race).
func TestConcurrent(t *testing.T) {
	c := New(4 << 10) // small: generations turn over while lists run
	wrapped := Wrap(codecs, c)
	done := make(chan error)
	for w := range 4 {
		go func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 200 {
				rvs := make([]string, 1+r.IntN(6))
				for i := range rvs {
					rvs[i] = strconv.Itoa(1 + r.IntN(3))
				}
				l := podList(rvs...)
				mediaType := mediaTypes[r.IntN(len(mediaTypes))]
				if got, want := encodeAs(t, mediaType, wrapped, l.DeepCopy()), encodeAs(t, mediaType, codecs, l.DeepCopy()); !bytes.Equal(got, want) {
					done <- fmt.Errorf("%s: got %q\nwant %q", mediaType, got, want)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
