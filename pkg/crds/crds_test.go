package crds

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/mockernetes/mockernetes/manifests"
)

// TestParseSeparators checks that only a "---" in the first column, alone
// or before a comment, separates documents, as upstream's YAMLReader has it:
// one inside a block scalar belongs to the text.
func TestParseSeparators(t *testing.T) {
	const manifest = `# leading comment
--- # first
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: |
          A widget.
          ---
          Not a separator.
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: skipped
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
`
	crds, err := Parse([]Source{{Name: "m.yaml", Data: []byte(manifest)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 2 || crds[0].Name != "widgets.example.com" || crds[1].Name != "gadgets.example.com" {
		t.Fatalf("got %d CRDs: %v", len(crds), crds)
	}
	desc := crds[0].Spec.Versions[0].Schema.OpenAPIV3Schema.Description
	if !strings.Contains(desc, "---\nNot a separator.") {
		t.Fatalf("description cut at the indented ---: %q", desc)
	}
}

var update = flag.Bool("update", false, "rewrite manifests/gateway-api.json from manifests/gateway-api/*.yaml")

// TestGatewayAPIJSON checks that the embedded JSON of the Gateway API CRDs
// is the parse of their YAML, as released: a refresh of the YAML without
// the JSON fails here. -update rewrites the JSON.
func TestGatewayAPIJSON(t *testing.T) {
	sources, err := ReadPaths([]string{"../../manifests/gateway-api"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse(sources)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("no CRDs in manifests/gateway-api")
	}
	if *update {
		data, err := marshalJSON(want)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("../../manifests/gateway-api.json", data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ParseJSON(manifests.GatewayAPICRDs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		for i := range min(len(got), len(want)) {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("%s differs from the YAML: %s", want[i].Name, cmp.Diff(want[i], got[i]))
			}
		}
		t.Fatalf("manifests/gateway-api.json has %d CRDs, the YAML %d; run go test ./pkg/crds -run TestGatewayAPIJSON -update", len(got), len(want))
	}
}

// TestParseJSONErrors checks that the JSON form is read strictly.
func TestParseJSONErrors(t *testing.T) {
	for name, data := range map[string]string{
		"not an array":  `{"kind": "CustomResourceDefinition"}`,
		"unknown field": `[{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "spec": {"groop": "x"}}]`,
		"other kind":    `[{"apiVersion": "v1", "kind": "ConfigMap"}]`,
		"null item":     `[null]`,
		"truncated":     `[{"apiVersion": "apiextensions.k8s.io/v1"`,
	} {
		if _, err := ParseJSON([]byte(data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// BenchmarkGatewayAPI decodes the Gateway API CRDs as released (YAML) and
// as the server embeds them (JSON): every default start does one.
func BenchmarkGatewayAPI(b *testing.B) {
	sources, err := ReadPaths([]string{"../../manifests/gateway-api"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("yaml", func(b *testing.B) {
		for b.Loop() {
			if _, err := Parse(sources); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseJSON(manifests.GatewayAPICRDs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// marshalJSON writes crds as ParseJSON reads them: a JSON array, one CRD
// per line.
func marshalJSON(crds []*apiextensionsv1.CustomResourceDefinition) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, crd := range crds {
		data, err := json.Marshal(crd)
		if err != nil {
			return nil, err
		}
		b.Write(data)
		if i < len(crds)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]\n")
	return b.Bytes(), nil
}
