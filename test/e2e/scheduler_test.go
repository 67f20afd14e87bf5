package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// Three zones of one node each; the node in zone-c has two simulated GPUs
// and an image already pulled.
const schedulerCluster = `nodes:
- name: a1
  labels: {topology.kubernetes.io/zone: zone-a}
  capacity: {cpu: "2", memory: 8Gi, pods: "30"}
- name: b1
  labels: {topology.kubernetes.io/zone: zone-b}
  capacity: {cpu: "2", memory: 8Gi, pods: "30"}
- name: c1
  labels: {topology.kubernetes.io/zone: zone-c}
  capacity: {cpu: "2", memory: 8Gi, pods: "30"}
  images:
  - names: ["registry.example/model-server:1.0"]
    sizeBytes: 2000000000
  devices:
  - driver: gpu.example.com
    name: gpu
    count: 2
    attributes:
      model: {string: a100}
`

// kube-scheduler's placement rules, each checked right after the write
// that triggers it: the server settles on every write, so the scheduler's
// queue, its binding cycles (also those waiting for a volume) and the
// controllers behind them must all be seen by settle.
func TestScheduler(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(file, []byte(schedulerCluster), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startTestServer(t, "--cluster-config", file, "--gateway-api=false", "--settle-on-write")
	c := s.client(t)
	ctx := t.Context()

	t.Run("preferred node affinity", func(t *testing.T) {
		ns := newNamespace(t, c)
		p := pod("preferring", nil)
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 100, Preference: corev1.NodeSelectorTerm{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"zone-b"}}},
			}}},
		}}
		if got := createPod(t, c, ns, p); got.Spec.NodeName != "b1" || !podReady(got) {
			t.Errorf("preferring zone-b: on %q, ready %v", got.Spec.NodeName, podReady(got))
		}
	})

	t.Run("topology spread", func(t *testing.T) {
		ns := newNamespace(t, c)
		d := deployment("spread", "nginx:1.27", 6)
		d.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spread"}},
		}}
		if _, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := podsPerNode(t, c, ns, "app=spread"); fmt.Sprint(got) != "map[a1:2 b1:2 c1:2]" {
			t.Errorf("6 replicas spread over 3 zones: %v", got)
		}
	})

	t.Run("required pod anti-affinity", func(t *testing.T) {
		ns := newNamespace(t, c)
		d := deployment("single", "nginx:1.27", 4)
		d.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				TopologyKey:   corev1.LabelHostname,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "single"}},
			}},
		}}
		if _, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := podsPerNode(t, c, ns, "app=single"); fmt.Sprint(got) != "map[:1 a1:1 b1:1 c1:1]" {
			t.Errorf("one replica per node, the fourth pending: %v", got)
		}
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName="})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("pending pods: %v %v", err, pods)
		}
		const msg = "0/4 nodes are available: 1 node(s) had untolerated taint(s), 3 node(s) didn't match pod anti-affinity rules. preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod."
		if cond := condition(&pods.Items[0], corev1.PodScheduled); cond == nil || cond.Reason != corev1.PodReasonUnschedulable || cond.Message != msg {
			t.Errorf("PodScheduled of the fourth replica: %+v, want message %q", cond, msg)
		}
		events, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedScheduling,involvedObject.name=" + pods.Items[0].Name})
		if err != nil || len(events.Items) == 0 || events.Items[0].Message != msg || events.Items[0].ReportingController != "default-scheduler" {
			t.Errorf("FailedScheduling event: %v %+v", err, events)
		}
	})

	t.Run("preemption", func(t *testing.T) {
		ns := newNamespace(t, c)
		for name, value := range map[string]int32{ns + "-low": 10, ns + "-high": 1000} {
			pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
			if _, err := c.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = c.SchedulingV1().PriorityClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
			})
		}
		greedy := func(name, class string) *corev1.Pod {
			p := pod(name, nil)
			p.Spec.PriorityClassName = class
			p.Spec.NodeSelector = map[string]string{corev1.LabelHostname: "a1"}
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}
			return p
		}
		if low := createPod(t, c, ns, greedy("low", ns+"-low")); low.Spec.NodeName != "a1" || !podReady(low) {
			t.Fatalf("low-priority pod: on %q, ready %v", low.Spec.NodeName, podReady(low))
		}
		high := createPod(t, c, ns, greedy("high", ns+"-high"))
		if high.Spec.NodeName != "a1" || !podReady(high) {
			t.Errorf("high-priority pod: on %q, ready %v, status %+v", high.Spec.NodeName, podReady(high), high.Status)
		}
		if _, err := c.CoreV1().Pods(ns).Get(ctx, "low", metav1.GetOptions{}); err == nil {
			t.Error("the preempted pod is still there")
		}
		events, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Preempted,involvedObject.name=low"})
		if err != nil || len(events.Items) != 1 || !strings.Contains(events.Items[0].Message, "Preempted by pod") {
			t.Errorf("Preempted event: %v %+v", err, events)
		}
	})

	t.Run("scheduling gate", func(t *testing.T) {
		ns := newNamespace(t, c)
		p := pod("gated", nil)
		p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/quota"}}
		got := createPod(t, c, ns, p)
		if cond := condition(got, corev1.PodScheduled); got.Spec.NodeName != "" || cond == nil || cond.Reason != corev1.PodReasonSchedulingGated {
			t.Fatalf("gated pod: on %q, PodScheduled %+v", got.Spec.NodeName, cond)
		}
		got.Spec.SchedulingGates = nil
		if _, err := c.CoreV1().Pods(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		got = getPod(t, c, ns, "gated")
		if got.Spec.NodeName == "" || !podReady(got) {
			t.Errorf("pod after its gate was removed: on %q, ready %v", got.Spec.NodeName, podReady(got))
		}
	})

	t.Run("WaitForFirstConsumer volume", func(t *testing.T) {
		ns := newNamespace(t, c)
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: ptr.To("standard-wffc"),
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
		if _, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.ClaimPending || got.Spec.VolumeName != "" {
			t.Fatalf("claim before its consumer: %v %+v", err, got)
		}
		p := pod("consumer", nil)
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"},
		}}}
		consumer := createPod(t, c, ns, p)
		if consumer.Spec.NodeName == "" || !podReady(consumer) {
			t.Fatalf("consumer: on %q, ready %v", consumer.Spec.NodeName, podReady(consumer))
		}
		got, err = c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.ClaimBound || got.Annotations["volume.kubernetes.io/selected-node"] != consumer.Spec.NodeName {
			t.Fatalf("claim after its consumer was scheduled: %v %+v", err, got)
		}
		pv, err := c.CoreV1().PersistentVolumes().Get(ctx, got.Spec.VolumeName, metav1.GetOptions{})
		if err != nil || pv.Spec.NodeAffinity == nil ||
			fmt.Sprint(pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values) != "["+consumer.Spec.NodeName+"]" {
			t.Errorf("volume on the consumer's node: %v %+v", err, pv)
		}
	})

	t.Run("ResourceClaims from simulated devices", func(t *testing.T) {
		ns := newNamespace(t, c)
		slices, err := c.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{})
		if err != nil || len(slices.Items) != 1 || slices.Items[0].Spec.Driver != "gpu.example.com" ||
			ptr.Deref(slices.Items[0].Spec.NodeName, "") != "c1" || len(slices.Items[0].Spec.Devices) != 2 {
			t.Fatalf("the stand-in driver's ResourceSlices: %v %+v", err, slices)
		}
		request := resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{Name: "gpu", Exactly: &resourcev1.ExactDeviceRequest{
			DeviceClassName: "gpu.example.com",
			Selectors:       []resourcev1.DeviceSelector{{CEL: &resourcev1.CELDeviceSelector{Expression: `device.attributes["gpu.example.com"].model == "a100"`}}},
		}}}}
		claim := &resourcev1.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "gpu"}, Spec: resourcev1.ResourceClaimSpec{Devices: request}}
		if _, err := c.ResourceV1().ResourceClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		template := &resourcev1.ResourceClaimTemplate{ObjectMeta: metav1.ObjectMeta{Name: "gpu"},
			Spec: resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{Devices: request}}}
		if _, err := c.ResourceV1().ResourceClaimTemplates(ns).Create(ctx, template, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		withClaim := func(name string, source corev1.PodResourceClaim) *corev1.Pod {
			p := pod(name, nil)
			source.Name = "gpu"
			p.Spec.ResourceClaims = []corev1.PodResourceClaim{source}
			p.Spec.Containers[0].Resources.Claims = []corev1.ResourceClaim{{Name: "gpu"}}
			return p
		}
		named := createPod(t, c, ns, withClaim("named", corev1.PodResourceClaim{ResourceClaimName: ptr.To("gpu")}))
		templated := createPod(t, c, ns, withClaim("templated", corev1.PodResourceClaim{ResourceClaimTemplateName: ptr.To("gpu")}))
		for _, p := range []*corev1.Pod{named, templated} {
			if p.Spec.NodeName != "c1" || !podReady(p) {
				t.Errorf("%s: on %q, ready %v", p.Name, p.Spec.NodeName, podReady(p))
			}
		}
		claims, err := c.ResourceV1().ResourceClaims(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(claims.Items) != 2 {
			t.Fatalf("claims: %v %+v", err, claims)
		}
		var devices []string
		for _, cl := range claims.Items {
			if cl.Status.Allocation == nil || len(cl.Status.Allocation.Devices.Results) != 1 || len(cl.Status.ReservedFor) != 1 {
				t.Fatalf("claim %s not allocated and reserved: %+v", cl.Name, cl.Status)
			}
			r := cl.Status.Allocation.Devices.Results[0]
			devices = append(devices, r.Driver+"/"+r.Pool+"/"+r.Device)
		}
		sort.Strings(devices)
		if fmt.Sprint(devices) != "[gpu.example.com/c1/gpu-0 gpu.example.com/c1/gpu-1]" {
			t.Errorf("allocated devices: %v", devices)
		}
		if len(templated.Status.ResourceClaimStatuses) != 1 || ptr.Deref(templated.Status.ResourceClaimStatuses[0].ResourceClaimName, "") == "" {
			t.Errorf("templated pod's claim statuses: %+v", templated.Status.ResourceClaimStatuses)
		}
		// No device left: the third waits, as kube-scheduler says.
		third := createPod(t, c, ns, withClaim("third", corev1.PodResourceClaim{ResourceClaimTemplateName: ptr.To("gpu")}))
		if cond := condition(third, corev1.PodScheduled); third.Spec.NodeName != "" || cond == nil || cond.Reason != corev1.PodReasonUnschedulable ||
			!strings.Contains(cond.Message, "cannot allocate all claims") {
			t.Errorf("third claimant: on %q, PodScheduled %+v", third.Spec.NodeName, cond)
		}
	})

	t.Run("reset without the devices", func(t *testing.T) {
		// The baseline has c1's slice; a reset whose c1 has no devices
		// must not keep it (kube-scheduler would allocate devices that
		// are not there).
		control, err := testcontrol.New(s.restConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := control.Reset(ctx, testcontrol.ResetRequest{Nodes: []clusterconfig.NodeSpec{{Name: "c1"}}}); err != nil {
			t.Fatal(err)
		}
		if slices, err := c.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{}); err != nil || len(slices.Items) != 0 {
			t.Errorf("ResourceSlices after a reset without devices: %v %+v", err, slices)
		}
	})
}

