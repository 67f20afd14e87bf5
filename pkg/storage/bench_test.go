package storage

// Benchmarks of the store on realistic objects: core/v1 Pods with a full
// spec, stored with the protobuf codec kube-apiserver uses for them. The
// LIST benchmarks also run the same list through kube-apiserver's watch cache
// (k8s.io/apiserver/pkg/storage/cacher) on the same data for comparison.
//
//	go test ./pkg/storage -run '^$' -bench . -benchmem

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	apistorage "k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/cacher"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

func podCodec() runtime.Codec {
	pb := protobuf.NewSerializer(clientscheme.Scheme, clientscheme.Scheme)
	return clientscheme.Codecs.CodecForVersions(pb, pb, corev1.SchemeGroupVersion, corev1.SchemeGroupVersion)
}

func newPodStore(tb testing.TB) *store { return newPodStoreWith(tb, Options{}) }

// newPodStoreWith returns a pods store on a new backend with opts, closed
// when tb ends.
func newPodStoreWith(tb testing.TB, opts Options) *store {
	b := NewBackend(opts)
	tb.Cleanup(b.Close)
	s, err := NewStore(b, Config{
		Codec:          podCodec(),
		NewFunc:        func() runtime.Object { return &corev1.Pod{} },
		NewListFunc:    func() runtime.Object { return &corev1.PodList{} },
		Prefix:         "/registry",
		ResourcePrefix: "/pods",
		GroupResource:  schema.GroupResource{Resource: "pods"},
		AttrFunc:       podAttrs,
		Indexers:       podIndexers(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s.(*store)
}

// benchPod is a Deployment-made Pod as a real cluster holds it.
func benchPod(i int) *corev1.Pod {
	app := fmt.Sprintf("app-%d", i%10)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s-7d4b9c8f5-%05d", app, i),
			Namespace: "default",
			UID:       "6f2a1c3e-8b4d-4e5f-9a0b-1c2d3e4f5a6b",
			Labels:    map[string]string{"app": app, "pod-template-hash": "7d4b9c8f5", "tier": "backend"},
			Annotations: map[string]string{
				"kubectl.kubernetes.io/default-container": "main",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-7d4b9c8f5",
				UID: "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
			}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "main",
				Image: "registry.example/team/service:1.2.3",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "LOG_LEVEL", Value: "info"}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
					PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
				},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullIfNotPresent,
			}},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "default",
			NodeName:                      fmt.Sprintf("node-%d", i%100),
			SchedulerName:                 "default-scheduler",
			TerminationGracePeriodSeconds: ptrTo[int64](30),
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo[int64](300)},
			},
		},
		Status: corev1.PodStatus{
			Phase:  corev1.PodRunning,
			HostIP: "172.18.0.2", PodIP: fmt.Sprintf("10.244.%d.%d", i/250%250, i%250),
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			},
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "main", Ready: true, Image: "registry.example/team/service:1.2.3",
				ImageID:     "registry.example/team/service@sha256:0123456789abcdef",
				ContainerID: "containerd://0123456789abcdef0123456789abcdef",
				State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			}},
			QOSClass: corev1.PodQOSBurstable,
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

func podKey(p *corev1.Pod) string { return "/pods/" + p.Namespace + "/" + p.Name }

