package kubelet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/network/dns"
	"k8s.io/utils/ptr"
)

// file is one file a container can read; its content is made when read
// (a service account token is requested then, as the kubelet requests it).
type file func() ([]byte, error)

// files are what a container can read (cat, ls in the simulated shell):
// the files the kubelet writes for it (/etc/hostname, /etc/hosts,
// /etc/resolv.conf), those of its mounts of ConfigMap, Secret, downward
// API and projected volumes, where the kubelet lays them out (a key per
// file, or the items' paths; a subPath mount is the one file), and what
// the pod's containers wrote to its emptyDir volumes and it wrote
// elsewhere (scratch). By clean absolute path. The rest of a container's
// filesystem (its image's) is not simulated.
func (k *Kubelet) files(ctx context.Context, pod *corev1.Pod, c *corev1.Container) map[string]file {
	r := k.newRefs(ctx, pod.Namespace)
	out := map[string]file{
		"/etc/hostname":    static(hostname(pod) + "\n"),
		"/etc/resolv.conf": static(k.resolvConf(ctx, pod)),
	}
	if hosts, ok := hostsFile(pod); ok {
		out["/etc/hosts"] = static(hosts)
	}
	// What it wrote outside its volumes (writeFile), then its volumes.
	for p, data := range k.scratch.files(pod.UID, containerWhere(c.Name)) {
		out[p] = contentOf(data)
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
		if v.EmptyDir != nil && m.SubPath == "" {
			for name, data := range k.scratch.files(pod.UID, volumeWhere(v.Name)) {
				out[path.Join(m.MountPath, name)] = contentOf(data)
			}
			continue
		}
		contents, _, _ := k.volumeContents(ctx, r, pod, v) // what is not there has no files
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

// volumeContents are a volume's files the simulation knows the content of,
// by path inside it, laid out as the ConfigMap, Secret, downward API and
// projected volume plugins lay them out (pkg/volume: SetUpAt, MakePayload):
// a file per key, or the items at their paths. failure is why the volume
// cannot be set up (a ConfigMap or Secret not there, or without a key it
// lists, and not optional), in the plugins' words; err is the API's, when
// it could not tell (contents then has what it could read).
func (k *Kubelet) volumeContents(ctx context.Context, r *refs, pod *corev1.Pod, v corev1.Volume) (contents map[string]file, failure, err error) {
	contents = map[string]file{}
	var failures []error
	for _, s := range projection(v) {
		var e error
		switch {
		case s.ConfigMap != nil:
			var cm *corev1.ConfigMap
			if cm, e = r.configMap(s.ConfigMap.Name); e == nil {
				data := map[string]file{}
				for key, value := range cm.Data {
					data[key] = static(value)
				}
				for key, value := range cm.BinaryData {
					data[key] = contentOf(value)
				}
				e = keyFiles(contents, data, s.ConfigMap.Items, s.ConfigMap.Optional, "configmap references non-existent config key")
			}
			e = optionalNotFound(e, s.ConfigMap.Optional)
		case s.Secret != nil:
			var secret *corev1.Secret
			if secret, e = r.secret(s.Secret.Name); e == nil {
				data := map[string]file{}
				for key, value := range secret.Data {
					data[key] = contentOf(value)
				}
				e = keyFiles(contents, data, s.Secret.Items, s.Secret.Optional, "references non-existent secret key")
			}
			e = optionalNotFound(e, s.Secret.Optional)
		case s.DownwardAPI != nil:
			k.downwardFiles(r, pod, contents, s.DownwardAPI.Items)
		case s.ServiceAccountToken != nil:
			contents[path.Clean(s.ServiceAccountToken.Path)] = k.tokenFile(ctx, pod, s.ServiceAccountToken)
		}
		if t := (transient{}); errors.As(e, &t) {
			err = t.error
			continue
		}
		if e != nil {
			failures = append(failures, e)
		}
	}
	if err != nil {
		return contents, nil, err
	}
	return contents, utilerrors.NewAggregate(failures), nil
}

// projection is a volume as the sources of a projected one: a ConfigMap,
// Secret or downward API volume is one such source.
func projection(v corev1.Volume) []corev1.VolumeProjection {
	switch {
	case v.ConfigMap != nil:
		return []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{
			LocalObjectReference: v.ConfigMap.LocalObjectReference, Items: v.ConfigMap.Items, Optional: v.ConfigMap.Optional}}}
	case v.Secret != nil:
		return []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items, Optional: v.Secret.Optional}}}
	case v.DownwardAPI != nil:
		return []corev1.VolumeProjection{{DownwardAPI: &corev1.DownwardAPIProjection{Items: v.DownwardAPI.Items}}}
	case v.Projected != nil:
		return v.Projected.Sources
	}
	return nil
}

// optionalNotFound drops the NotFound of an optional source.
func optionalNotFound(err error, optional *bool) error {
	if apierrors.IsNotFound(err) && ptr.Deref(optional, false) {
		return nil
	}
	return err
}

