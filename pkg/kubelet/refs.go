package kubelet

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What a pod needs from the API before the kubelet starts it: the
// ConfigMaps and Secrets its volumes and its containers' environment name.
// Without one that is not optional the real kubelet does not start the
// pod: its volumes fail to mount (FailedMount, the containers stay in
// ContainerCreating) or the container's config cannot be made
// (CreateContainerConfigError), and it tries again until the object is
// there. The simulation reads them from its informers when a pod that names
// some starts (and from the API when the informer has not seen one yet).

// refsRetry is how soon the kubelet tries again (under the time scale) if
// no ConfigMap or Secret of the pod's namespace changes before: after a
// second, then twice as long each time, up to refsRetryMax, as a kubelet
// backs off.
const (
	refsRetry    = time.Second
	refsRetryMax = 2 * time.Minute
)

// waiters are the pods waiting for a ConfigMap or Secret, by namespace,
// with the tries so far: one created or changed there has them synced at
// once, so that settle sees them start.
type waiters struct {
	mu   sync.Mutex
	byNS map[string]map[string]int // namespace → pod name → tries
}

// wait records one more try of a pod that waits, and says when to try
// again (unscaled).
func (w *waiters) wait(namespace, name string) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := w.byNS[namespace]
	if names == nil {
		names = map[string]int{}
		w.byNS[namespace] = names
	}
	names[name]++
	return min(refsRetry<<min(names[name]-1, 10), refsRetryMax)
}

// done forgets a pod that no longer waits.
func (w *waiters) done(namespace, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if names := w.byNS[namespace]; names != nil {
		delete(names, name)
		if len(names) == 0 {
			delete(w.byNS, namespace)
		}
	}
}

// keys are the work queue keys of the pods waiting in namespace.
func (w *waiters) keys(namespace string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []string
	for name := range w.byNS[namespace] {
		keys = append(keys, namespace+"/"+name)
	}
	return keys
}

// refs reads the ConfigMaps and Secrets of one namespace, each once per
// sync of a pod.
type refs struct {
	ctx        context.Context
	k          *Kubelet
	namespace  string
	configMaps map[string]*corev1.ConfigMap // nil: not found
	secrets    map[string]*corev1.Secret
}

func (k *Kubelet) newRefs(ctx context.Context, namespace string) *refs {
	return &refs{ctx: ctx, k: k, namespace: namespace}
}

// configMap is the ConfigMap name, or the error the kubelet's ConfigMap
// manager gives when there is none (`configmap "name" not found`). Other
// errors are the API's (transient): the sync is retried.
func (r *refs) configMap(name string) (*corev1.ConfigMap, error) {
	return fetch(r.ctx, &r.configMaps, name, "configmap",
		r.k.configMaps.ConfigMaps(r.namespace).Get, r.k.client.CoreV1().ConfigMaps(r.namespace).Get)
}

// secret is configMap's twin (`secret "name" not found`).
func (r *refs) secret(name string) (*corev1.Secret, error) {
	return fetch(r.ctx, &r.secrets, name, "secret",
		r.k.secrets.Secrets(r.namespace).Get, r.k.client.CoreV1().Secrets(r.namespace).Get)
}

// fetch reads an object through the informer's lister, then through the
// API for one the informer has not seen yet, once per refs (seen; nil:
// not found).
func fetch[T any](ctx context.Context, seen *map[string]*T, name, resource string,
	list func(string) (*T, error), get func(context.Context, string, metav1.GetOptions) (*T, error)) (*T, error) {
	obj, ok := (*seen)[name]
	if !ok {
		var err error
		if obj, err = list(name); apierrors.IsNotFound(err) {
			obj, err = get(ctx, name, metav1.GetOptions{})
		}
		switch {
		case apierrors.IsNotFound(err):
			obj = nil
		case err != nil:
			return nil, transient{err}
		}
		if *seen == nil {
			*seen = map[string]*T{}
		}
		(*seen)[name] = obj
	}
	if obj == nil {
		return nil, apierrors.NewNotFound(corev1.Resource(resource), name)
	}
	return obj, nil
}

// transient is an error of the API, not an answer about the pod.
type transient struct{ error }

func (t transient) Unwrap() error { return t.error }

// mountFailure is the first of the pod's volumes that cannot be set up and
// why (volumeContents); err is the API's, when it could not tell.
func (k *Kubelet) mountFailure(r *refs, pod *corev1.Pod) (volume string, failure, err error) {
	for _, v := range pod.Spec.Volumes {
		if _, failure, err := k.volumeContents(r.ctx, r, pod, v); err != nil || failure != nil {
			return v.Name, failure, err
		}
	}
	return "", nil, nil
}

// configFailure is why the kubelet cannot make container c's config: a
// ConfigMap or Secret its environment names (envFrom, or a key of one in
// env), not optional, is missing (containerEnv). err is the API's, when it
// could not tell.
func (k *Kubelet) configFailure(r *refs, pod *corev1.Pod, c *corev1.Container) (failure, err error) {
	_, _, failure, err = k.containerEnv(r, pod, c, nil)
	return failure, err
}
