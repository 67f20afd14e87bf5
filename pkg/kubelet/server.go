package kubelet

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/blang/semver/v4"
	restful "github.com/emicklei/go-restful/v3"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/server/healthz"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/apiserver/pkg/util/flushwriter"
	compbasemetrics "k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	_ "k8s.io/kubernetes/pkg/apis/core/install" // the v1 codecs and conversions of legacyscheme
	v1qos "k8s.io/kubernetes/pkg/apis/core/v1/helper/qos"
	v1validation "k8s.io/kubernetes/pkg/apis/core/v1/validation"
	"k8s.io/kubernetes/pkg/features"
	kubeletconfiginternal "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletconfigv1beta1 "k8s.io/kubernetes/pkg/kubelet/apis/config/v1beta1"
	kubecontainer "k8s.io/kubernetes/pkg/kubelet/container"
	"k8s.io/kubernetes/pkg/kubelet/eviction"
	"k8s.io/kubernetes/pkg/kubelet/metrics/collectors"
	"k8s.io/kubernetes/pkg/kubelet/server/stats"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/noderegistration"
)

// Handler returns the HTTP API of the kubelet of node, answered in process
// with the kubelet server's paths, content types and errors
// (pkg/kubelet/server); false if this Kubelet does not run that node.
func (k *Kubelet) Handler(node string) (http.Handler, bool) {
	set := k.nodes()
	i, ok := set.index[node]
	if !ok {
		return nil, false
	}
	s := &nodeServer{k: k, name: node, index: i, spec: set.specs[i]}
	// The kubelet's container: paths it does not know get net/http's 404,
	// unknown ones under its web services go-restful's.
	c := restful.NewContainer()
	// The sync loop check passes until the loop stalls, which it never does here.
	healthz.InstallHandler(c, healthz.PingHealthz, healthz.LogHealthz,
		healthz.NamedCheck("syncloop", func(*http.Request) error { return nil }))
	ws := new(restful.WebService)
	ws.Path("/pods").Produces(restful.MIME_JSON)
	ws.Route(ws.GET("").To(s.getPods).Operation("getPods"))
	c.Add(ws)
	c.Add(stats.CreateHandlers("/stats/", nil, s))
	c.Handle("/metrics", metricsHandler(s.kubeletMetrics))
	c.Handle("/metrics/cadvisor", metricsHandler(s.cadvisorMetrics))
	c.Handle("/metrics/resource", metricsHandler(s.resourceMetrics))
	c.Handle("/metrics/probes", metricsHandler(s.probeMetrics))
	ws = new(restful.WebService)
	ws.Path("/containerLogs")
	ws.Route(ws.GET("/{podNamespace}/{podID}/{containerName}").To(s.getContainerLogs).Operation("getContainerLogs"))
	c.Add(ws)
	c.Handle("/configz", http.HandlerFunc(s.configz))
	s.addSessions(c)
	return c, true
}

// nodeServer answers for the kubelet of one node.
type nodeServer struct {
	k     *Kubelet
	name  string
	index int
	spec  clusterconfig.NodeSpec
}

// pods are the pods bound to the node (the kubelet's pod manager's),
// ordered by namespace and name.
func (s *nodeServer) pods() []*corev1.Pod {
	all, _ := s.k.pods.List(labels.Everything()) // a lister's List does not fail
	pods := slices.DeleteFunc(all, func(p *corev1.Pod) bool { return p.Spec.NodeName != s.name })
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return pods
}

// pod is the kubelet's GetPodByName: only pods bound to its node.
func (s *nodeServer) pod(namespace, name string) (*corev1.Pod, bool) {
	p, err := s.k.pods.Pods(namespace).Get(name)
	return p, err == nil && p.Spec.NodeName == s.name
}