// keyFiles lays out keys as the ConfigMap and Secret volumes do: a file
// per key, or per item at its path; an item whose key is not there is the
// failure missing says, unless optional.
func keyFiles(out, data map[string]file, items []corev1.KeyToPath, optional *bool, missing string) error {
	if len(items) == 0 {
		maps.Copy(out, data)
		return nil
	}
	for _, item := range items {
		f, ok := data[item.Key]
		if !ok {
			if ptr.Deref(optional, false) {
				continue
			}
			return fmt.Errorf("%s: %s", missing, item.Key)
		}
		out[path.Clean(item.Path)] = f
	}
	return nil
}

// downwardFiles are a downward API volume's files: the pod's fields and
// the containers' resources, as the environment has them (labels and
// annotations one `key="value"` per line).
func (k *Kubelet) downwardFiles(r *refs, pod *corev1.Pod, out map[string]file, items []corev1.DownwardAPIVolumeFile) {
	for _, item := range items {
		var c *corev1.Container
		if item.ResourceFieldRef != nil {
			if c = containerSpec(pod, item.ResourceFieldRef.ContainerName); c == nil {
				continue
			}
		}
		if v, ok := k.envSource(r, pod, c, &corev1.EnvVarSource{FieldRef: item.FieldRef, ResourceFieldRef: item.ResourceFieldRef}); ok {
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

// contentOf is a file whose content is data.
func contentOf(data []byte) file {
	return func() ([]byte, error) { return data, nil }
}

// clusterDomain is the simulated kubelets' --cluster-domain.
const clusterDomain = "cluster.local"

// hostsFile is the kubelet's managed hosts file (managedHostsFileContent):
// the pod's IPs under its name (and its subdomain's), then its host
// aliases. ok is false on the host's network, where the kubelet gives the
// node's own hosts file, which is not simulated.
func hostsFile(pod *corev1.Pod) (content string, ok bool) {
	if pod.Spec.HostNetwork {
		return "", false
	}
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	name, domain := hostNameAndDomain(pod)
	for _, ip := range pod.Status.PodIPs {
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip.IP, name, domain, name)
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
	return b.String(), true
}

// podDNS is the pod's DNS configuration as the kubelet's DNS configurer
// (pkg/kubelet/network/dns) makes it for the sandbox: the cluster's DNS
// (the kube-dns Service's address, else the kubelet's default) and search
// domains under ClusterFirst, and ClusterFirstWithHostNet; the node's under
// Default, and ClusterFirst on the host's network (the simulated kubelets
// run with --resolv-conf="", which gives nameserver 127.0.0.1 and search
// .); none under None; then the pod's dnsConfig merged and the resolver's
// limits applied, their warnings recorded by recorder.
func (k *Kubelet) podDNS(ctx context.Context, pod *corev1.Pod, recorder record.EventRecorder) *runtimeapi.DNSConfig {
	server := net.ParseIP("10.96.0.10")
	if svc, err := k.services.Services("kube-system").Get("kube-dns"); err == nil {
		if ip := net.ParseIP(svc.Spec.ClusterIP); ip != nil {
			server = ip
		}
	}
	node := &corev1.ObjectReference{Kind: "Node", Name: pod.Spec.NodeName, UID: types.UID(pod.Spec.NodeName)}
	cfg, err := dns.NewConfigurer(loggedRecorder{recorder}, node, nil, []net.IP{server}, clusterDomain, "").GetPodDNS(ctx, pod)
	if err != nil { // only from reading the node's resolv.conf, which there is none of
		return &runtimeapi.DNSConfig{}
	}
	// The configurer merges the dnsConfig's options through a map, in no
	// order: one order of the many a real container may get.
	slices.Sort(cfg.Options)
	return cfg
}

// resolvConf is the pod's resolv.conf as the container runtime writes it
// from the sandbox's DNS configuration.
func (k *Kubelet) resolvConf(ctx context.Context, pod *corev1.Pod) string {
	cfg := k.podDNS(ctx, pod, nil)
	var b strings.Builder
	if len(cfg.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(cfg.Searches, " "))
	}
	for _, s := range cfg.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(cfg.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(cfg.Options, " "))
	}
	return b.String()
}

// loggedRecorder is an event recorder with the WithLogger that upstream's
// DNS configurer asks for; without a recorder, events are dropped.
type loggedRecorder struct{ r record.EventRecorder }

func (l loggedRecorder) WithLogger(klog.Logger) record.EventRecorderLogger { return l }

func (l loggedRecorder) Event(object runtime.Object, eventtype, reason, message string) {
	if l.r != nil {
		l.r.Event(object, eventtype, reason, message)
	}
}

func (l loggedRecorder) Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...interface{}) {
	if l.r != nil {
		l.r.Eventf(object, eventtype, reason, messageFmt, args...)
	}
}

func (l loggedRecorder) AnnotatedEventf(object runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...interface{}) {
	if l.r != nil {
		l.r.AnnotatedEventf(object, annotations, eventtype, reason, messageFmt, args...)
	}
}
