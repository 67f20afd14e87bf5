package scheduler

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core"
	corev1informers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// withoutFinishedPods presents a shared informer factory to kube-scheduler
// as its own factory (NewInformerFactory) would be: the same informers,
// but pods without the finished ones, which its pod informer's field
// selector (status.phase!=Succeeded,status.phase!=Failed) leaves out. A pod
// that finishes leaves that view as the filtered watch has it leave: its
// handlers are told it was deleted. One copy of every pod in memory, and
// one watch to decode, where kube-scheduler had its own.
func withoutFinishedPods(f informers.SharedInformerFactory) informers.SharedInformerFactory {
	pods := f.Core().V1().Pods().Informer()
	return factoryView{SharedInformerFactory: f, pods: podView{
		SharedIndexInformer: pods,
		indexer:             runningIndexer{pods.GetIndexer()},
	}}
}

type factoryView struct {
	informers.SharedInformerFactory
	pods podView
}

func (f factoryView) Core() coreinformers.Interface {
	return coreView{Interface: f.SharedInformerFactory.Core(), pods: f.pods}
}

type coreView struct {
	coreinformers.Interface
	pods podView
}

func (c coreView) V1() corev1informers.Interface {
	return v1View{Interface: c.Interface.V1(), pods: c.pods}
}

type v1View struct {
	corev1informers.Interface
	pods podView
}

func (v v1View) Pods() corev1informers.TypedPodInformer { return v.pods }

// podView is the shared pod informer without finished pods: its handlers,
// store and lister.
type podView struct {
	cache.SharedIndexInformer
	indexer cache.Indexer
}

func (p podView) Informer() cache.SharedIndexInformer { return p }
func (p podView) TypedInformer() corev1informers.PodIndexInformer {
	return cache.NewTypedSharedIndexInformer[*corev1.Pod](p)
}
func (p podView) Lister() corelisters.PodLister { return corelisters.NewPodLister(p.indexer) }
func (p podView) GetStore() cache.Store         { return p.indexer }
func (p podView) GetIndexer() cache.Indexer     { return p.indexer }

func (p podView) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	return p.SharedIndexInformer.AddEventHandler(runningHandler{h})
}

func (p podView) AddEventHandlerWithResyncPeriod(h cache.ResourceEventHandler, resync time.Duration) (cache.ResourceEventHandlerRegistration, error) {
	return p.SharedIndexInformer.AddEventHandlerWithResyncPeriod(runningHandler{h}, resync)
}

func (p podView) AddEventHandlerWithOptions(h cache.ResourceEventHandler, o cache.HandlerOptions) (cache.ResourceEventHandlerRegistration, error) {
	return p.SharedIndexInformer.AddEventHandlerWithOptions(runningHandler{h}, o)
}

// finished: a Succeeded or Failed pod (or the tombstone of one).
func finished(obj any) bool {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	return ok && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed)
}

// runningHandler passes on what a watch filtered by phase would deliver.
// A pod's phase never goes back from finished.
type runningHandler struct{ h cache.ResourceEventHandler }

func (r runningHandler) OnAdd(obj any, initial bool) {
	if !finished(obj) {
		r.h.OnAdd(obj, initial)
	}
}

func (r runningHandler) OnUpdate(old, obj any) {
	switch {
	case finished(old): // it left the view already
	case finished(obj):
		r.h.OnDelete(obj)
	default:
		r.h.OnUpdate(old, obj)
	}
}

func (r runningHandler) OnDelete(obj any) {
	if !finished(obj) {
		r.h.OnDelete(obj)
	}
}

// runningIndexer is the pod informer's store without finished pods, for
// reading (the informer alone writes the store).
type runningIndexer struct{ cache.Indexer }

func running(objs []any) []any {
	out := objs[:0:0]
	for _, o := range objs {
		if !finished(o) {
			out = append(out, o)
		}
	}
	return out
}

func (r runningIndexer) runningKeys(keys []string) []string {
	out := keys[:0:0]
	for _, k := range keys {
		if o, ok, _ := r.Indexer.GetByKey(k); ok && !finished(o) {
			out = append(out, k)
		}
	}
	return out
}

func (r runningIndexer) List() []any        { return running(r.Indexer.List()) }
func (r runningIndexer) ListKeys() []string { return r.runningKeys(r.Indexer.ListKeys()) }

func (r runningIndexer) Get(obj any) (any, bool, error) {
	o, ok, err := r.Indexer.Get(obj)
	if ok && finished(o) {
		return nil, false, nil
	}
	return o, ok, err
}

func (r runningIndexer) GetByKey(key string) (any, bool, error) {
	o, ok, err := r.Indexer.GetByKey(key)
	if ok && finished(o) {
		return nil, false, nil
	}
	return o, ok, err
}

func (r runningIndexer) Index(name string, obj any) ([]any, error) {
	objs, err := r.Indexer.Index(name, obj)
	return running(objs), err
}

func (r runningIndexer) ByIndex(name, value string) ([]any, error) {
	objs, err := r.Indexer.ByIndex(name, value)
	return running(objs), err
}

func (r runningIndexer) IndexKeys(name, value string) ([]string, error) {
	keys, err := r.Indexer.IndexKeys(name, value)
	return r.runningKeys(keys), err
}