// getPods is /pods: a v1 PodList encoded as the kubelet's encodePods does.
func (s *nodeServer) getPods(_ *restful.Request, resp *restful.Response) {
	list := &corev1.PodList{}
	for _, p := range s.pods() {
		list.Items = append(list.Items, *p)
	}
	data, err := runtime.Encode(legacyscheme.Codecs.LegacyCodec(corev1.SchemeGroupVersion), list)
	if err != nil {
		_ = resp.WriteError(http.StatusInternalServerError, err)
		return
	}
	resp.Header().Set(restful.HEADER_ContentType, restful.MIME_JSON)
	resp.WriteHeader(http.StatusOK)
	_, _ = resp.Write(data)
}

// getContainerLogs is /containerLogs/{namespace}/{pod}/{container}, with
// the kubelet's query decoding, checks and error texts.
func (s *nodeServer) getContainerLogs(req *restful.Request, resp *restful.Response) {
	namespace, podID, container := req.PathParameter("podNamespace"), req.PathParameter("podID"), req.PathParameter("containerName")
	query := req.Request.URL.Query()
	if tail := req.QueryParameter("tail"); tail != "" { // the older name of tailLines
		query["tailLines"] = []string{tail}
		if tail == "all" {
			delete(query, "tailLines")
		}
	}
	o := &corev1.PodLogOptions{}
	if err := legacyscheme.ParameterCodec.DecodeParameters(query, corev1.SchemeGroupVersion, o); err != nil {
		_ = resp.WriteError(http.StatusBadRequest, fmt.Errorf(`{"message": "Unable to decode query."}`))
		return
	}
	splitStreams := utilfeature.DefaultFeatureGate.Enabled(features.PodLogsQuerySplitStreams)
	if splitStreams && o.Stream == nil {
		o.Stream = ptr.To(corev1.LogStreamAll)
	}
	o.TypeMeta = metav1.TypeMeta{}
	if errs := v1validation.ValidatePodLogOptions(o); len(errs) > 0 {
		_ = resp.WriteError(http.StatusUnprocessableEntity, fmt.Errorf(`{"message": "Invalid request."}`))
		return
	}
	pod, ok := s.pod(namespace, podID)
	if !ok {
		_ = resp.WriteError(http.StatusNotFound, fmt.Errorf("pod %q does not exist", podID))
		return
	}
	if kubecontainer.GetContainerSpec(pod, container) == nil {
		_ = resp.WriteError(http.StatusNotFound, fmt.Errorf("container %q not found in pod %q", container, podID))
		return
	}
	out := flushwriter.Wrap(resp.ResponseWriter)
	switch stream := ptr.Deref(o.Stream, corev1.LogStreamAll); {
	case stream != corev1.LogStreamAll && !splitStreams:
		_ = resp.WriteError(http.StatusBadRequest, fmt.Errorf("unable to return the given log stream: %q. Please enable PodLogsQuerySplitStreams feature gate in kubelet", stream))
		return
	case stream == corev1.LogStreamStderr:
		out = io.Discard // the simulated containers write to stdout only
	}
	resp.Header().Set("Transfer-Encoding", "chunked")
	run, err := logRun(pod, container, o.Previous)
	if err != nil {
		_ = resp.WriteError(http.StatusBadRequest, err)
		return
	}
	log := s.k.config.Logs.Open(req.Request.Context(), pod.UID, container, run, logOptions(o))
	defer func() { _ = log.Close() }()
	_, _ = io.Copy(out, log)
}

