// Package crds reads CustomResourceDefinition manifests (files, directories,
// embedded trees; YAML or JSON, many documents per file) and installs them
// into a server, waiting until each is established and served, as envtest's
// CRDInstallOptions does.
package crds

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Source is one manifest: where it came from (for errors) and its bytes.
type Source struct {
	Name string
	Data []byte
}

// ReadPaths reads files, and the *.yaml, *.yml and *.json files of
// directories (not recursively, as envtest), in name order.
func ReadPaths(paths []string) ([]Source, error) {
	var out []Source
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		files := []string{p}
		if info.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			files = files[:0]
			for _, e := range entries {
				if !e.IsDir() && isManifest(e.Name()) {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, Source{Name: f, Data: data})
		}
	}
	return out, nil
}

// ReadFS reads every manifest in the root of fsys, in name order.
func ReadFS(fsys fs.FS, dir string) ([]Source, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Source
	for _, e := range entries {
		if e.IsDir() || !isManifest(e.Name()) {
			continue
		}
		data, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Source{Name: e.Name(), Data: data})
	}
	return out, nil
}

func isManifest(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// Parse decodes every CustomResourceDefinition in the sources. Documents of
// other kinds are skipped, as envtest skips them; a document that does not
// parse is an error naming the file and the line.
func Parse(sources []Source) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, src := range sources {
		for _, doc := range splitDocuments(src.Data) {
			at := func(err error) error {
				return fmt.Errorf("%s:%d: %v", src.Name, doc.line+errorLine(err)-1, err)
			}
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc.data, &meta); err != nil {
				return nil, at(err)
			}
			if meta.Kind != "CustomResourceDefinition" {
				continue
			}
			if meta.APIVersion != apiextensionsv1.SchemeGroupVersion.String() {
				return nil, fmt.Errorf("%s:%d: CustomResourceDefinition of apiVersion %q, want %s", src.Name, doc.line, meta.APIVersion, apiextensionsv1.SchemeGroupVersion)
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(doc.data, crd); err != nil {
				return nil, at(err)
			}
			out = append(out, crd)
		}
	}
	return out, nil
}

// ParseJSON decodes a JSON array of CustomResourceDefinitions strictly
// (unknown or duplicate fields are errors), as the embedded Gateway API
// CRDs are kept: decoding JSON takes a sixth of the YAML's time.
func ParseJSON(data []byte) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var out []*apiextensionsv1.CustomResourceDefinition
	strict, err := sigsjson.UnmarshalStrict(data, &out)
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, errors.Join(strict...)
	}
	for i, crd := range out {
		if crd == nil || crd.APIVersion != apiextensionsv1.SchemeGroupVersion.String() || crd.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("item %d is not an %s CustomResourceDefinition", i, apiextensionsv1.SchemeGroupVersion)
		}
	}
	return out, nil
}

// Object is one manifest document of any kind, with where it came from.
type Object struct {
	Source string
	Line   int
	*unstructured.Unstructured
}

// Objects decodes every document of the sources, whatever its kind; a
// document that does not parse, or lacks apiVersion, kind or
// metadata.name, is an error naming the file and the line.
func Objects(sources []Source) ([]Object, error) {
	var out []Object
	for _, src := range sources {
		for _, doc := range splitDocuments(src.Data) {
			data, err := yaml.YAMLToJSON(doc.data)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", src.Name, doc.line+errorLine(err)-1, err)
			}
			var m map[string]any // numbers as int64 where whole, as the API decodes them
			if err := utiljson.Unmarshal(data, &m); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", src.Name, doc.line, err)
			}
			if m == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			switch {
			case u.GetAPIVersion() == "" || u.GetKind() == "":
				return nil, fmt.Errorf("%s:%d: apiVersion and kind are required", src.Name, doc.line)
			case u.GetName() == "":
				return nil, fmt.Errorf("%s:%d: %s: metadata.name is required", src.Name, doc.line, u.GetKind())
			}
			out = append(out, Object{Source: src.Name, Line: doc.line, Unstructured: u})
		}
	}
	return out, nil
}

