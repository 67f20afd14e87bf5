package server

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	apiextensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	aggregatorscheme "k8s.io/kube-aggregator/pkg/apiserver/scheme"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	"sigs.k8s.io/yaml"

	"github.com/mockernetes/mockernetes/pkg/crds"
	"github.com/mockernetes/mockernetes/pkg/load"
	"github.com/mockernetes/mockernetes/pkg/storage"
)

// sharedStorage are resources served under a second group from the same
// storage as another (events.k8s.io events are core events): a snapshot
// holds them once.
var sharedStorage = sets.New(schema.GroupResource{Group: "events.k8s.io", Resource: "events"})

// notStored are resources that are answered, not stored: componentstatuses
// reports on the components when asked.
var notStored = sets.New(schema.GroupResource{Resource: "componentstatuses"})

// Snapshot returns every object of the cluster as multi-document YAML that
// `kubectl apply -f`, `serve --load` and a restore accept: custom resource
// definitions first, then namespaces, then the rest, each in the preferred
// version of its group, without resourceVersion and managedFields; uids
// stay, so that a restore keeps every object and owner reference as it
// was (--load leaves them out).
func (s *Server) Snapshot(ctx context.Context) ([]byte, error) {
	cfg := s.config.LoopbackClientConfig()
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	// Group versions an APIService serves from elsewhere (an extension API
	// server) are that server's state, not this cluster's; their discovery
	// may fail as well (an unavailable APIService).
	remote := sets.New[schema.GroupVersion]()
	apiServices, err := s.aggregator.APIRegistrationInformers.Apiregistration().V1().APIServices().Lister().List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, a := range apiServices {
		if a.Spec.Service != nil {
			remote.Insert(schema.GroupVersion{Group: a.Spec.Group, Version: a.Spec.Version})
		}
	}
	lists, err := disco.ServerPreferredResources()
	if failed, ok := err.(*discovery.ErrGroupDiscoveryFailed); ok {
		for gv := range failed.Groups {
			if !remote.Has(gv) {
				return nil, err
			}
		}
	} else if err != nil {
		return nil, err
	}
	type doc struct {
		rank int
		sort string
		obj  map[string]any
	}
	var docs []doc
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, err
		}
		for _, r := range l.APIResources {
			gr := gv.WithResource(r.Name).GroupResource()
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || sharedStorage.Has(gr) || notStored.Has(gr) || remote.Has(gv) {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("listing %s: %w", gv.WithResource(r.Name), err)
			}
			rank := 2
			switch {
			case r.Kind == "CustomResourceDefinition":
				rank = 0
			case r.Kind == "Namespace" && gv.Group == "":
				rank = 1
			}
			for _, it := range items.Items {
				unstructured.RemoveNestedField(it.Object, "metadata", "resourceVersion")
				unstructured.RemoveNestedField(it.Object, "metadata", "managedFields")
				unstructured.RemoveNestedField(it.Object, "metadata", "selfLink")
				docs = append(docs, doc{rank, strings.Join([]string{gv.Group, r.Name, it.GetNamespace(), it.GetName()}, "/"), it.Object})
			}
		}
	}
	slices.SortFunc(docs, func(a, b doc) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.sort, b.sort)
	})
	var out bytes.Buffer
	for i, d := range docs {
		data, err := yaml.Marshal(d.obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(data)
	}
	return out.Bytes(), nil
}

// RestoreSnapshot makes the cluster what a snapshot describes, object for
// object, in one new revision as a reset does: objects not in it are
// deleted, the others written as they are there (an object that exists
// keeps its uid and creation time where the snapshot has none). Nothing
// changes if a document does not parse or cannot be stored (a 400 names
// it); custom resources need their CRD served already.
func (s *Server) RestoreSnapshot(ctx context.Context, data []byte, timeout time.Duration) error {
	objs, err := crds.Objects([]crds.Source{{Name: "snapshot", Data: data}})
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	mapper, err := load.RESTMapper(s.config.LoopbackClientConfig())
	if err != nil {
		return err
	}
	state := storage.NewState()
	backend := s.config.Backend
	for _, o := range objs {
		at := func(err error) error {
			return apierrors.NewBadRequest(fmt.Sprintf("%s:%d: %s %s: %v", o.Source, o.Line, o.GetKind(), o.GetName(), err))
		}
		gvk := o.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return at(err)
		}
		gr := mapping.Resource.GroupResource()
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace && o.GetNamespace() == "" {
			o.SetNamespace(metav1.NamespaceDefault)
		}
		if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
			o.SetNamespace("")
		}
		unstructured.RemoveNestedField(o.Object, "metadata", "resourceVersion")
		obj := backend.NewObject(gr)
		if obj == nil {
			return at(fmt.Errorf("%s is not stored", gr))
		}
		if o.GetUID() == "" {
			current := obj.DeepCopyObject()
			found, err := backend.Current(ctx, gr, o.GetNamespace(), o.GetName(), current)
			if err != nil {
				return at(err)
			}
			if m, _ := meta.Accessor(current); found && m != nil {
				o.SetUID(m.GetUID())
				o.SetCreationTimestamp(m.GetCreationTimestamp())
			} else {
				o.SetUID(types.UID(uuid.NewString()))
				if ts := o.GetCreationTimestamp(); ts.IsZero() {
					o.SetCreationTimestamp(metav1.Now())
				}
			}
		}
		if _, isUnstructured := obj.(*unstructured.Unstructured); isUnstructured {
			obj = o.Unstructured
		} else if err := toStored(o.Unstructured, obj); err != nil {
			return at(err)
		}
		if err := backend.Put(ctx, state, gr, obj); err != nil {
			return at(err)
		}
	}
	s.resetMu.Lock()
	defer s.resetMu.Unlock()
	if err := s.restore(ctx, state, timeout, false); err != nil {
		return err
	}
	return s.Settle(ctx, timeout)
}

// toStored converts an object as the API shows it into the internal type
// its registry stores.
func toStored(u *unstructured.Unstructured, into runtime.Object) error {
	scheme := legacyscheme.Scheme
	for _, s := range []*runtime.Scheme{apiextensionsapiserver.Scheme, aggregatorscheme.Scheme} {
		if s.Recognizes(u.GroupVersionKind()) {
			scheme = s
		}
	}
	external, err := scheme.New(u.GroupVersionKind())
	if err != nil {
		return err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, external, true); err != nil {
		return err
	}
	scheme.Default(external)
	return scheme.Convert(external, into, nil)
}
