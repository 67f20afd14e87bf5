package kubelet

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
)

// A container's environment as the kubelet makes it: envFrom, env in its
// order with references expanded and sources resolved, the Services'
// variables (the kubernetes Service's always, the namespace's with service
// links, none of a headless one), what is optional and not there left out.
func TestEnvironment(t *testing.T) {
	service := func(ns, name, ip string, port int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: []corev1.ServicePort{{Port: port, Protocol: corev1.ProtocolTCP}}}}
	}
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "settings"}, Data: map[string]string{"level": "debug", "Mode": "fast"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Data: map[string][]byte{"password": []byte("s3cret")}},
		service("default", "kubernetes", "10.96.0.1", 443),
		service("shop", "web", "10.96.0.20", 80),
		service("shop", "headless", corev1.ClusterIPNone, 80),
		service("other", "elsewhere", "10.96.0.30", 80),
	)
	k := syncedKubelet(t, client)

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "node-2", ServiceAccountName: "default", DNSPolicy: corev1.DNSClusterFirst},
		Status:     corev1.PodStatus{PodIP: "10.244.1.2", PodIPs: []corev1.PodIP{{IP: "10.244.1.2"}}, HostIP: "172.18.0.4"},
	}
	c := corev1.Container{Name: "app",
		EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
		Env: []corev1.EnvVar{
			{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
			{Name: "CFG_level", Value: "info"},
			{Name: "URL", Value: "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)/$(CFG_level)/$(UNKNOWN)"},
			{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}}},
			{Name: "MAYBE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "k", Optional: ptr.To(true)}}},
		}}
	pod.Spec.Containers = []corev1.Container{c}
	env := k.environment(t.Context(), pod, &c)
	var names []string
	values := map[string]string{}
	for _, kv := range env {
		names = append(names, kv[0])
		values[kv[0]] = kv[1]
	}
	// The declared ones in their order (envFrom's keys sorted; env
	// overrides in place), between the runtime's.
	declared := []string{"PATH", "HOSTNAME", "CFG_Mode", "CFG_level", "PASSWORD", "URL", "POD", "APP", "NODE", "IP", "CPU"}
	if !slices.Equal(names[:len(declared)], declared) || names[len(names)-1] != "HOME" {
		t.Errorf("names %q, want %q first, the services' next, HOME last", names, declared)
	}
	for name, want := range map[string]string{
		"HOSTNAME": "web-1", "CFG_Mode": "fast", "CFG_level": "info", "PASSWORD": "s3cret",
		"URL": "http://10.96.0.20:80/info/$(UNKNOWN)", "POD": "web-1", "APP": "web", "NODE": "node-2", "IP": "10.244.1.2",
		"CPU":                     "8000", // no limit: the node's allocatable (8 CPUs)
		"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
		"WEB_SERVICE_HOST": "10.96.0.20", "WEB_PORT_80_TCP_ADDR": "10.96.0.20",
	} {
		if got, ok := values[name]; !ok || got != want {
			t.Errorf("%s = %q (%v), want %q", name, got, ok, want)
		}
	}
	for _, absent := range []string{"MAYBE", "HEADLESS_SERVICE_HOST", "ELSEWHERE_SERVICE_HOST"} {
		if _, ok := values[absent]; ok {
			t.Errorf("%s set, want it left out", absent)
		}
	}

	// Without service links only the kubernetes Service's.
	pod.Spec.EnableServiceLinks = ptr.To(false)
	for _, kv := range k.environment(t.Context(), pod, &c) {
		if kv[0] == "WEB_SERVICE_HOST" {
			t.Errorf("WEB_SERVICE_HOST set without service links")
		}
	}
}

// syncedKubelet is a kubelet of node-1 and node-2 on client whose
// informers (pods, ConfigMaps, Secrets, Services) have synced.
func syncedKubelet(t *testing.T, client *fake.Clientset) *Kubelet {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	k, err := New(Config{Nodes: clusterconfig.DefaultNodes(2), KubeletVersion: "v1.37.2", Logs: NewLogs()}, client, factory)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(t.Context().Done())
	factory.WaitForCacheSync(t.Context().Done())
	return k
}
