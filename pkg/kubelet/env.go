package kubelet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/kubernetes/pkg/api/v1/resource"
	podshelper "k8s.io/kubernetes/pkg/apis/core/pods"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/pkg/kubelet/envvars"
	kubeletutil "k8s.io/kubernetes/pkg/kubelet/util"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
)

// environment is a container's environment as the kubelet makes it and
// the runtime completes it: PATH and HOSTNAME; what containerEnv declares,
// in its order; the variables of the Services the pod sees; HOME. What is
// not there (an optional source) is left out, as the kubelet leaves it out;
// the container would not have started without the rest.
func (k *Kubelet) environment(ctx context.Context, pod *corev1.Pod, c *corev1.Container) [][2]string {
	services := k.serviceEnv(pod)
	order, vars, _, _ := k.containerEnv(k.newRefs(ctx, pod.Namespace), pod, c, services)
	env := [][2]string{
		{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		{"HOSTNAME", hostname(pod)},
	}
	for _, name := range order {
		env = append(env, [2]string{name, vars[name]})
	}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		if _, declared := vars[name]; !declared {
			env = append(env, [2]string{name, services[name]})
		}
	}
	return append(env, [2]string{"HOME", "/root"})
}

// containerEnv is the environment container c declares, as
// makeEnvironmentVariables (pkg/kubelet/kubelet_pods.go) resolves it: the
// ConfigMaps and Secrets of envFrom (their keys in order), then env in its
// order, $(VAR) references expanded (against what came before and the
// services' variables), sources resolved (keys of ConfigMaps and Secrets,
// the pod's fields, the container's resources). failure is the first source
// not there and not optional, in the kubelet's words (what fails is left
// out and the rest resolved); err is the API's, when it could not tell.
func (k *Kubelet) containerEnv(r *refs, pod *corev1.Pod, c *corev1.Container, services map[string]string) (order []string, vars map[string]string, failure, err error) {
	vars = map[string]string{}
	put := func(name, value string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = value
	}
	// fail keeps the first failure; it says whether the source failed.
	fail := func(e error) bool {
		if failure == nil {
			failure = e
		}
		return e != nil
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		var e error
		switch {
		case from.ConfigMapRef != nil:
			var cm *corev1.ConfigMap
			if cm, e = r.configMap(from.ConfigMapRef.Name); e == nil {
				data = cm.Data
			}
			e = optionalNotFound(e, from.ConfigMapRef.Optional)
		case from.SecretRef != nil:
			var s *corev1.Secret
			if s, e = r.secret(from.SecretRef.Name); e == nil {
				data = map[string]string{}
				for key, v := range s.Data {
					data[key] = string(v)
				}
			}
			e = optionalNotFound(e, from.SecretRef.Optional)
		}
		if t := (transient{}); errors.As(e, &t) {
			return nil, nil, nil, t.error
		}
		if fail(e) {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(data)) {
			put(from.Prefix+key, data[key])
		}
	}
	mapping := expansion.MappingFuncFor(vars, services)
	for _, e := range c.Env {
		value, ok := e.Value, true
		switch from := e.ValueFrom; {
		case value != "":
			value = expansion.Expand(value, mapping)
		case from == nil:
		case from.ConfigMapKeyRef != nil:
			ref := from.ConfigMapKeyRef
			value, ok, err = envKey(r.configMap, func(cm *corev1.ConfigMap) (string, bool) { v, ok := cm.Data[ref.Key]; return v, ok },
				"ConfigMap", r.namespace, ref.Name, ref.Key, ref.Optional, fail)
		case from.SecretKeyRef != nil:
			ref := from.SecretKeyRef
			value, ok, err = envKey(r.secret, func(s *corev1.Secret) (string, bool) { v, ok := s.Data[ref.Key]; return string(v), ok },
				"Secret", r.namespace, ref.Name, ref.Key, ref.Optional, fail)
		default:
			value, ok = k.envSource(r, pod, c, from)
		}
		if err != nil {
			return nil, nil, nil, err
		}
		if ok {
			put(e.Name, value)
		}
	}
	return order, vars, failure, nil
}

// envKey is the value of one key of a ConfigMap's or Secret's data (get
// reads the object, lookup the key in it), false if it is not there; a missing
// object or key that is not optional is handed to fail in the kubelet's
// words. err is the API's.
func envKey[T any](get func(string) (*T, error), lookup func(*T) (string, bool), kind, namespace, name, key string, optional *bool,
	fail func(error) bool) (value string, ok bool, err error) {
	obj, e := get(name)
	if t := (transient{}); errors.As(e, &t) {
		return "", false, t.error
	}
	if e = optionalNotFound(e, optional); e != nil {
		fail(e)
		return "", false, nil
	}
	if obj == nil {
		return "", false, nil // optional and not there
	}
	if value, ok = lookup(obj); !ok && !ptr.Deref(optional, false) {
		fail(fmt.Errorf("couldn't find key %v in %s %v/%v", key, kind, namespace, name))
	}
	return value, ok, nil
}

