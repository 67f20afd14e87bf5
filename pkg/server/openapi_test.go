package server

import (
	"reflect"
	"testing"

	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
)

// TestDefinitionNames checks that the remembered names are the namer's,
// that the namer is asked once per type, and that a caller changing the
// extensions it got does not change what the next caller gets.
func TestDefinitionNames(t *testing.T) {
	namer := openapinamer.NewDefinitionNamer(legacyscheme.Scheme)
	calls := map[string]int{}
	names := definitionNames(func(typ string) (string, spec.Extensions) {
		calls[typ]++
		return namer.GetDefinitionName(typ)
	})
	for _, typ := range []string{
		"io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
		"io.k8s.api.core.v1.Pod",
		"io.k8s.apimachinery.pkg.util.intstr.IntOrString", // no kind: no extensions
	} {
		wantName, wantExt := namer.GetDefinitionName(typ)
		if (wantExt == nil) != (typ == "io.k8s.apimachinery.pkg.util.intstr.IntOrString") {
			t.Fatalf("%s: the namer gave extensions %v", typ, wantExt)
		}
		for range 3 {
			name, ext := names(typ)
			if name != wantName || !reflect.DeepEqual(ext, wantExt) {
				t.Fatalf("%s: got %q %v, want %q %v", typ, name, ext, wantName, wantExt)
			}
			if ext != nil {
				ext["x-changed"] = true
			}
		}
		if calls[typ] != 1 {
			t.Errorf("%s: the namer was asked %d times, want once", typ, calls[typ])
		}
	}
	if _, ext := names("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"); len(ext["x-kubernetes-group-version-kind"].([]interface{})) < 10 {
		t.Errorf("DeleteOptions' extensions: %v", ext)
	}
	if _, ext := names("io.k8s.api.core.v1.Pod"); len(ext["x-kubernetes-group-version-kind"].([]interface{})) != 1 {
		t.Errorf("Pod's extensions: %v", ext)
	}
}