// logRun is the run of a container whose log the kubelet serves, or the
// error it answers with (its validateContainerLogStatus; runs stand for the
// container IDs the simulator does not record). The current run is
// numbered restartCount; the one that ended before it, restartCount-1, or
// restartCount while the container waits to restart. A container without
// a status has not started yet.
func logRun(pod *corev1.Pod, container string, previous bool) (int32, error) {
	s, found := podutil.GetContainerStatus(pod.Status.ContainerStatuses, container)
	if !found {
		s, found = podutil.GetContainerStatus(pod.Status.InitContainerStatuses, container)
	}
	if !found {
		s, found = podutil.GetContainerStatus(pod.Status.EphemeralContainerStatuses, container)
	}
	if !found {
		return 0, fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", container, pod.Name)
	}
	current := s.State.Running != nil || s.State.Terminated != nil
	last := s.RestartCount
	if current {
		last--
	}
	switch {
	case previous:
		if s.LastTerminationState.Terminated == nil {
			return 0, fmt.Errorf("previous terminated container %q in pod %q not found", container, pod.Name)
		}
		return last, nil
	case current:
		return s.RestartCount, nil
	case s.LastTerminationState.Terminated != nil:
		return last, nil
	case s.State.Waiting != nil:
		switch reason := s.State.Waiting.Reason; reason {
		case "ErrImagePull":
			return 0, fmt.Errorf("container %q in pod %q is waiting to start: image can't be pulled", container, pod.Name)
		case "ImagePullBackOff":
			return 0, fmt.Errorf("container %q in pod %q is waiting to start: trying and failing to pull image", container, pod.Name)
		default:
			return 0, fmt.Errorf("container %q in pod %q is waiting to start: %v", container, pod.Name, reason)
		}
	default:
		return 0, fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", container, pod.Name)
	}
}

// logOptions are the PodLogOptions the log store applies.
func logOptions(o *corev1.PodLogOptions) LogOptions {
	opt := LogOptions{Follow: o.Follow, Timestamps: o.Timestamps, TailLines: o.TailLines, LimitBytes: o.LimitBytes, SinceSeconds: o.SinceSeconds}
	if o.SinceTime != nil {
		opt.SinceTime = &o.SinceTime.Time
	}
	return opt
}

