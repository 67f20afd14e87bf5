package kubelet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// What a container can read: the kubelet's /etc files, and its mounts of
// ConfigMaps (every key, or the items at their paths), Secrets, the
// downward API and a subPath, laid out as the volume plugins lay them out.
func TestFiles(t *testing.T) {
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "app"}, Data: map[string]string{"app.yaml": "port: 8080\n", "extra": "x"},
			BinaryData: map[string][]byte{"blob": {1, 2}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "tls"}, Data: map[string][]byte{"tls.crt": []byte("CERT"), "tls.key": []byte("KEY")}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}},
	)
	k := syncedKubelet(t, client)

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web", "tier": "front"}},
		Spec: corev1.PodSpec{
			DNSPolicy:   corev1.DNSClusterFirst,
			Subdomain:   "web",
			HostAliases: []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"db", "db.local"}}},
			DNSConfig:   &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "edns0"}}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
				{Name: "one", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"},
					Items: []corev1.KeyToPath{{Key: "app.yaml", Path: "conf/main.yaml"}}}}},
				{Name: "certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}},
				{Name: "gone", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "absent", Optional: ptr.To(true)}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}},
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}},
				}}}},
			},
		},
		Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.244.0.5"}}},
	}
	c := corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{
		{Name: "config", MountPath: "/etc/app"},
		{Name: "one", MountPath: "/opt/one/"},
		{Name: "certs", MountPath: "/certs"},
		{Name: "gone", MountPath: "/gone"},
		{Name: "info", MountPath: "/etc/podinfo"},
		{Name: "config", MountPath: "/srv/app.yaml", SubPath: "app.yaml"},
	}}
	pod.Spec.Containers = []corev1.Container{c}
	files := k.files(t.Context(), pod, &c)
	read := func(p string) string {
		t.Helper()
		f, ok := files[p]
		if !ok {
			t.Fatalf("no %s among %q", p, slices.Sorted(maps.Keys(files)))
		}
		b, err := f()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := []string{"/certs/tls.crt", "/certs/tls.key", "/etc/app/app.yaml", "/etc/app/blob", "/etc/app/extra", "/etc/hostname", "/etc/hosts",
		"/etc/podinfo/labels", "/etc/podinfo/name", "/etc/resolv.conf", "/opt/one/conf/main.yaml", "/srv/app.yaml"}
	if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	for p, content := range map[string]string{
		"/etc/app/app.yaml": "port: 8080\n", "/etc/app/blob": "\x01\x02", "/opt/one/conf/main.yaml": "port: 8080\n", "/srv/app.yaml": "port: 8080\n",
		"/certs/tls.key": "KEY", "/etc/podinfo/labels": "app=\"web\"\ntier=\"front\"", "/etc/podinfo/name": "web-1",
		"/etc/hostname": "web-1\n",
		"/etc/hosts": "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n" +
			"fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.244.0.5\tweb-1.web.shop.svc.cluster.local\tweb-1\n" +
			"\n# Entries added by HostAliases.\n10.1.2.3\tdb\tdb.local\n",
		"/etc/resolv.conf": "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions edns0 ndots:5\n",
	} {
		if got := read(p); got != content {
			t.Errorf("%s: %q, want %q", p, got, content)
		}
	}
}

