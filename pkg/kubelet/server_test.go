package kubelet

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
)

// testPod is a pod bound to node, in phase with its container app started
// a minute ago (running unless the pod completed).
func testPod(name, node string, phase corev1.PodPhase) *corev1.Pod {
	started := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	state := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
	sandbox := corev1.ConditionTrue
	if phase == corev1.PodSucceeded {
		state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{StartedAt: started, FinishedAt: started, Reason: "Completed"}}
		sandbox = corev1.ConditionFalse
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: node, DNSPolicy: corev1.DNSClusterFirst, Containers: []corev1.Container{{
			Name: "app", Image: "nginx:1.27",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
			}},
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 10},
		}}},
		Status: corev1.PodStatus{
			Phase: phase, StartTime: &started,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReadyToStartContainers, Status: sandbox}},
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", Image: "docker.io/library/nginx:1.27", Ready: phase == corev1.PodRunning, State: state,
			}},
		},
	}
}

// newTestKubelet runs node-1 and node-2, with pods web and done on node-1
// and other on node-2; web's app printed two lines.
func newTestKubelet(t *testing.T) *Kubelet {
	t.Helper()
	client := fake.NewClientset(
		testPod("web", "node-1", corev1.PodRunning),
		testPod("done", "node-1", corev1.PodSucceeded),
		testPod("other", "node-2", corev1.PodRunning),
	)
	factory := informers.NewSharedInformerFactory(client, 0)
	k, err := New(Config{Nodes: clusterconfig.DefaultNodes(2), KubeletVersion: "v1.37.2", Logs: NewLogs()}, client, factory)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(t.Context().Done())
	t.Cleanup(factory.Shutdown)
	factory.WaitForCacheSync(t.Context().Done())
	k.config.Logs.Start("uid-web", "app", 0, time.Now(), printedAtStart([]string{"hello", "world"})...)
	return k
}