// configz is /configz: the configuration of a kubelet started as kubeadm
// starts it, read from a v1beta1 file (defaulted, with the default hard
// eviction thresholds), held in the internal version and shown in v1beta1
// again, as the kubelet's loadConfigFile and initConfigz do.
func (s *nodeServer) configz(w http.ResponseWriter, _ *http.Request) {
	node := noderegistration.Node(s.index, s.spec, s.k.version)
	in := &kubeletconfig.KubeletConfiguration{
		ClusterDomain:      "cluster.local",
		ClusterDNS:         []string{"10.96.0.10"},
		StaticPodPath:      "/etc/kubernetes/manifests",
		RotateCertificates: true,
		MaxPods:            int32(node.Status.Capacity.Pods().Value()),
		Authentication: kubeletconfig.KubeletAuthentication{
			X509: kubeletconfig.KubeletX509Authentication{ClientCAFile: "/etc/kubernetes/pki/ca.crt"},
		},
	}
	kubeletconfigv1beta1.SetObjectDefaults_KubeletConfiguration(in)
	var internal kubeletconfiginternal.KubeletConfiguration
	out := &kubeletconfig.KubeletConfiguration{}
	if err := kubeletconfigv1beta1.Convert_v1beta1_KubeletConfiguration_To_config_KubeletConfiguration(in, &internal, nil); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	internal.EvictionHard = maps.Clone(eviction.DefaultEvictionHard) // as loadConfigFile: no file sets it
	if err := kubeletconfigv1beta1.Convert_config_KubeletConfiguration_To_v1beta1_KubeletConfiguration(&internal, out, nil); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out.SetGroupVersionKind(kubeletconfigv1beta1.SchemeGroupVersion.WithKind("KubeletConfiguration"))
	b, err := json.Marshal(map[string]any{"kubeletconfig": out})
	if err != nil {
		http.Error(w, fmt.Sprintf("error marshaling json: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// usage is simulated resource use: CPU in nanocores and core-nanoseconds
// consumed, memory working set and disk in bytes.
type usage struct {
	nanoCores, coreNanoSeconds, workingSet, disk uint64
}

func (u *usage) add(v usage) {
	u.nanoCores += v.nanoCores
	u.coreNanoSeconds += v.coreNanoSeconds
	u.workingSet += v.workingSet
	u.disk += v.disk
}

// since is the use at a constant rate from start to now.
func (u usage) since(start, now time.Time) usage {
	u.coreNanoSeconds = uint64(float64(u.nanoCores) * now.Sub(start).Seconds())
	return u
}

func (u usage) cpu(t metav1.Time) *statsapi.CPUStats {
	return &statsapi.CPUStats{Time: t, UsageNanoCores: ptr.To(u.nanoCores), UsageCoreNanoSeconds: ptr.To(u.coreNanoSeconds)}
}

// memory is a cgroup's memory as cAdvisor reports it: usage counts page
// cache above the working set, RSS less; available only under a limit.
func (u usage) memory(t metav1.Time, limit uint64) *statsapi.MemoryStats {
	m := &statsapi.MemoryStats{Time: t, UsageBytes: ptr.To(u.workingSet + u.workingSet/8), WorkingSetBytes: ptr.To(u.workingSet),
		RSSBytes: ptr.To(u.workingSet * 3 / 4), PageFaults: ptr.To(u.workingSet / 1024), MajorPageFaults: ptr.To[uint64](0)}
	if limit > 0 {
		m.AvailableBytes = ptr.To(limit - min(u.workingSet, limit))
	}
	return m
}

// containerUsage is a running container's use: stable for the container
// (seeded by its pod's UID and its name), scaled to its requests as a
// lightly loaded workload's.
func containerUsage(pod *corev1.Pod, c *corev1.Container) usage {
	h := fnv.New64a()
	_, _ = h.Write([]byte(string(pod.UID) + "/" + c.Name))
	x := h.Sum64()
	u := usage{nanoCores: (1 + x%9) * 1e6, workingSet: (8 + (x>>8)%56) << 20, disk: (1 + (x>>16)%32) << 16}
	if cpu := c.Resources.Requests.Cpu(); !cpu.IsZero() {
		u.nanoCores = max(uint64(cpu.MilliValue())*1e6*(10+(x>>24)%30)/100, 1e5)
	}
	if mem := c.Resources.Requests.Memory(); !mem.IsZero() {
		u.workingSet = max(uint64(mem.Value())*(30+(x>>32)%40)/100, 1<<20)
	}
	if lim := c.Resources.Limits.Memory(); !lim.IsZero() {
		u.workingSet = min(u.workingSet, uint64(lim.Value())*9/10)
	}
	return u
}

// Get is /stats/summary (stats.SummaryProvider).
func (s *nodeServer) Get(context.Context, bool) (*statsapi.Summary, error) {
	return s.summary(s.pods(), false), nil
}

// GetCPUAndMemoryStats is /stats/summary?only_cpu_and_memory=true, and what
// /metrics/resource reports.
func (s *nodeServer) GetCPUAndMemoryStats(context.Context) (*statsapi.Summary, error) {
	return s.summary(s.pods(), true), nil
}

// summary is the stats summary of the node and its running pods and
// containers, as the kubelet's summary provider assembles it: the node's
// use is its pods' and the system's (the kubelet, the container runtime,
// the rest), within its capacity, since it booted when this process
// started; one disk holds the system, the images and the containers'
// layers and logs, as on a kind node.
func (s *nodeServer) summary(pods []*corev1.Pod, onlyCPUAndMemory bool) *statsapi.Summary {
	now := time.Now()
	t := metav1.NewTime(now)
	boot := legacyregistry.GetProcessStart()
	capacity := noderegistration.Node(s.index, s.spec, s.k.version).Status.Capacity
	disk, memory := uint64(capacity.StorageEphemeral().Value()), uint64(capacity.Memory().Value())
	kubelet := usage{nanoCores: 40e6, workingSet: 96 << 20}.since(boot, now)
	cri := usage{nanoCores: 25e6, workingSet: 64 << 20}.since(boot, now)
	node := usage{nanoCores: 60e6, workingSet: 448 << 20, disk: 4 << 30}.since(boot, now)
	node.add(kubelet)
	node.add(cri)
	images, containers := map[string]bool{}, 0

	out := &statsapi.Summary{Pods: []statsapi.PodStats{}}
	var all usage              // the pods'
	var fs []*statsapi.FsStats // the containers' and pods', completed below
	for _, pod := range pods {
		if pod.Status.Phase != corev1.PodRunning || pod.Status.StartTime == nil {
			continue
		}
		ps := statsapi.PodStats{
			PodRef:     statsapi.PodReference{Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID)},
			StartTime:  *pod.Status.StartTime,
			Containers: []statsapi.ContainerStats{},
		}
		var pu usage
		for _, st := range pod.Status.ContainerStatuses {
			spec := kubecontainer.GetContainerSpec(pod, st.Name)
			if st.State.Running == nil || spec == nil {
				continue
			}
			images[st.Image] = true
			cu := containerUsage(pod, spec).since(st.State.Running.StartedAt.Time, now)
			pu.add(cu)
			cs := statsapi.ContainerStats{Name: st.Name, StartTime: st.State.Running.StartedAt,
				CPU: cu.cpu(t), Memory: cu.memory(t, uint64(spec.Resources.Limits.Memory().Value()))}
			if !onlyCPUAndMemory {
				cs.Rootfs = &statsapi.FsStats{UsedBytes: ptr.To(cu.disk - cu.disk/8)}
				cs.Logs = &statsapi.FsStats{UsedBytes: ptr.To(cu.disk / 8)}
				fs = append(fs, cs.Rootfs, cs.Logs)
			}
			ps.Containers = append(ps.Containers, cs)
		}
		ps.CPU, ps.Memory = pu.cpu(t), pu.memory(t, 0)
		if !onlyCPUAndMemory {
			up := uint64(now.Sub(pod.Status.StartTime.Time).Seconds())
			ps.Network = network(t, 1024*up, 512*up)
			ps.EphemeralStorage = &statsapi.FsStats{UsedBytes: ptr.To(pu.disk)}
			fs = append(fs, ps.EphemeralStorage)
			ps.ProcessStats = &statsapi.ProcessStats{ProcessCount: ptr.To(uint64(len(ps.Containers)))}
		}
		all.add(pu)
		containers += len(ps.Containers)
		out.Pods = append(out.Pods, ps)
	}
	node.add(all)

	bootTime := metav1.NewTime(boot)
	out.Node = statsapi.NodeStats{
		NodeName:  s.name,
		StartTime: bootTime,
		CPU:       node.cpu(t),
		Memory:    node.memory(t, memory),
		Swap:      &statsapi.SwapStats{Time: t, SwapAvailableBytes: ptr.To[uint64](0), SwapUsageBytes: ptr.To[uint64](0)},
		SystemContainers: []statsapi.ContainerStats{
			{Name: statsapi.SystemContainerKubelet, StartTime: bootTime, CPU: kubelet.cpu(t), Memory: kubelet.memory(t, 0)},
			{Name: statsapi.SystemContainerRuntime, StartTime: bootTime, CPU: cri.cpu(t), Memory: cri.memory(t, 0)},
			{Name: statsapi.SystemContainerPods, StartTime: bootTime, CPU: all.cpu(t), Memory: all.memory(t, memory)},
		},
	}
	if onlyCPUAndMemory {
		return out
	}
	imageBytes := uint64(512<<20 + len(images)*64<<20)
	used := min(node.disk+imageBytes, disk)
	// A filesystem's figures with used bytes of it; ext4 has an inode per 16 KiB.
	on := func(f *statsapi.FsStats) *statsapi.FsStats {
		*f = statsapi.FsStats{Time: t, CapacityBytes: ptr.To(disk), AvailableBytes: ptr.To(disk - used), UsedBytes: f.UsedBytes,
			Inodes: ptr.To(disk >> 14), InodesFree: ptr.To((disk - used) >> 14), InodesUsed: ptr.To(*f.UsedBytes >> 14)}
		return f
	}
	for _, f := range fs {
		on(f)
	}
	up := uint64(now.Sub(boot).Seconds())
	out.Node.Network = network(t, 20<<10*up, 12<<10*up)
	out.Node.Fs = on(&statsapi.FsStats{UsedBytes: ptr.To(used)})
	out.Node.Runtime = &statsapi.RuntimeStats{ImageFs: on(&statsapi.FsStats{UsedBytes: ptr.To(imageBytes)}),
		ContainerFs: on(&statsapi.FsStats{UsedBytes: ptr.To(imageBytes)})}
	out.Node.Rlimit = &statsapi.RlimitStats{Time: t, MaxPID: ptr.To[int64](4194304), NumOfRunningProcesses: ptr.To(int64(250 + 2*containers))}
	return out
}

// network is an eth0 that moved rx and tx bytes.
func network(t metav1.Time, rx, tx uint64) *statsapi.NetworkStats {
	eth0 := statsapi.InterfaceStats{Name: "eth0", RxBytes: ptr.To(rx), RxErrors: ptr.To[uint64](0), TxBytes: ptr.To(tx), TxErrors: ptr.To[uint64](0)}
	return &statsapi.NetworkStats{Time: t, InterfaceStats: eth0, Interfaces: []statsapi.InterfaceStats{eth0}}
}

// family is a metric family of a kubelet endpoint with its samples; its
// help is upstream's, with the stability prefix component-base adds to the
// kubelet's own metrics.
type family struct {
	name, help string
	kind       prometheus.ValueType
	labels     []string
	samples    []sample
}

type sample struct {
	value  float64
	labels []string
}

func (f *family) add(v float64, labels ...string) { f.samples = append(f.samples, sample{v, labels}) }

// families is an unchecked prometheus.Collector of one scrape's families.
type families []*family

func (families) Describe(chan<- *prometheus.Desc) {}

func (fs families) Collect(ch chan<- prometheus.Metric) {
	for _, f := range fs {
		d := prometheus.NewDesc(f.name, f.help, f.labels, nil)
		for _, s := range f.samples {
			ch <- prometheus.MustNewConstMetric(d, f.kind, s.value, s.labels...)
		}
	}
}

// metricsHandler serves what collect returns, gathered anew for each
// scrape into a registry of its own (none global), in the exposition
// format the kubelet's handlers negotiate.
func metricsHandler(collect func() prometheus.Collector) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg := prometheus.NewRegistry()
		if err := reg.Register(collect()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		compbasemetrics.HandlerFor(reg, compbasemetrics.HandlerOpts{ErrorHandling: compbasemetrics.ContinueOnError}).ServeHTTP(w, r)
	})
}

const (
	gauge   = prometheus.GaugeValue
	counter = prometheus.CounterValue
)

// processStart is process_start_time_seconds: the simulated kubelets
// started with this process.
func processStart(help string) *family {
	f := &family{name: "process_start_time_seconds", help: help, kind: gauge}
	f.add(float64(legacyregistry.GetProcessStart().UnixNano()) / 1e9)
	return f
}

// kubeletMetrics is /metrics: the kubelet's own metrics about its pods
// (pkg/kubelet/metrics), counted from the pods it has now.
func (s *nodeServer) kubeletMetrics() prometheus.Collector {
	nodeName := &family{name: "kubelet_node_name", help: "[ALPHA] The node's name. The count is always 1.", kind: gauge, labels: []string{"node"}}
	nodeName.add(1, s.name)
	runningPods := &family{name: "kubelet_running_pods", help: "[ALPHA] Number of pods that have a running pod sandbox", kind: gauge}
	runningContainers := &family{name: "kubelet_running_containers", help: "[ALPHA] Number of containers currently running", kind: gauge, labels: []string{"container_state"}}
	desired := &family{name: "kubelet_desired_pods", help: "[ALPHA] The number of pods the kubelet is being instructed to run. static is true if the pod is not from the apiserver.", kind: gauge, labels: []string{"static"}}
	active := &family{name: "kubelet_active_pods", help: "[ALPHA] The number of pods the kubelet considers active and which are being considered when admitting new pods. static is true if the pod is not from the apiserver.", kind: gauge, labels: []string{"static"}}
	startedPods := &family{name: "kubelet_started_pods_total", help: "[ALPHA] Cumulative number of pods started", kind: counter}
	startedContainers := &family{name: "kubelet_started_containers_total", help: "[ALPHA] Cumulative number of containers started", kind: counter, labels: []string{"container_type"}}

	pods := s.pods()
	var sandboxes, started, activePods int
	states, starts := map[string]int{}, map[string]int{}
	for _, pod := range pods {
		if _, c := podutil.GetPodCondition(&pod.Status, corev1.PodReadyToStartContainers); c != nil && c.Status == corev1.ConditionTrue {
			sandboxes++
		}
		if !podutil.IsPodPhaseTerminal(pod.Status.Phase) {
			activePods++
		}
		ran := false
		for kind, list := range map[string][]corev1.ContainerStatus{"container": pod.Status.ContainerStatuses,
			"init_container": pod.Status.InitContainerStatuses, "ephemeral_container": pod.Status.EphemeralContainerStatuses} {
			for _, st := range list {
				// A run's container stays in the runtime, exited, until
				// the next one starts.
				switch {
				case st.State.Running != nil:
					states["running"]++
				case st.State.Terminated != nil || st.LastTerminationState.Terminated != nil:
					states["exited"]++
				default:
					continue
				}
				starts[kind] += int(st.RestartCount) + 1
				ran = true
			}
		}
		if ran {
			started++
		}
	}
	runningPods.add(float64(sandboxes))
	for state, n := range states {
		runningContainers.add(float64(n), state)
	}
	for kind, n := range starts {
		startedContainers.add(float64(n), kind)
	}
	desired.add(float64(len(pods)), "")
	desired.add(0, "true")
	active.add(float64(activePods), "")
	active.add(0, "true")
	startedPods.add(float64(started))
	return families{nodeName, runningPods, runningContainers, desired, active, startedPods, startedContainers,
		processStart("Start time of the process since unix epoch in seconds.")}
}

// resourceMetrics is /metrics/resource: upstream's collector over the
// summary, its metrics shown or hidden as in a kubelet of this version.
func (s *nodeServer) resourceMetrics() prometheus.Collector {
	c := collectors.NewResourceMetricsCollector(s)
	var version *semver.Version
	if v, err := semver.ParseTolerant(s.k.version); err == nil {
		version = &v
	}
	c.Create(version, c)
	return c
}

// cadvisorMetrics is /metrics/cadvisor: the machine and the CPU and memory
// of the root cgroup and the running containers, with cAdvisor's names
// and the kubelet's labels; the containers' cgroups are those of the
// cgroupfs driver the configuration shows, their IDs made up.
func (s *nodeServer) cadvisorMetrics() prometheus.Collector {
	node := noderegistration.Node(s.index, s.spec, s.k.version)
	pods := s.pods()
	sum := s.summary(pods, true)
	machine := []string{"boot_id", "machine_id", "system_uuid"}
	cores := &family{name: "machine_cpu_cores", help: "Number of logical CPU cores.", kind: gauge, labels: machine}
	memory := &family{name: "machine_memory_bytes", help: "Amount of memory installed on the machine.", kind: gauge, labels: machine}
	info := node.Status.NodeInfo
	cores.add(float64(node.Status.Capacity.Cpu().Value()), info.BootID, info.MachineID, info.SystemUUID)
	memory.add(float64(node.Status.Capacity.Memory().Value()), info.BootID, info.MachineID, info.SystemUUID)

	container := []string{"container", "id", "image", "name", "namespace", "pod"}
	cpu := &family{name: "container_cpu_usage_seconds_total", help: "Cumulative cpu time consumed in seconds.", kind: counter, labels: append(container, "cpu")}
	workingSet := &family{name: "container_memory_working_set_bytes", help: "Current working set in bytes.", kind: gauge, labels: container}
	usageBytes := &family{name: "container_memory_usage_bytes", help: "Current memory usage in bytes, including all memory regardless of when it was accessed", kind: gauge, labels: container}
	rss := &family{name: "container_memory_rss", help: "Size of RSS in bytes.", kind: gauge, labels: container}
	start := &family{name: "container_start_time_seconds", help: "Start time of the container since unix epoch in seconds.", kind: gauge, labels: container}
	add := func(cs statsapi.ContainerStats, labels ...string) {
		cpu.add(float64(*cs.CPU.UsageCoreNanoSeconds)/1e9, append(labels, "total")...)
		workingSet.add(float64(*cs.Memory.WorkingSetBytes), labels...)
		usageBytes.add(float64(*cs.Memory.UsageBytes), labels...)
		rss.add(float64(*cs.Memory.RSSBytes), labels...)
		start.add(float64(cs.StartTime.Unix()), labels...)
	}
	add(statsapi.ContainerStats{StartTime: sum.Node.StartTime, CPU: sum.Node.CPU, Memory: sum.Node.Memory}, "", "/", "", "", "", "")
	byUID := map[string]*corev1.Pod{}
	for _, p := range pods {
		byUID[string(p.UID)] = p
	}
	for _, ps := range sum.Pods {
		pod := byUID[ps.PodRef.UID]
		cgroup := "/kubepods/pod" + string(pod.UID)
		if qos := v1qos.GetPodQOS(pod); qos != corev1.PodQOSGuaranteed {
			cgroup = "/kubepods/" + strings.ToLower(string(qos)) + "/pod" + string(pod.UID)
		}
		for _, cs := range ps.Containers {
			st, _ := podutil.GetContainerStatus(pod.Status.ContainerStatuses, cs.Name)
			id := fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", pod.UID, cs.Name, st.RestartCount))))
			add(cs, cs.Name, cgroup+"/"+id, st.Image, id, pod.Namespace, pod.Name)
		}
	}
	return families{cores, memory, cpu, workingSet, usageBytes, rss, start}
}

// probeMetrics is /metrics/probes: the probes of the running containers,
// run every period since they started; readiness fails while a container
// is not ready.
func (s *nodeServer) probeMetrics() prometheus.Collector {
	probes := &family{name: "prober_probe_total", help: "[BETA] Cumulative number of a liveness, readiness or startup probe for a container by result.",
		kind: counter, labels: []string{"probe_type", "result", "container", "pod", "namespace", "pod_uid"}}
	now := time.Now()
	for _, pod := range s.pods() {
		for _, st := range pod.Status.ContainerStatuses {
			spec := kubecontainer.GetContainerSpec(pod, st.Name)
			if st.State.Running == nil || spec == nil {
				continue
			}
			for kind, p := range map[string]*corev1.Probe{"Readiness": spec.ReadinessProbe, "Liveness": spec.LivenessProbe, "Startup": spec.StartupProbe} {
				if p == nil {
					continue
				}
				result, n := "successful", 1.0
				if kind != "Startup" { // a startup probe stops once it succeeds
					period := time.Duration(cmp.Or(p.PeriodSeconds, 10)) * time.Second
					n += float64(max(now.Sub(st.State.Running.StartedAt.Add(time.Duration(p.InitialDelaySeconds)*time.Second)), 0) / period)
				}
				if kind == "Readiness" && !st.Ready {
					result = "failed"
				}
				probes.add(n, kind, result, st.Name, pod.Name, pod.Namespace, string(pod.UID))
			}
		}
	}
	return families{processStart("[ALPHA] Start time of the process since unix epoch in seconds."), probes}
}

// Runs reports whether node is one of the simulated nodes.
func (k *Kubelet) Runs(node string) bool {
	_, ok := k.nodes().index[node]
	return ok
}
