// Package crds reads CustomResourceDefinition manifests (files, directories,
// embedded trees; YAML or JSON, many documents per file) and installs them
// into a server, waiting until each is established and served, as envtest's
// CRDInstallOptions does.
package crds

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
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
// parse is an error naming the file and the line the document starts on.
func Parse(sources []Source) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, src := range sources {
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(src.Data)))
		line := 1
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", src.Name, line, err)
			}
			start := line + leadingLines(doc)
			line += bytes.Count(doc, []byte("\n"))
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", src.Name, start, err)
			}
			if meta.Kind != "CustomResourceDefinition" {
				continue
			}
			if meta.APIVersion != apiextensionsv1.SchemeGroupVersion.String() {
				return nil, fmt.Errorf("%s:%d: CustomResourceDefinition of apiVersion %q, want %s", src.Name, start, meta.APIVersion, apiextensionsv1.SchemeGroupVersion)
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(doc, crd); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", src.Name, start, err)
			}
			out = append(out, crd)
		}
	}
	return out, nil
}

// leadingLines counts the blank, comment and separator lines before a
// document's first line of content.
func leadingLines(doc []byte) int {
	n := 0
	for _, l := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			break
		}
		n++
	}
	return n
}

func stripComments(doc []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(l); !strings.HasPrefix(t, "#") && t != "---" {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
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
	}
	return nil
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