// get fetches path from node-1's kubelet.
func get(t *testing.T, k *Kubelet, path string) (*http.Response, string) {
	t.Helper()
	h, ok := k.Handler("node-1")
	if !ok {
		t.Fatal("no handler for node-1")
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHandlerNodes(t *testing.T) {
	k := newTestKubelet(t)
	if _, ok := k.Handler("node-2"); !ok {
		t.Error("node-2 has no kubelet")
	}
	if h, ok := k.Handler("node-3"); ok || h != nil {
		t.Error("node-3, which is not simulated, has a kubelet")
	}
}

func TestHandlerHealthzAndNotFound(t *testing.T) {
	k := newTestKubelet(t)
	for _, path := range []string{"/healthz", "/healthz/ping", "/healthz/syncloop"} {
		if resp, body := get(t, k, path); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	resp, body := get(t, k, "/nothing")
	if resp.StatusCode != http.StatusNotFound || body != "404 page not found\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("unknown path: %d %q %s", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}

func TestHandlerPods(t *testing.T) {
	k := newTestKubelet(t)
	resp, body := get(t, k, "/pods")
	var list corev1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%v %s: %s", err, resp.Header.Get("Content-Type"), body)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	if list.Kind != "PodList" || list.APIVersion != "v1" || !slices.Equal(names, []string{"done", "web"}) {
		t.Errorf("%s %s %v, want PodList v1 [done web]", list.Kind, list.APIVersion, names)
	}
}

func TestHandlerConfigz(t *testing.T) {
	k := newTestKubelet(t)
	_, body := get(t, k, "/configz")
	var got struct {
		KubeletConfig kubeletconfig.KubeletConfiguration `json:"kubeletconfig"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err, body)
	}
	c := got.KubeletConfig
	if c.Kind != "KubeletConfiguration" || c.APIVersion != "kubelet.config.k8s.io/v1beta1" {
		t.Errorf("kind %q apiVersion %q", c.Kind, c.APIVersion)
	}
	// Upstream's defaults, and the node's values.
	if c.Port != 10250 || c.SyncFrequency.Duration != time.Minute || ptr.Deref(c.ImageGCHighThresholdPercent, 0) != 85 ||
		c.EvictionHard["memory.available"] != "100Mi" || c.Authorization.Mode != kubeletconfig.KubeletAuthorizationModeWebhook {
		t.Errorf("not defaulted: %s", body)
	}
	if c.ClusterDomain != "cluster.local" || !slices.Equal(c.ClusterDNS, []string{"10.96.0.10"}) || c.MaxPods != 110 {
		t.Errorf("node values: %q %v %d", c.ClusterDomain, c.ClusterDNS, c.MaxPods)
	}
}

func TestHandlerStatsSummary(t *testing.T) {
	k := newTestKubelet(t)
	var s statsapi.Summary
	if _, body := get(t, k, "/stats/summary"); json.Unmarshal([]byte(body), &s) != nil {
		t.Fatal(body)
	}
	if s.Node.NodeName != "node-1" || len(s.Pods) != 1 || s.Pods[0].PodRef.Name != "web" || len(s.Pods[0].Containers) != 1 {
		t.Fatalf("want node-1 with the running pod web and its container: %+v", s)
	}
	app := s.Pods[0].Containers[0]
	if app.Name != "app" || *app.CPU.UsageNanoCores == 0 || *app.CPU.UsageCoreNanoSeconds == 0 || *app.Memory.WorkingSetBytes == 0 ||
		*app.Memory.RSSBytes > *app.Memory.WorkingSetBytes || *app.Memory.WorkingSetBytes > *app.Memory.UsageBytes || app.Rootfs == nil {
		t.Errorf("container stats: %+v %+v %+v", app.CPU, app.Memory, app.Rootfs)
	}
	if *app.Memory.WorkingSetBytes > 128<<20 || *app.CPU.UsageNanoCores > 100e6 {
		t.Errorf("container above its requests: %d bytes, %d nanocores", *app.Memory.WorkingSetBytes, *app.CPU.UsageNanoCores)
	}
	n := s.Node
	if *n.Memory.AvailableBytes+*n.Memory.WorkingSetBytes != 32<<30 || *n.Fs.AvailableBytes+*n.Fs.UsedBytes != *n.Fs.CapacityBytes ||
		*n.Fs.CapacityBytes != 100<<30 || *n.CPU.UsageNanoCores <= *app.CPU.UsageNanoCores {
		t.Errorf("node stats: %+v %+v %+v", n.CPU, n.Memory, n.Fs)
	}

	var cm statsapi.Summary
	if _, body := get(t, k, "/stats/summary?only_cpu_and_memory=true"); json.Unmarshal([]byte(body), &cm) != nil {
		t.Fatal(body)
	}
	if cm.Node.Fs != nil || len(cm.Pods) != 1 || cm.Pods[0].Containers[0].Rootfs != nil || cm.Pods[0].Containers[0].CPU == nil {
		t.Errorf("only_cpu_and_memory: %+v", cm)
	}
}

// scrape parses path's Prometheus text.
func scrape(t *testing.T, k *Kubelet, path string) map[string]*familyValues {
	t.Helper()
	resp, body := get(t, k, path)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("%s: content type %q", path, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v\n%s", path, err, body)
	}
	out := map[string]*familyValues{}
	for name, f := range families {
		fv := &familyValues{help: f.GetHelp(), values: map[string]float64{}}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			fv.values[strings.Join(labels, ",")] = v
		}
		out[name] = fv
	}
	return out
}

type familyValues struct {
	help   string
	values map[string]float64 // by "name=value,..." labels
}

func TestHandlerMetrics(t *testing.T) {
	k := newTestKubelet(t)
	m := scrape(t, k, "/metrics")
	if f := m["kubelet_running_pods"]; f == nil || f.values[""] != 1 || f.help != "[ALPHA] Number of pods that have a running pod sandbox" {
		t.Errorf("kubelet_running_pods: %+v", f)
	}
	if f := m["kubelet_node_name"]; f == nil || f.values["node=node-1"] != 1 {
		t.Errorf("kubelet_node_name: %+v", f)
	}
	if f := m["kubelet_running_containers"]; f == nil || f.values["container_state=running"] != 1 || f.values["container_state=exited"] != 1 {
		t.Errorf("kubelet_running_containers: %+v", f)
	}
	if f := m["kubelet_started_containers_total"]; f == nil || f.values["container_type=container"] != 2 {
		t.Errorf("kubelet_started_containers_total: %+v", f)
	}

	r := scrape(t, k, "/metrics/resource")
	if f := r["container_cpu_usage_seconds_total"]; f == nil || f.values["container=app,namespace=default,pod=web"] <= 0 || len(f.values) != 1 {
		t.Errorf("container_cpu_usage_seconds_total: %+v", f)
	}
	if f := r["resource_scrape_error"]; f == nil || f.values[""] != 0 {
		t.Errorf("resource_scrape_error: %+v", f)
	}
	if r["node_memory_working_set_bytes"] == nil || r["pod_memory_working_set_bytes"] == nil {
		t.Errorf("node or pod memory missing: %v", r)
	}

	c := scrape(t, k, "/metrics/cadvisor")
	if f := c["machine_cpu_cores"]; f == nil || len(f.values) != 1 {
		t.Errorf("machine_cpu_cores: %+v", f)
	}
	ws := c["container_memory_working_set_bytes"]
	if ws == nil || len(ws.values) != 2 { // the root cgroup and app
		t.Errorf("container_memory_working_set_bytes: %+v", ws)
	}

	p := scrape(t, k, "/metrics/probes")
	probes := p["prober_probe_total"]
	if probes == nil || len(probes.values) != 1 || p["process_start_time_seconds"] == nil {
		t.Fatalf("probes: %+v", p)
	}
	for labels, v := range probes.values {
		if !strings.Contains(labels, "probe_type=Readiness,result=successful") || v != 7 {
			t.Errorf("prober_probe_total{%s} %v, want 7 successful readiness probes", labels, v)
		}
	}
}

func TestHandlerContainerLogs(t *testing.T) {
	k := newTestKubelet(t)
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/containerLogs/default/web/app", http.StatusOK, "hello\nworld\n"},
		{"/containerLogs/default/web/app?tailLines=1", http.StatusOK, "world\n"},
		{"/containerLogs/default/web/app?tail=1", http.StatusOK, "world\n"},
		{"/containerLogs/default/web/app?limitBytes=3", http.StatusOK, "hel"},
		{"/containerLogs/default/web/app?tailLines=x", http.StatusBadRequest, `{"message": "Unable to decode query."}`},
		{"/containerLogs/default/web/app?tailLines=-1", http.StatusUnprocessableEntity, `{"message": "Invalid request."}`},
		{"/containerLogs/default/web/app?previous=true", http.StatusBadRequest, `previous terminated container "app" in pod "web" not found`},
		{"/containerLogs/default/web/nope", http.StatusNotFound, `container "nope" not found in pod "web"`},
		{"/containerLogs/default/other/app", http.StatusNotFound, `pod "other" does not exist`}, // on node-2
	} {
		if resp, body := get(t, k, tc.path); resp.StatusCode != tc.code || body != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
	}
}

func TestLogRun(t *testing.T) {
	term := &corev1.ContainerStateTerminated{ExitCode: 1}
	for _, tc := range []struct {
		name     string
		status   corev1.ContainerStatus
		previous bool
		run      int32
		err      string
	}{
		{"running", corev1.ContainerStatus{RestartCount: 2, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, false, 2, ""},
		{"running, previous", corev1.ContainerStatus{RestartCount: 2, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			LastTerminationState: corev1.ContainerState{Terminated: term}}, true, 1, ""},
		{"crash loop", corev1.ContainerStatus{RestartCount: 2, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: term}}, false, 2, ""},
		{"pull", corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}, false, 0,
			`container "app" in pod "p" is waiting to start: trying and failing to pull image`},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{tc.status}}}
		pod.Status.ContainerStatuses[0].Name = "app"
		run, err := logRun(pod, "app", tc.previous)
		if run != tc.run || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("%s: %d %v, want %d %q", tc.name, run, err, tc.run, tc.err)
		}
	}
}