// envSource resolves a variable's source; false if it is not there.
func (k *Kubelet) envSource(r *refs, pod *corev1.Pod, c *corev1.Container, from *corev1.EnvVarSource) (string, bool) {
	switch {
	case from.ConfigMapKeyRef != nil:
		cm, err := r.configMap(from.ConfigMapKeyRef.Name)
		if err != nil {
			return "", false
		}
		v, ok := cm.Data[from.ConfigMapKeyRef.Key]
		return v, ok
	case from.SecretKeyRef != nil:
		s, err := r.secret(from.SecretKeyRef.Name)
		if err != nil {
			return "", false
		}
		v, ok := s.Data[from.SecretKeyRef.Key]
		return string(v), ok
	case from.FieldRef != nil:
		version := from.FieldRef.APIVersion
		if version == "" {
			version = "v1" // the API server's default
		}
		path, _, err := podshelper.ConvertDownwardAPIFieldLabel(version, from.FieldRef.FieldPath, "")
		if err != nil {
			return "", false
		}
		switch path {
		case "spec.nodeName":
			return pod.Spec.NodeName, true
		case "spec.serviceAccountName":
			return pod.Spec.ServiceAccountName, true
		case "status.hostIP":
			return pod.Status.HostIP, true
		case "status.hostIPs":
			return joinIPs(pod.Status.HostIPs, func(ip corev1.HostIP) string { return ip.IP }), true
		case "status.podIP":
			return pod.Status.PodIP, true
		case "status.podIPs":
			return joinIPs(pod.Status.PodIPs, func(ip corev1.PodIP) string { return ip.IP }), true
		}
		v, err := fieldpath.ExtractFieldPathAsString(pod, path)
		return v, err == nil
	case from.ResourceFieldRef != nil:
		// Limits not set are the node's allocatable, as the kubelet
		// defaults them for the downward API.
		allocatable := clusterconfig.DefaultCapacity()
		if i, ok := k.nodes().index[pod.Spec.NodeName]; ok {
			if capacity := k.nodes().specs[i].Capacity; capacity != nil {
				allocatable = capacity
			}
		}
		v, err := resource.ExtractResourceValueByContainerNameAndNodeAllocatable(from.ResourceFieldRef, pod, c.Name, allocatable)
		return v, err == nil
	}
	return "", false
}

// serviceEnv are the variables of the Services a pod sees
// (getServiceEnvVarMap): the kubernetes Service of the default namespace,
// and those of its own namespace unless it turned service links off;
// headless ones have none.
func (k *Kubelet) serviceEnv(pod *corev1.Pod) map[string]string {
	list, err := k.services.List(labels.Everything())
	if err != nil {
		return nil
	}
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	seen := map[string]*corev1.Service{}
	for _, s := range list {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		switch {
		case s.Namespace == "default" && s.Name == "kubernetes":
			if _, ok := seen[s.Name]; !ok {
				seen[s.Name] = s
			}
		case s.Namespace == pod.Namespace && links:
			seen[s.Name] = s
		}
	}
	out := map[string]string{}
	for _, v := range envvars.FromServices(slices.Collect(maps.Values(seen))) {
		out[v.Name] = v.Value
	}
	return out
}

// joinIPs is a list of addresses as the downward API gives it.
func joinIPs[T any](list []T, ip func(T) string) string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = ip(a)
	}
	return strings.Join(out, ",")
}

// hostname is the pod's hostname as its containers see it: the node's on
// the host's network; else the kernel hostname the runtime is given
// (kuberuntime's generatePodSandboxConfig): hostNameAndDomain's name, or
// with setHostnameAsFQDN its fully qualified name (sandboxFailure keeps a
// pod whose FQDN is too long from starting; until then, the short name).
func hostname(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		return pod.Spec.NodeName
	}
	name, domain := hostNameAndDomain(pod)
	if kernel, err := kubeletutil.GetNodenameForKernel(name, domain, pod.Spec.SetHostnameAsFQDN); err == nil {
		return kernel
	}
	return name
}

// sandboxFailure is why the runtime cannot make the pod's sandbox from the
// config the kubelet generates, nil if it can: a setHostnameAsFQDN name
// longer than the kernel's 64 characters.
func sandboxFailure(pod *corev1.Pod) error {
	if pod.Spec.HostNetwork {
		return nil
	}
	name, domain := hostNameAndDomain(pod)
	_, err := kubeletutil.GetNodenameForKernel(name, domain, pod.Spec.SetHostnameAsFQDN)
	return err
}

// hostNameAndDomain is the kubelet's GeneratePodHostNameAndDomain: the
// hostnameOverride, or the hostname or else the pod's name, cut to 63
// characters; the subdomain's domain in the namespace. (The API server
// validated the names.)
func hostNameAndDomain(pod *corev1.Pod) (name, domain string) {
	if o := pod.Spec.HostnameOverride; o != nil {
		return truncateHostname(*o), ""
	}
	name = pod.Name
	if pod.Spec.Hostname != "" {
		name = pod.Spec.Hostname
	}
	if pod.Spec.Subdomain != "" {
		domain = fmt.Sprintf("%s.%s.svc.%s", pod.Spec.Subdomain, pod.Namespace, clusterDomain)
	}
	return truncateHostname(name), domain
}

// truncateHostname is the kubelet's truncatePodHostnameIfNeeded.
func truncateHostname(name string) string {
	const hostnameMaxLen = 63
	if len(name) <= hostnameMaxLen {
		return name
	}
	return strings.TrimRight(name[:hostnameMaxLen], "-.")
}