func fillPods(tb testing.TB, s apistorage.Interface, n int) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		p := benchPod(i)
		if err := s.Create(ctx, podKey(p), p, nil, 0); err != nil {
			tb.Fatal(err)
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	s := newPodStore(b)
	ctx := context.Background()
	pods := make([]*corev1.Pod, b.N)
	for i := range pods {
		pods[i] = benchPod(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Create(ctx, podKey(pods[i]), pods[i], &corev1.Pod{}, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func podKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = podKey(benchPod(i))
	}
	return keys
}

func BenchmarkGet(b *testing.B) {
	s := newPodStore(b)
	fillPods(b, s, 1000)
	keys := podKeys(1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Get(ctx, keys[i%1000], apistorage.GetOptions{}, &corev1.Pod{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallel reads different keys from all CPUs at once.
func BenchmarkGetParallel(b *testing.B) {
	s := newPodStore(b)
	fillPods(b, s, 1000)
	keys := podKeys(1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := s.Get(ctx, keys[i%1000], apistorage.GetOptions{}, &corev1.Pod{}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkGuaranteedUpdate(b *testing.B) {
	s := newPodStore(b)
	fillPods(b, s, 1000)
	keys := podKeys(1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := s.GuaranteedUpdate(ctx, keys[i%1000], &corev1.Pod{}, false, nil,
			apistorage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
				p := obj.(*corev1.Pod)
				p.Labels["generation"] = fmt.Sprint(i)
				return p, nil
			}), nil)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// listCases are LISTs of all 10,000 pods, of the tenth selected by label,
// of the pods of one node (100, 110 being a node's default capacity) as a
// kubelet lists them, with the field selector and index the pod registry
// declares, and of the pods that have not ended, as kube-scheduler lists
// them (a field selector on a field without an index).
var listCases = []struct {
	name string
	pred apistorage.SelectionPredicate
	want int
}{
	{"all", apistorage.Everything, 10000},
	{"labelSelector", apistorage.SelectionPredicate{
		Label:    labels.SelectorFromSet(labels.Set{"app": "app-3"}),
		Field:    apistorage.Everything.Field,
		GetAttrs: podAttrs,
	}, 1000},
	{"fieldSelector", apistorage.SelectionPredicate{
		Label:       labels.Everything(),
		Field:       fields.OneTermEqualSelector("spec.nodeName", "node-7"),
		GetAttrs:    podAttrs,
		IndexFields: []string{"spec.nodeName"},
	}, 100},
	{"unindexedFieldSelector", apistorage.SelectionPredicate{
		Label:       labels.Everything(),
		Field:       fields.ParseSelectorOrDie("status.phase!=Succeeded,status.phase!=Failed"),
		GetAttrs:    podAttrs,
		IndexFields: []string{"spec.nodeName"},
	}, 10000},
}

// podIndexers are the pod registry's indexers (pkg/registry/core/pod
// Indexers) for core/v1 Pods.
func podIndexers() *cache.Indexers {
	return &cache.Indexers{apistorage.FieldIndex("spec.nodeName"): func(obj any) ([]string, error) {
		return []string{obj.(*corev1.Pod).Spec.NodeName}, nil
	}}
}

func podAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	p := obj.(*corev1.Pod)
	return labels.Set(p.Labels), fields.Set{"metadata.name": p.Name, "metadata.namespace": p.Namespace, "spec.nodeName": p.Spec.NodeName, "status.phase": string(p.Status.Phase)}, nil
}

// newPodCacher starts kube-apiserver's watch cache for pods over s, which
// it turns into a store that keeps no decoded objects (an identity
// transformer turns the decode cache off), as etcd keeps none in
// kube-apiserver's process, and waits until it is ready.
func newPodCacher(b *testing.B, s *store) *cacher.Cacher {
	s.setTransformer(identityTransformer{})
	c, err := cacher.NewCacherFromConfig(podCacherConfig(s))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Stop)
	for !c.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// podCacherConfig configures kube-apiserver's watch cache for pods over s,
// with the pod registry's GetAttrs, trigger and index, as kube-apiserver does.
func podCacherConfig(s *store) cacher.Config {
	return cacher.Config{
		Storage:             s,
		Versioner:           s.Versioner(),
		GroupResource:       schema.GroupResource{Resource: "pods"},
		EventsHistoryWindow: 75 * time.Second,
		ResourcePrefix:      "/pods",
		KeyFunc:             func(obj runtime.Object) (string, error) { return podKey(obj.(*corev1.Pod)), nil },
		GetAttrsFunc:        podAttrs,
		IndexerFuncs:        apistorage.IndexerFuncs{"spec.nodeName": func(obj runtime.Object) string { return obj.(*corev1.Pod).Spec.NodeName }},
		Indexers:            podIndexers(),
		NewFunc:             func() runtime.Object { return &corev1.Pod{} },
		NewListFunc:         func() runtime.Object { return &corev1.PodList{} },
		Codec:               s.codec,
		Clock:               clock.RealClock{},
	}
}

// BenchmarkGetList10k lists 10,000 pods three ways, all in one process with
// the same data, so that they run on the same heap: from a store that hands
// lists out read-only (the server's mode, the watch cache's contract), from
// one that deep-copies every listed object (the default), and through
// kube-apiserver's watch cache (k8s.io/apiserver/pkg/storage/cacher,
// resourceVersion=0 as informers list). Under the watch cache is a store that
// keeps no decoded objects (an identity transformer turns the decode cache
// off), as etcd keeps none in kube-apiserver's process.
func BenchmarkGetList10k(b *testing.B) {
	ctx := context.Background()
	readOnly, copies, underCache := newPodStoreWith(b, Options{ReadOnlyLists: true}), newPodStore(b), newPodStore(b)
	c := newPodCacher(b, underCache)
	// The pods are created after the watch cache started, so that it gets
	// them from its watch as they come, as a running kube-apiserver does,
	// and holds them in creation order as the stores do.
	for _, s := range []*store{readOnly, copies, underCache} {
		fillPods(b, s, 10000)
	}
	for {
		list := &corev1.PodList{}
		if err := c.GetList(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: "0", Predicate: apistorage.Everything, Recursive: true}, list); err != nil {
			b.Fatal(err)
		}
		if len(list.Items) == 10000 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	type lister interface {
		GetList(context.Context, string, apistorage.ListOptions, runtime.Object) error
	}
	for _, mode := range []struct {
		name string
		s    lister
		rv   string
	}{{"readOnly", readOnly, ""}, {"watchCache", c, "0"}, {"copies", copies, ""}} {
		// fillPods writes without asking for the stored object back, so the
		// first LIST decodes and caches every object: keep it out of the figures.
		if err := mode.s.GetList(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: mode.rv, Predicate: apistorage.Everything, Recursive: true}, &corev1.PodList{}); err != nil {
			b.Fatal(err)
		}
		for _, lc := range listCases {
			b.Run(mode.name+"/"+lc.name, func(b *testing.B) {
				b.ReportAllocs()
				goruntime.GC() // not the previous case's garbage
				for b.Loop() {
					list := &corev1.PodList{}
					if err := mode.s.GetList(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: mode.rv, Predicate: lc.pred, Recursive: true}, list); err != nil {
						b.Fatal(err)
					}
					if len(list.Items) != lc.want {
						b.Fatalf("got %d items, want %d", len(list.Items), lc.want)
					}
				}
			})
		}
	}
}

// BenchmarkWatchFanout100 measures one write delivered to 100 watchers:
// each op is one update and ends when every watcher has received it. The
// same runs through kube-apiserver's watch cache, whose watchers share one
// object per event.
func BenchmarkWatchFanout100(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		s := newPodStore(b)
		benchFanout(b, s, s)
	})
	b.Run("watchCache", func(b *testing.B) {
		under := newPodStore(b)
		benchFanout(b, under, newPodCacher(b, under))
	})
}

// benchFanout writes to s and receives the events through 100 watches of w.
func benchFanout(b *testing.B, s *store, w interface {
	Watch(context.Context, string, apistorage.ListOptions) (watch.Interface, error)
}) {
	fillPods(b, s, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key := podKey(benchPod(0))
	const watchers = 100
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	received := make(chan struct{}, watchers*16)
	for range watchers {
		wi, err := w.Watch(ctx, "/pods/", apistorage.ListOptions{ResourceVersion: fmt.Sprint(s.b.Revision()), Predicate: apistorage.Everything, Recursive: true})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		ready.Add(1)
		go func(wi watch.Interface) {
			defer wg.Done()
			ready.Done()
			for ev := range wi.ResultChan() {
				if ev.Type == watch.Modified {
					received <- struct{}{}
				}
			}
		}(wi)
	}
	ready.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := s.GuaranteedUpdate(ctx, key, &corev1.Pod{}, false, nil,
			apistorage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
				p := obj.(*corev1.Pod)
				p.Labels["generation"] = fmt.Sprint(i)
				return p, nil
			}), nil)
		if err != nil {
			b.Fatal(err)
		}
		for range watchers {
			<-received
		}
	}
	b.StopTimer()
	cancel()
	wg.Wait()
}