type document struct {
	line int // of the document's first line in the file
	data []byte
}

// splitDocuments splits a YAML stream at "---" lines, keeping each
// document's line number; documents with nothing but comments are dropped.
// As upstream's YAMLReader, a separator starts at the first column and only a
// comment may follow it: an indented "---" (say, in a description) is text.
func splitDocuments(data []byte) []document {
	var docs []document
	var cur []string
	first, empty := 1, true
	flush := func() {
		if !empty {
			docs = append(docs, document{line: first, data: []byte(strings.Join(cur, "\n"))})
		}
	}
	blank := func(s string) bool { // nothing but spaces and a comment
		s = strings.TrimSpace(s)
		return s == "" || strings.HasPrefix(s, "#")
	}
	for i, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "---"); ok && blank(rest) {
			flush()
			cur, first, empty = nil, i+2, true
			continue
		}
		cur = append(cur, line)
		if !blank(line) {
			empty = false
		}
	}
	flush()
	return docs
}

var yamlLine = regexp.MustCompile(`yaml: line (\d+):`)

// errorLine is the line within the document that a YAML error names (1 if
// it names none).
func errorLine(err error) int {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			return n
		}
	}
	return 1
}

// Install creates the CRDs (an existing one of the same name is left as it
// is) and returns once every one is Established and its resources answer a
// LIST, or ctx ends.
func Install(ctx context.Context, client apiextensionsclient.Interface, dyn dynamic.Interface, crds []*apiextensionsv1.CustomResourceDefinition) error {
	for _, crd := range crds {
		if _, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("CustomResourceDefinition %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		if err := waitServed(ctx, client, dyn, crd); err != nil {
			return fmt.Errorf("CustomResourceDefinition %s: %w", crd.Name, err)
		}
		if err := backdateEstablished(ctx, client, crd.Name); err != nil {
			return fmt.Errorf("CustomResourceDefinition %s: %w", crd.Name, err)
		}
	}
	return nil
}

// justEstablished is how long apiextensions-apiserver holds every create of
// a custom resource after its CRD became Established (a fixed 2 s sleep in
// crdHandler.serveResource, so that the other API servers of an HA cluster
// catch up). There is one server here; for the CRDs installed before the
// server reports ready, the Established condition's transition time is set
// that much earlier, so the first creates after start-up do not wait 2 s.
const justEstablished = 2 * time.Second

func backdateEstablished(ctx context.Context, client apiextensionsclient.Interface, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		crd, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && time.Since(c.LastTransitionTime.Time) < justEstablished {
				crd.Status.Conditions[i].LastTransitionTime = metav1.NewTime(c.LastTransitionTime.Add(-justEstablished))
				_, err := client.ApiextensionsV1().CustomResourceDefinitions().UpdateStatus(ctx, crd, metav1.UpdateOptions{})
				return err
			}
		}
		return nil
	})
}

func waitServed(ctx context.Context, client apiextensionsclient.Interface, dyn dynamic.Interface, crd *apiextensionsv1.CustomResourceDefinition) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			last = err
			return false, nil
		}
		established := false
		for _, c := range got.Status.Conditions {
			switch {
			case c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue:
				established = true
			case c.Type == apiextensionsv1.NamesAccepted && c.Status == apiextensionsv1.ConditionFalse:
				return false, fmt.Errorf("names not accepted: %s", c.Message)
			}
		}
		if !established {
			last = errors.New("not established")
			return false, nil
		}
		for _, v := range got.Spec.Versions {
			if !v.Served {
				continue
			}
			gvr := schema.GroupVersionResource{Group: got.Spec.Group, Version: v.Name, Resource: got.Spec.Names.Plural}
			if _, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
				last = err
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return err
}
