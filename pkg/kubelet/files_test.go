package kubelet

import (
	"maps"
	"slices"
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
		"/etc/resolv.conf": "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5 edns0\n",
	} {
		if got := read(p); got != content {
			t.Errorf("%s: %q, want %q", p, got, content)
		}
	}
}
