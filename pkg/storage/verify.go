package storage

import (
	"context"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// VerifyCache reports the current items whose cached decoded object no
// longer equals a fresh decode of the stored value. The store never writes
// to its cached objects; with ReadOnlyLists, a caller that modified a listed
// item would show here. Tests of code that runs on ReadOnlyLists (the
// server) use it to prove that it does not.
func (b *Backend) VerifyCache() error {
	b.mu.RLock()
	var items []*item
	b.tree.Ascend(func(it *item) bool {
		items = append(items, it)
		return true
	})
	b.mu.RUnlock()
	var changed []string
	for _, it := range items {
		d := it.decoded.Load()
		if d == nil {
			continue
		}
		fresh := reflect.New(reflect.TypeOf(d.obj).Elem()).Interface().(runtime.Object)
		if u, ok := fresh.(*unstructured.Unstructured); ok {
			u.SetAPIVersion(d.gvk)
		}
		data, _, err := d.by.fromStorage(context.Background(), it)
		if err != nil {
			return err
		}
		if err := d.by.decodeFresh(nil, data, fresh, it.rev); err != nil {
			return fmt.Errorf("%s: %w", it.key, err)
		}
		if !equality.Semantic.DeepEqual(fresh, d.obj) {
			changed = append(changed, it.key)
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("cached objects modified after they were read: %v", changed)
	}
	return nil
}
