package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// The informers' copies leave managed fields out and keep the rest; what
// is not an object (a deletion's tombstone) passes as it is.
func TestTrimManagedFields(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}}}
	got, err := TrimManagedFields(pod)
	if err != nil {
		t.Fatal(err)
	}
	p := got.(*corev1.Pod)
	if p.ManagedFields != nil || p.Name != "web" || p.Labels["app"] != "web" {
		t.Errorf("trimmed %+v, want the pod without managed fields", p.ObjectMeta)
	}
	tombstone := cache.DeletedFinalStateUnknown{Key: "default/web", Obj: pod}
	if got, err := TrimManagedFields(tombstone); err != nil || got != any(tombstone) {
		t.Errorf("tombstone: %v, %v; want it unchanged", got, err)
	}
}