// TestHostnameAndDNS checks the hostname, hosts file and resolv.conf of a
// container against what the kubelet gives for the pod's network, names
// and DNS policy.
func TestHostnameAndDNS(t *testing.T) {
	client := fake.NewClientset(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10"}})
	k := syncedKubelet(t, client)
	cluster := "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
	node := "search .\nnameserver 127.0.0.1\n"
	long := strings.Repeat("a", 62) + "-b"
	for _, tc := range []struct {
		name     string
		spec     func(*corev1.PodSpec)
		podName  string
		hostname string
		hosts    string // the pod's line of /etc/hosts; "" for no hosts file
		resolv   string
	}{
		{name: "defaults", spec: func(*corev1.PodSpec) {}, hostname: "web-1", hosts: "10.244.0.5\tweb-1\n", resolv: cluster},
		{name: "host network", spec: func(s *corev1.PodSpec) { s.HostNetwork = true }, hostname: "node-2", resolv: node},
		{name: "host network, ClusterFirstWithHostNet", spec: func(s *corev1.PodSpec) {
			s.HostNetwork, s.DNSPolicy = true, corev1.DNSClusterFirstWithHostNet
		}, hostname: "node-2", resolv: cluster},
		{name: "Default", spec: func(s *corev1.PodSpec) { s.DNSPolicy = corev1.DNSDefault }, hostname: "web-1", hosts: "10.244.0.5\tweb-1\n", resolv: node},
		{name: "None", spec: func(s *corev1.PodSpec) {
			s.DNSPolicy = corev1.DNSNone
			s.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"example.com"}}
		}, hostname: "web-1", hosts: "10.244.0.5\tweb-1\n", resolv: "search example.com\nnameserver 1.1.1.1\n"},
		{name: "dnsConfig overrides an option and adds servers past the limit", spec: func(s *corev1.PodSpec) {
			s.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}}}
		}, hostname: "web-1", hosts: "10.244.0.5\tweb-1\n",
			resolv: "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\nnameserver 10.0.0.1\nnameserver 10.0.0.2\noptions ndots:2\n"},
		{name: "hostname and subdomain, as FQDN", spec: func(s *corev1.PodSpec) {
			s.Hostname, s.Subdomain, s.SetHostnameAsFQDN = "db-0", "db", ptr.To(true)
		}, hostname: "db-0.db.shop.svc.cluster.local", hosts: "10.244.0.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n", resolv: cluster},
		{name: "override", spec: func(s *corev1.PodSpec) { s.HostnameOverride, s.Subdomain = ptr.To("my.host"), "db" },
			hostname: "my.host", hosts: "10.244.0.5\tmy.host\n", resolv: cluster},
		{name: "a long name cut to 63", podName: long, spec: func(*corev1.PodSpec) {},
			hostname: strings.Repeat("a", 62), hosts: "10.244.0.5\t" + strings.Repeat("a", 62) + "\n", resolv: cluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"},
				Spec:       corev1.PodSpec{NodeName: "node-2", DNSPolicy: corev1.DNSClusterFirst, Containers: []corev1.Container{{Name: "app"}}},
				Status:     corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.244.0.5"}}},
			}
			if tc.podName != "" {
				pod.Name = tc.podName
			}
			tc.spec(&pod.Spec)
			files := k.files(t.Context(), pod, &pod.Spec.Containers[0])
			read := func(p string) string {
				b, err := files[p]()
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			if got := read("/etc/hostname"); got != tc.hostname+"\n" {
				t.Errorf("/etc/hostname %q, want %q", got, tc.hostname+"\n")
			}
			if got := hostname(pod); got != tc.hostname {
				t.Errorf("hostname %q, want %q", got, tc.hostname)
			}
			if _, ok := files["/etc/hosts"]; ok != (tc.hosts != "") {
				t.Errorf("a hosts file: %v, want %v", ok, tc.hosts != "")
			} else if ok {
				if _, line, _ := strings.Cut(read("/etc/hosts"), "ip6-allrouters\n"); line != tc.hosts {
					t.Errorf("/etc/hosts ends with %q, want %q", line, tc.hosts)
				}
			}
			if got := read("/etc/resolv.conf"); got != tc.resolv {
				t.Errorf("/etc/resolv.conf %q, want %q", got, tc.resolv)
			}
		})
	}
}

// TestDNSLimitEvent checks that the sandbox's DNS configuration warns, as
// the kubelet's does, when the resolver's limit of three nameservers
// leaves some of the pod's out, and only when the sandbox is made.
func TestDNSLimitEvent(t *testing.T) {
	pod := statusPod("web", corev1.RestartPolicyAlways, "app")
	pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}}
	k, _, events, get := acceptedPod(t, pod)
	if _, err := k.step(t.Context(), get()); err != nil {
		t.Fatal(err)
	}
	want := "Warning DNSConfigForming Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.96.0.10 10.0.0.1 10.0.0.2"
	got := drain(events)
	if !slices.Contains(got, want) {
		t.Errorf("events %q, want %q among them", got, want)
	}
	if _, err := k.step(t.Context(), get()); err != nil {
		t.Fatal(err)
	}
	if again := drain(events); slices.Contains(again, want) {
		t.Errorf("warned again once the sandbox existed: %q", again)
	}
}

// A pod whose setHostnameAsFQDN name does not fit the kernel's 64
// characters gets no sandbox: it waits in ContainerCreating, and the
// kubelet says why, as kuberuntime does.
func TestSandboxFQDNTooLong(t *testing.T) {
	pod := statusPod("web", corev1.RestartPolicyAlways, "app")
	pod.Spec.Hostname, pod.Spec.Subdomain, pod.Spec.SetHostnameAsFQDN = strings.Repeat("h", 40), "headless-service", ptr.To(true)
	k, _, events, get := acceptedPod(t, pod)
	next, err := k.step(t.Context(), get())
	if err != nil {
		t.Fatal(err)
	}
	got := get()
	if w := got.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ContainerCreating" || got.Status.PodIP != "" || next <= 0 {
		t.Errorf("app %+v, pod IP %q, next step in %v; want it waiting for a sandbox, tried again", got.Status.ContainerStatuses[0].State, got.Status.PodIP, next)
	}
	fqdn := strings.Repeat("h", 40) + ".headless-service.default.svc.cluster.local"
	want := fmt.Sprintf("Warning FailedCreatePodSandBox Failed to create pod sandbox: failed to construct FQDN from pod hostname and cluster domain, FQDN %s is too long (64 characters is the max, %d characters requested)", fqdn, len(fqdn))
	if e := drain(events); !slices.Contains(e, want) {
		t.Errorf("events %q, want %q", e, want)
	}
}
