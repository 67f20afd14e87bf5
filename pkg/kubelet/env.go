package kubelet

import (
	"context"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/kubernetes/pkg/api/v1/resource"
	podshelper "k8s.io/kubernetes/pkg/apis/core/pods"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/pkg/kubelet/envvars"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
)

// environment is a container's environment as the kubelet makes it
// (makeEnvironmentVariables, pkg/kubelet/kubelet_pods.go) and the runtime
// completes it: PATH and HOSTNAME; the ConfigMaps and Secrets of envFrom;
// env in its order, $(VAR) references expanded, sources resolved (keys of
// ConfigMaps and Secrets, the pod's fields, the container's resources);
// the variables of the Services the pod sees; HOME. What is not there
// (an optional source) is left out, as the kubelet leaves it out; the
// container would not have started without the rest.
func (k *Kubelet) environment(ctx context.Context, pod *corev1.Pod, c *corev1.Container) [][2]string {
	r := k.newRefs(ctx, pod.Namespace)
	vars := map[string]string{}
	var order []string
	put := func(name, value string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = value
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			if cm, err := r.configMap(from.ConfigMapRef.Name); err == nil {
				for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
					put(from.Prefix+key, cm.Data[key])
				}
			}
		case from.SecretRef != nil:
			if s, err := r.secret(from.SecretRef.Name); err == nil {
				for _, key := range slices.Sorted(maps.Keys(s.Data)) {
					put(from.Prefix+key, string(s.Data[key]))
				}
			}
		}
	}
	services := k.serviceEnv(pod)
	mapping := expansion.MappingFuncFor(vars, services)
	for _, e := range c.Env {
		value, ok := e.Value, true
		switch {
		case value != "":
			value = expansion.Expand(value, mapping)
		case e.ValueFrom != nil:
			value, ok = k.envSource(r, pod, c, e.ValueFrom)
		}
		if ok {
			put(e.Name, value)
		}
	}

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
		ips := func(list []corev1.PodIP) string {
			var out []string
			for _, ip := range list {
				out = append(out, ip.IP)
			}
			return strings.Join(out, ",")
		}
		switch path {
		case "spec.nodeName":
			return pod.Spec.NodeName, true
		case "spec.serviceAccountName":
			return pod.Spec.ServiceAccountName, true
		case "status.hostIP":
			return pod.Status.HostIP, true
		case "status.hostIPs":
			var out []string
			for _, ip := range pod.Status.HostIPs {
				out = append(out, ip.IP)
			}
			return strings.Join(out, ","), true
		case "status.podIP":
			return pod.Status.PodIP, true
		case "status.podIPs":
			return ips(pod.Status.PodIPs), true
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

func hostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return pod.Name
}
