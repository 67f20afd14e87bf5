package registry

import (
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	api "k8s.io/kubernetes/pkg/apis/core"
	"k8s.io/kubernetes/pkg/apis/core/validation"
	"k8s.io/kubernetes/pkg/features"
	kubecontainer "k8s.io/kubernetes/pkg/kubelet/container"
	"k8s.io/utils/ptr"
)

// ContainerLogs are the simulated containers' logs, as their kubelets
// serve them.
type ContainerLogs interface {
	// Log checks that container of pod has the log options asks for (the
	// kubelet's validateContainerLogStatus: an error is its answer) and
	// returns what opens it.
	Log(pod *corev1.Pod, container string, options *corev1.PodLogOptions) (open func(context.Context) io.ReadCloser, err error)
}

// LogREST serves pods/log from the simulated kubelets' logs, with
// kube-apiserver's option validation and container choice
// (pkg/registry/core/pod LogLocation).
type LogREST struct {
	Pods *genericregistry.Store
	Logs ContainerLogs
}

var (
	_ rest.GetterWithOptions = &LogREST{}
	_ rest.StorageMetadata   = &LogREST{}
)

func (r *LogREST) New() runtime.Object               { return &api.Pod{} }
func (r *LogREST) Destroy()                          {}
func (r *LogREST) ProducesMIMETypes(string) []string { return []string{"text/plain"} }
func (r *LogREST) ProducesObject(string) interface{} { return "" }
func (r *LogREST) OverrideMetricsVerb(string) string { return "CONNECT" }
func (r *LogREST) NewGetOptions() (runtime.Object, bool, string) {
	return &api.PodLogOptions{}, false, ""
}

// Get returns the log stream of one container.
func (r *LogREST) Get(ctx context.Context, name string, opts runtime.Object) (runtime.Object, error) {
	o, ok := opts.(*api.PodLogOptions)
	if !ok {
		return nil, fmt.Errorf("invalid options object: %#v", opts)
	}
	splitStreams := utilfeature.DefaultFeatureGate.Enabled(features.PodLogsQuerySplitStreams)
	if splitStreams && o.Stream == nil {
		o.Stream = ptr.To(api.LogStreamAll)
	}
	if errs := validation.ValidatePodLogOptions(o, splitStreams); len(errs) > 0 {
		return nil, apierrors.NewInvalid(api.Kind("PodLogOptions"), name, errs)
	}
	obj, err := r.Pods.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	// The kubelet's part of the answer works on v1, as the kubelet does.
	pod, v1o := &corev1.Pod{}, &corev1.PodLogOptions{}
	if err := legacyscheme.Scheme.Convert(obj, pod, nil); err != nil {
		return nil, err
	}
	if err := legacyscheme.Scheme.Convert(o, v1o, nil); err != nil {
		return nil, err
	}
	container := o.Container
	if container == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			container = pod.Spec.Containers[0].Name
		case 0:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", name))
		default:
			msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", name, containerNames(pod.Spec.Containers))
			if len(pod.Spec.InitContainers) > 0 {
				msg += fmt.Sprintf(" or one of the init containers: %s", containerNames(pod.Spec.InitContainers))
			}
			return nil, apierrors.NewBadRequest(msg)
		}
	}
	if kubecontainer.GetContainerSpec(pod, container) == nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, name))
	}
	if pod.Spec.NodeName == "" {
		return &logRequest{}, nil // as upstream: no node, no log
	}
	open, err := r.Logs.Log(pod, container, v1o)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return &logRequest{open: open, follow: v1o.Follow}, nil
}

// logRequest is the rest.ResourceStreamer of one log request.
type logRequest struct {
	metav1.TypeMeta
	open   func(context.Context) io.ReadCloser // nil: no log (no node)
	follow bool
}

func (s *logRequest) DeepCopyObject() runtime.Object { c := *s; return &c }

// InputStream implements rest.ResourceStreamer.
func (s *logRequest) InputStream(ctx context.Context, _, _ string) (io.ReadCloser, bool, string, error) {
	if s.open == nil {
		return nil, false, "", nil
	}
	return s.open(ctx), s.follow, "text/plain", nil
}

// containerNames lists names as upstream's LogLocation does: "[a b]".
func containerNames(cs []corev1.Container) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return "[" + strings.Join(names, " ") + "]"
}
