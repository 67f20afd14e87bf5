package crds

import (
	"strings"
	"testing"
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