// createPod creates p in ns and returns it as it is once the cluster
// settled (the server settles on every write).
func createPod(t *testing.T, c kubernetes.Interface, ns string, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return getPod(t, c, ns, p.Name)
}

func getPod(t *testing.T, c kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := c.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// podsPerNode counts the pods of a selector per node ("" for pending).
func podsPerNode(t *testing.T, c kubernetes.Interface, ns, selector string) map[string]int {
	t.Helper()
	pods, err := c.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" && !podReady(&p) {
			t.Errorf("pod %s on %s is not ready", p.Name, p.Spec.NodeName)
		}
		out[p.Spec.NodeName]++
	}
	return out
}

const binPacking = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 1}]
`

// --scheduler-config takes kube-scheduler's own configuration: a second
// profile packs pods onto one node; bad files and unknown plugins stop the
// server at start with kube-scheduler's error.
func TestSchedulerConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	s := startTestServer(t, "--nodes", "3", "--gateway-api=false", "--settle-on-write", "--scheduler-config", write("packing.yaml", binPacking))
	c := s.client(t)
	nodes, err := c.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: "!node-role.kubernetes.io/control-plane"})
	if err != nil || len(nodes.Items) != 3 {
		t.Fatalf("nodes: %v %+v", err, nodes)
	}
	var zones []string
	for _, n := range nodes.Items {
		zones = append(zones, n.Labels["topology.kubernetes.io/region"]+"/"+n.Labels["topology.kubernetes.io/zone"])
	}
	sort.Strings(zones)
	if fmt.Sprint(zones) != "[region-1/zone-a region-1/zone-b region-1/zone-c]" {
		t.Errorf("--nodes 3 spread over zones: %v", zones)
	}
	ns := newNamespace(t, c)
	for i := range 4 {
		p := pod(fmt.Sprintf("packed-%d", i), map[string]string{"app": "packed"})
		p.Spec.SchedulerName = "bin-packing"
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}
		createPod(t, c, ns, p)
	}
	if got := podsPerNode(t, c, ns, "app=packed"); len(got) != 1 || got[""] != 0 {
		t.Errorf("the bin-packing profile put its pods on one node: %v", got)
	}

	// A reset can bring nodes with devices: their ResourceSlices and
	// DeviceClass come with them; a device the API would refuse is a 400.
	control, err := testcontrol.New(s.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	fpga := clusterconfig.NodeSpec{Name: "fpga-1", Devices: []clusterconfig.Device{{Driver: "fpga.example.com", Name: "fpga"}}}
	if err := control.Reset(t.Context(), testcontrol.ResetRequest{Nodes: []clusterconfig.NodeSpec{fpga}}); err != nil {
		t.Fatal(err)
	}
	slices, err := c.ResourceV1().ResourceSlices().List(t.Context(), metav1.ListOptions{})
	if err != nil || len(slices.Items) != 1 || slices.Items[0].Spec.Pool.Name != "fpga-1" || slices.Items[0].Spec.Devices[0].Name != "fpga" {
		t.Errorf("ResourceSlices after a reset with a device: %v %+v", err, slices)
	}
	if _, err := c.ResourceV1().DeviceClasses().Get(t.Context(), "fpga.example.com", metav1.GetOptions{}); err != nil {
		t.Errorf("DeviceClass of the new driver: %v", err)
	}
	fpga.Devices[0].Name = "Not A Name"
	if err := control.Reset(t.Context(), testcontrol.ResetRequest{Nodes: []clusterconfig.NodeSpec{fpga}}); err == nil || !strings.Contains(err.Error(), "Not A Name") {
		t.Errorf("reset with an invalid device: %v", err)
	}

	for name, tc := range map[string]struct{ config, want string }{
		"unknown field":  {"apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofile: []\n", `unknown field "profile"`},
		"unknown plugin": {"apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- plugins:\n    score:\n      enabled: [{name: NoSuchPlugin}]\n", `"NoSuchPlugin" does not exist`},
		"invalid value":  {"apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nparallelism: -1\n", "parallelism"},
	} {
		out, err := exec.Command(mockernetesBin, "serve", "--port", "0", "--scheduler-config", write(name+".yaml", tc.config)).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) || strings.Count(strings.TrimSpace(string(out)), "\n") > 2 {
			t.Errorf("%s: %v, output %q, want an error naming %s", name, err, out, tc.want)
		}
	}
}

// --controllers=*,-scheduler leaves pods unscheduled, as a cluster without
// a scheduler does.
func TestWithoutScheduler(t *testing.T) {
	s := startTestServer(t, "--controllers=*,-scheduler", "--gateway-api=false", "--settle-on-write")
	c := s.client(t)
	ns := newNamespace(t, c)
	if p := createPod(t, c, ns, pod("waiting", nil)); p.Spec.NodeName != "" || len(p.Status.Conditions) != 0 {
		t.Errorf("a pod with no scheduler: on %q, conditions %+v", p.Spec.NodeName, p.Status.Conditions)
	}
	cs, err := c.CoreV1().ComponentStatuses().Get(t.Context(), "scheduler", metav1.GetOptions{})
	if err != nil || len(cs.Conditions) != 1 || cs.Conditions[0].Status != corev1.ConditionFalse {
		t.Errorf("componentstatus scheduler: %v %+v", err, cs)
	}
}
