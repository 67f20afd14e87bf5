package kubelet

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// file is one file a container can read; its content is made when read
// (a service account token is requested then, as the kubelet requests it).
type file func() ([]byte, error)

// files are what a container can read (cat, ls in the simulated shell):
// the files the kubelet writes for it (/etc/hostname, /etc/hosts,
// /etc/resolv.conf) and those of its mounts of ConfigMap, Secret, downward
// API and projected volumes, where the kubelet lays them out (a key per
// file, or the items' paths; a subPath mount is the one file). By clean
// absolute path. The rest of a container's filesystem (its image's) is not
// simulated.
func (k *Kubelet) files(ctx context.Context, pod *corev1.Pod, c *corev1.Container) map[string]file {
	r := k.newRefs(ctx, pod.Namespace)
	out := map[string]file{
		"/etc/hostname":    static(hostname(pod) + "\n"),
		"/etc/hosts":       static(hostsFile(pod)),
		"/etc/resolv.conf": static(k.resolvConf(pod)),
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			continue
		}
		contents := k.volumeFiles(ctx, r, pod, v)
		if m.SubPath != "" {
			if f, ok := contents[path.Clean(m.SubPath)]; ok {
				out[path.Clean(m.MountPath)] = f
			}
			continue
		}
		for name, f := range contents {
			out[path.Join(m.MountPath, name)] = f
		}
	}
	return out
}

// volumeFiles are the files of a volume the simulation knows the content
// of, by path inside it.
func (k *Kubelet) volumeFiles(ctx context.Context, r *refs, pod *corev1.Pod, v corev1.Volume) map[string]file {
	out := map[string]file{}
	switch {
	case v.ConfigMap != nil:
		k.configMapFiles(r, out, v.ConfigMap.Name, v.ConfigMap.Items)
	case v.Secret != nil:
		k.secretFiles(r, out, v.Secret.SecretName, v.Secret.Items)
	case v.DownwardAPI != nil:
		k.downwardFiles(r, pod, out, v.DownwardAPI.Items)
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			switch {
			case s.ConfigMap != nil:
				k.configMapFiles(r, out, s.ConfigMap.Name, s.ConfigMap.Items)
			case s.Secret != nil:
				k.secretFiles(r, out, s.Secret.Name, s.Secret.Items)
			case s.DownwardAPI != nil:
				k.downwardFiles(r, pod, out, s.DownwardAPI.Items)
			case s.ServiceAccountToken != nil:
				out[path.Clean(s.ServiceAccountToken.Path)] = k.tokenFile(ctx, pod, s.ServiceAccountToken)
			}
		}
	}
	return out
}

func (k *Kubelet) configMapFiles(r *refs, out map[string]file, name string, items []corev1.KeyToPath) {
	cm, err := r.configMap(name)
	if err != nil {
		return // optional and not there
	}
	data := map[string][]byte{}
	for key, v := range cm.Data {
		data[key] = []byte(v)
	}
	maps.Copy(data, cm.BinaryData)
	keyFiles(out, data, items)
}

func (k *Kubelet) secretFiles(r *refs, out map[string]file, name string, items []corev1.KeyToPath) {
	if s, err := r.secret(name); err == nil {
		keyFiles(out, s.Data, items)
	}
}

// keyFiles lays out keys as the ConfigMap and Secret volumes do: a file
// per key, or per item at its path.
func keyFiles(out map[string]file, data map[string][]byte, items []corev1.KeyToPath) {
	if len(items) == 0 {
		for key, v := range data {
			out[key] = static(string(v))
		}
		return
	}
	for _, item := range items {
		if v, ok := data[item.Key]; ok {
			out[path.Clean(item.Path)] = static(string(v))
		}
	}
}

// downwardFiles are a downward API volume's files: the pod's fields and
// the containers' resources, as the environment has them (labels and
// annotations one `key="value"` per line).
func (k *Kubelet) downwardFiles(r *refs, pod *corev1.Pod, out map[string]file, items []corev1.DownwardAPIVolumeFile) {
	for _, item := range items {
		var c *corev1.Container
		source := &corev1.EnvVarSource{FieldRef: item.FieldRef, ResourceFieldRef: item.ResourceFieldRef}
		if item.ResourceFieldRef != nil {
			if c = containerSpec(pod, item.ResourceFieldRef.ContainerName); c == nil {
				continue
			}
		}
		if v, ok := k.envSource(r, pod, c, source); ok {
			out[path.Clean(item.Path)] = static(v)
		}
	}
}

// tokenFile requests the pod's service account token when it is read, as
// the kubelet requests it for a projected volume: bound to the pod, for
// the source's audience (the API server's by default).
func (k *Kubelet) tokenFile(ctx context.Context, pod *corev1.Pod, source *corev1.ServiceAccountTokenProjection) file {
	return func() ([]byte, error) {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To(ptr.Deref(source.ExpirationSeconds, 3607)),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}
		if source.Audience != "" {
			req.Spec.Audiences = []string{source.Audience}
		}
		account := pod.Spec.ServiceAccountName
		if account == "" {
			account = "default"
		}
		token, err := k.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, account, req, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		return []byte(token.Status.Token), nil
	}
}

func static(content string) file {
	return func() ([]byte, error) { return []byte(content), nil }
}

// hostsFile is the kubelet's managed hosts file (managedHostsFileContent):
// the pod's IPs under its name (and its subdomain's), then its host
// aliases.
func hostsFile(pod *corev1.Pod) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	name := hostname(pod)
	for _, ip := range pod.Status.PodIPs {
		if pod.Spec.Subdomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.cluster.local\t%s\n", ip.IP, name, pod.Spec.Subdomain, pod.Namespace, name)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip.IP, name)
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.String()
}

// resolvConf is the pod's resolv.conf under the ClusterFirst DNS policy:
// the cluster's DNS (the kube-dns Service, or the kubelet's default
// address) and the cluster's search domains; the pod's dnsConfig added.
func (k *Kubelet) resolvConf(pod *corev1.Pod) string {
	server := "10.96.0.10"
	if dns, err := k.services.Services("kube-system").Get("kube-dns"); err == nil && dns.Spec.ClusterIP != "" {
		server = dns.Spec.ClusterIP
	}
	servers := []string{server}
	search := []string{pod.Namespace + ".svc.cluster.local", "svc.cluster.local", "cluster.local"}
	options := []string{"ndots:5"}
	if pod.Spec.DNSPolicy == corev1.DNSNone {
		servers, search, options = nil, nil, nil
	}
	if cfg := pod.Spec.DNSConfig; cfg != nil {
		servers = append(servers, cfg.Nameservers...)
		search = append(search, cfg.Searches...)
		for _, o := range cfg.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			options = append(options, opt)
		}
	}
	var b strings.Builder
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(slices.Compact(options), " "))
	}
	return b.String()
}
