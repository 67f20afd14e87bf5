package storage

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	apistorage "k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"
)

// Decorator returns the generic.StorageDecorator that gives a registry's
// genericregistry.Store a Store on b in place of etcd (and without the watch
// cache: reads here are as cheap as the cache's).
func (b *Backend) Decorator() generic.StorageDecorator {
	return func(config *storagebackend.ConfigForResource, resourcePrefix string, _ func(obj runtime.Object) (string, error),
		newFunc, newListFunc func() runtime.Object, getAttrs apistorage.AttrFunc, _ apistorage.IndexerFuncs, indexers *cache.Indexers) (apistorage.Interface, factory.DestroyFunc, error) {
		s, err := NewStore(b, Config{
			Codec:          config.Codec,
			NewFunc:        newFunc,
			NewListFunc:    newListFunc,
			Prefix:         config.Prefix,
			ResourcePrefix: resourcePrefix,
			GroupResource:  config.GroupResource,
			Transformer:    config.Transformer,
			AttrFunc:       getAttrs,
			Indexers:       indexers,
		})
		if err != nil {
			return nil, nil, err
		}
		return s, func() {}, nil
	}
}

// RESTOptionsGetter hands the upstream REST storage providers their
// RESTOptions: the storage config (codec, storage version, prefix) from a
// kube storage factory, as kube-apiserver's StorageFactoryRestOptionsFactory
// does, with this package's Decorator in place of etcd and the watch cache.
type RESTOptionsGetter struct {
	StorageFactory          serverstorage.StorageFactory
	Backend                 *Backend
	EnableGarbageCollection bool
	DeleteCollectionWorkers int
}

var _ generic.RESTOptionsGetter = &RESTOptionsGetter{}

// GetRESTOptions implements generic.RESTOptionsGetter.
func (g *RESTOptionsGetter) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (generic.RESTOptions, error) {
	storageConfig, err := g.StorageFactory.NewConfig(resource, example)
	if err != nil {
		return generic.RESTOptions{}, fmt.Errorf("unable to find storage destination for %v, due to %v", resource, err.Error())
	}
	return generic.RESTOptions{
		StorageConfig:           storageConfig,
		Decorator:               g.Backend.Decorator(),
		DeleteCollectionWorkers: g.DeleteCollectionWorkers,
		EnableGarbageCollection: g.EnableGarbageCollection,
		ResourcePrefix:          g.StorageFactory.ResourcePrefix(resource),
	}, nil
}

// Wrap returns getter with this backend in place of etcd: every RESTOptions
// it hands out keeps the upstream storage config (codec, prefix, versions)
// and gets this backend's Decorator. It plugs upstream getters that are built
// from etcd options, such as apiextensions-apiserver's, into the backend.
func (b *Backend) Wrap(getter generic.RESTOptionsGetter) generic.RESTOptionsGetter {
	return wrappedGetter{getter, b}
}

type wrappedGetter struct {
	generic.RESTOptionsGetter
	backend *Backend
}

func (w wrappedGetter) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (generic.RESTOptions, error) {
	opts, err := w.RESTOptionsGetter.GetRESTOptions(resource, example)
	if err != nil {
		return opts, err
	}
	opts.Decorator = w.backend.Decorator()
	return opts, nil
}
