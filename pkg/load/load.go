// Package load puts manifests of any kind into a running server, as
// `mockernetes serve --load` and a reset with manifests do: the
// CustomResourceDefinitions first (waiting until they are served), then the
// namespaces (those the other objects name are created when missing), then
// everything else, each by server-side apply, so that the manifests may name
// objects that exist already. Objects a controller owns are left to it.
package load

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/mockernetes/mockernetes/pkg/crds"
)

// FieldManager owns the fields the manifests set.
const FieldManager = "mockernetes-load"

// Manifests are parsed manifests, ready to apply.
type Manifests struct {
	crds    []*apiextensionsv1.CustomResourceDefinition
	objects []crds.Object
}

// Parse reads the documents of sources (file:line in every error).
func Parse(sources []crds.Source) (*Manifests, error) {
	defs, err := crds.Parse(sources)
	if err != nil {
		return nil, err
	}
	objects, err := crds.Objects(sources)
	if err != nil {
		return nil, err
	}
	return &Manifests{crds: defs, objects: objects}, nil
}

// Join is the manifests of ms, in their order.
func Join(ms ...*Manifests) *Manifests {
	out := &Manifests{}
	for _, m := range ms {
		if m != nil {
			out.crds = append(out.crds, m.crds...)
			out.objects = append(out.objects, m.objects...)
		}
	}
	return out
}

// CRDs are the CustomResourceDefinitions among the manifests.
func (m *Manifests) CRDs() []*apiextensionsv1.CustomResourceDefinition { return m.crds }

// Apply puts the manifests into the server config points at.
func (m *Manifests) Apply(ctx context.Context, config *rest.Config) error {
	if m == nil || len(m.objects) == 0 {
		return nil
	}
	ext, err := apiextensionsclient.NewForConfig(config)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	if err := crds.Install(ctx, ext, dyn, m.crds); err != nil {
		return err
	}
	mapper, err := RESTMapper(config)
	if err != nil {
		return err
	}

	var namespaces, others []crds.Object
	for _, o := range m.objects {
		switch {
		case o.GetKind() == "CustomResourceDefinition":
		case o.GetKind() == "Namespace" && o.GroupVersionKind().Group == "":
			namespaces = append(namespaces, o)
		default:
			others = append(others, o)
		}
	}
	for _, o := range namespaces {
		if err := apply(ctx, dyn, mapper, o); err != nil {
			return err
		}
	}
	created := map[string]bool{}
	for _, o := range others {
		mapping, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			return at(o, err)
		}
		if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
			continue
		}
		ns := o.GetNamespace()
		if ns == "" {
			ns = corev1.NamespaceDefault
		}
		if created[ns] {
			continue
		}
		created[ns] = true
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return at(o, fmt.Errorf("namespace %s: %w", ns, err))
		}
	}
	for _, o := range others {
		if err := apply(ctx, dyn, mapper, o); err != nil {
			return err
		}
	}
	return nil
}

// RESTMapper maps kinds to resources from the server's discovery, asked
// when first needed (after the CRDs are in).
func RESTMapper(config *rest.Config) (meta.RESTMapper, error) {
	disco, err := discovery.NewDiscoveryClientForConfig(config)
	if err != nil {
		return nil, err
	}
	return restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)), nil
}

func apply(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, o crds.Object) error {
	// What a server sets for itself (a snapshot of another server carries
	// it) is not applied.
	o.Unstructured = o.DeepCopy()
	for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	gvk := o.GroupVersionKind()
	// What a controller owns (a ReplicaSet's pods, a DaemonSet's revisions,
	// a node's mirror pods) is that controller's to create: a snapshot's
	// copy names an owner by a uid this server does not have (it applies
	// the owner anew), which the garbage collector would delete, and
	// which would clash with the copy the controller already made.
	if metav1.GetControllerOfNoCopy(o) != nil {
		return nil
	}
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return at(o, err)
	}
	var r dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.GetNamespace()
		if ns == "" {
			ns = corev1.NamespaceDefault
		}
		r = dyn.Resource(mapping.Resource).Namespace(ns)
	}
	if _, err := r.Apply(ctx, o.GetName(), o.Unstructured, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return at(o, err)
	}
	return nil
}

func at(o crds.Object, err error) error {
	return fmt.Errorf("%s:%d: %s %s: %w", o.Source, o.Line, o.GetKind(), o.GetName(), err)
}
