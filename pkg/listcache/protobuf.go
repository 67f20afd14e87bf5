package listcache

import (
	"encoding/binary"
	"io"
	"math/bits"

	"k8s.io/apimachinery/pkg/runtime"
)

// protobufPrefix starts every Kubernetes protobuf document ("k8s\x00").
var protobufPrefix = []byte{0x6b, 0x38, 0x73, 0x00}

// protobufSerializer is the protobuf serializer with lists encoded through
// the cache, as upstream's streaming protobuf list encoder writes them: the
// runtime.Unknown envelope whose raw bytes are the list's metadata (field
// 1) and its items (field 2), each item the bytes of its generated Marshal.
type protobufSerializer struct {
	runtime.Serializer
	cache   *Cache
	encoder int
}

// Encode writes a typed list from the cached encodings of its items, and
// anything else as the wrapped serializer does.
func (s *protobufSerializer) Encode(obj runtime.Object, w io.Writer) error {
	if l, ok := listOf(obj, protobufTags); ok {
		return s.encodeList(obj, l, w)
	}
	return s.Serializer.Encode(obj, w)
}

// EncodeWithAllocator is Encode for callers that bring an allocator (the
// API handlers); lists do not need one.
func (s *protobufSerializer) EncodeWithAllocator(obj runtime.Object, w io.Writer, a runtime.MemoryAllocator) error {
	if l, ok := listOf(obj, protobufTags); ok {
		return s.encodeList(obj, l, w)
	}
	if e, ok := s.Serializer.(runtime.EncoderWithAllocator); ok {
		return e.EncodeWithAllocator(obj, w, a)
	}
	return s.Serializer.Encode(obj, w)
}

func (s *protobufSerializer) encodeList(obj runtime.Object, l list, w io.Writer) error {
	listMeta, err := l.listMeta.Marshal()
	if err != nil {
		return err
	}
	data, err := s.cache.encodings(s.encoder, l.items, func(item any) ([]byte, error) {
		return item.(interface{ Marshal() ([]byte, error) }).Marshal()
	})
	if err != nil {
		return err
	}
	size := fieldSize(len(listMeta))
	for _, d := range data {
		size += fieldSize(len(d))
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	unk := runtime.Unknown{TypeMeta: runtime.TypeMeta{Kind: gvk.Kind, APIVersion: gvk.GroupVersion().String()}}
	if _, err := w.Write(protobufPrefix); err != nil {
		return err
	}
	_, err = unk.MarshalToWriter(w, size, func(w io.Writer) (int, error) {
		header := make([]byte, 1+binary.MaxVarintLen64)
		n, err := writeField(w, header, 0xa, listMeta) // field 1, bytes
		if err != nil {
			return n, err
		}
		for _, d := range data {
			m, err := writeField(w, header, 0x12, d) // field 2, bytes
			n += m
			if err != nil {
				return n, err
			}
		}
		return n, nil
	})
	return err
}

// fieldSize is the size of a length-delimited field of n bytes with a
// one-byte tag.
func fieldSize(n int) int { return 1 + varintSize(uint64(n)) + n }

func varintSize(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// writeField writes tag, the length of data and data.
func writeField(w io.Writer, header []byte, tag byte, data []byte) (int, error) {
	header[0] = tag
	h := 1 + binary.PutUvarint(header[1:], uint64(len(data)))
	n, err := w.Write(header[:h])
	if err != nil {
		return n, err
	}
	m, err := w.Write(data)
	return n + m, err
}
