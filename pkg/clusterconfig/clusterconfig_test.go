package clusterconfig

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// rule is a rule whose behaviour is b and match everything.
func rule(b Behaviour) Rule { return Rule{Behaviour: b} }

// node is a node named name with the fields of with applied.
func node(name string, with ...func(*NodeSpec)) NodeSpec {
	n := NodeSpec{Name: name}
	for _, w := range with {
		w(&n)
	}
	return n
}

func withDevices(d ...Device) func(*NodeSpec) {
	return func(n *NodeSpec) { n.Devices = d }
}

// dns1123Subdomain is apimachinery's IsDNS1123Subdomain message for a name
// that is not a lowercase RFC 1123 subdomain.
const dns1123Subdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', " +
	"and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
	`'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`

// Every way a file can be wrong, each with its exact message; the first
// error found is the one reported.
func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		file File
		want string
	}{
		{"negative time scale", File{TimeScale: -0.5}, "timeScale: -0.5 is not between 0 and 100"},
		{"time scale above the maximum", File{TimeScale: 100.5}, "timeScale: 100.5 is not between 0 and 100"},
		{"251 nodes", File{Nodes: DefaultNodes(251)}, "nodes: 251 nodes, at most 250"},
		{"node without a name", File{Nodes: []NodeSpec{node("node-1"), node("")}}, "nodes[1]: name is required"},
		{"upper case node name", File{Nodes: []NodeSpec{node("Node_1")}}, `nodes[0].name: "Node_1": ` + dns1123Subdomain},
		{"node name ending in a dash", File{Nodes: []NodeSpec{node("node-")}}, `nodes[0].name: "node-": ` + dns1123Subdomain},
		{"node name too long", File{Nodes: []NodeSpec{node(strings.Repeat("a", 254))}},
			`nodes[0].name: "` + strings.Repeat("a", 254) + `": must be no more than 253 characters`},
		{"duplicate node", File{Nodes: []NodeSpec{node("a"), node("b"), node("a")}}, `nodes[2]: node "a" appears twice`},
		{"negative device count", File{Nodes: []NodeSpec{node("node-1", withDevices(Device{Driver: "gpu.example.com", Name: "gpu", Count: -1}))}},
			"nodes[0] (node-1): devices[0].count: -1 is not between 0 and 128"},
		{"device count above a slice's", File{Nodes: []NodeSpec{node("node-1", withDevices(
			Device{Driver: "gpu.example.com", Name: "gpu", Count: 2}, Device{Driver: "gpu.example.com", Name: "big", Count: 129}))}},
			"nodes[0] (node-1): devices[1].count: 129 is not between 0 and 128"},
		{"more devices of one driver than a slice holds", File{Nodes: []NodeSpec{node("node-1", withDevices(
			Device{Driver: "gpu.example.com", Name: "a", Count: 100}, Device{Driver: "gpu.example.com", Name: "b", Count: 29}))}},
			`nodes[0] (node-1): devices of driver "gpu.example.com": spec.devices: Too many: 129: must have at most 128 items`},
		{"static pod without a name", File{Nodes: []NodeSpec{node("node-1", func(n *NodeSpec) {
			n.StaticPods = []corev1.Pod{{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}}
		})}}, "nodes[0].staticPods[0]: a name and containers are required"},
		{"static pod without containers", File{Nodes: []NodeSpec{node("node-1"), node("node-2", func(n *NodeSpec) {
			n.StaticPods = []corev1.Pod{
				{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}},
				{ObjectMeta: metav1.ObjectMeta{Name: "empty"}},
			}
		})}}, "nodes[1].staticPods[1]: a name and containers are required"},
		{"bad label selector", File{PodBehaviours: []Rule{{Match: Match{Labels: "app=web"}}, {Match: Match{Labels: "app in (web"}}}},
			"podBehaviours[1].match.labels: unable to parse requirement: found '', expected: ',' or ')'"},
		{"bad image glob", File{PodBehaviours: []Rule{{Match: Match{Image: "nginx:[1"}}}}, "podBehaviours[0].match.image: syntax error in pattern"},
		{"bad name glob", File{PodBehaviours: []Rule{{Match: Match{Name: `web-\`}}}}, "podBehaviours[0].match.name: syntax error in pattern"},
		{"imagePull not fail", File{PodBehaviours: []Rule{rule(Behaviour{ImagePull: "Always"})}},
			`podBehaviours[0].behaviour.imagePull: "Always" is not "fail"`},
		{"bad stdin", File{PodBehaviours: []Rule{rule(Behaviour{Stdin: "echo"}), rule(Behaviour{Stdin: "cat"})}},
			`podBehaviours[1].behaviour.stdin: "cat" is not "echo" or "ignore"`},
		{"empty exec command", File{PodBehaviours: []Rule{rule(Behaviour{Exec: []ExecRule{{Command: "ls"}, {Command: " \t"}}})}},
			"podBehaviours[0].behaviour.exec[1].command: required"},
		{"bad exec stdin", File{PodBehaviours: []Rule{rule(Behaviour{Exec: []ExecRule{{Command: "cat", Stdin: "copy"}}})}},
			`podBehaviours[0].behaviour.exec[0].stdin: "copy" is not "echo" or "ignore"`},
		{"exec exit code above 255", File{PodBehaviours: []Rule{rule(Behaviour{Exec: []ExecRule{{Command: "false", ExitCode: 256}}})}},
			"podBehaviours[0].behaviour.exec[0].exitCode: 256 is not between 0 and 255"},
		{"negative exec exit code", File{PodBehaviours: []Rule{rule(Behaviour{Exec: []ExecRule{{Command: "false", ExitCode: -1}}})}},
			"podBehaviours[0].behaviour.exec[0].exitCode: -1 is not between 0 and 255"},
		{"empty local command", File{PodBehaviours: []Rule{rule(Behaviour{Exec: []ExecRule{{Command: "date", Local: []string{}}}})}},
			"podBehaviours[0].behaviour.exec[0].local: a command is required"},
		{"local command without a program", File{PodBehaviours: []Rule{rule(Behaviour{Exec: []ExecRule{{Command: "date", Local: []string{"", "-u"}}}})}},
			"podBehaviours[0].behaviour.exec[0].local: a command is required"},
		{"port above 65535", File{PodBehaviours: []Rule{rule(Behaviour{PortForward: []PortForward{{Port: 65536, Address: "127.0.0.1:8080"}}})}},
			"podBehaviours[0].behaviour.portForward[0].port: 65536 is not a port"},
		{"negative port", File{PodBehaviours: []Rule{rule(Behaviour{PortForward: []PortForward{{Port: 80, Address: "127.0.0.1:8080"}, {Port: -1, Address: "127.0.0.1:8080"}}})}},
			"podBehaviours[0].behaviour.portForward[1].port: -1 is not a port"},
		{"forward address without a port", File{PodBehaviours: []Rule{rule(Behaviour{PortForward: []PortForward{{Address: "localhost"}}})}},
			`podBehaviours[0].behaviour.portForward[0].address: "localhost": address localhost: missing port in address`},
		{"forward address without a host", File{PodBehaviours: []Rule{rule(Behaviour{PortForward: []PortForward{{Address: ":8080"}}})}},
			`podBehaviours[0].behaviour.portForward[0].address: ":8080" is not host:port`},
		{"forward address with port 0", File{PodBehaviours: []Rule{rule(Behaviour{PortForward: []PortForward{{Address: "127.0.0.1:0"}}})}},
			`podBehaviours[0].behaviour.portForward[0].address: "127.0.0.1:0" is not host:port`},
		{"forward address with a named port", File{PodBehaviours: []Rule{rule(Behaviour{PortForward: []PortForward{{Address: "localhost:http"}}})}},
			`podBehaviours[0].behaviour.portForward[0].address: "localhost:http" is not host:port`},
		{"forward address with an empty address", File{PodBehaviours: []Rule{rule(Behaviour{PortForward: []PortForward{{Port: 80}}})}},
			`podBehaviours[0].behaviour.portForward[0].address: "": missing port in address`},
		// Nodes are checked before rules, and in order.
		{"first error wins", File{TimeScale: 200, Nodes: []NodeSpec{node("")}, PodBehaviours: []Rule{rule(Behaviour{ImagePull: "x"})}},
			"timeScale: 200 is not between 0 and 100"},
		{"nodes before rules", File{Nodes: []NodeSpec{node("a"), node("a")}, PodBehaviours: []Rule{rule(Behaviour{ImagePull: "x"})}},
			`nodes[1]: node "a" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.file.Validate()
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
		})
	}
}

// What the bounds allow passes: the limits themselves, and a file that
// uses every field.
func TestValidateAccepts(t *testing.T) {
	full := File{
		TimeScale: 0.01,
		Nodes: []NodeSpec{
			{
				Name:   "node-1",
				Labels: map[string]string{"disktype": "ssd"},
				Taints: []corev1.Taint{{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}},
				Capacity: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("10"),
				},
				Images: []corev1.ContainerImage{{Names: []string{"nginx:1.27"}, SizeBytes: 1 << 20}},
				Devices: []Device{
					{Driver: "gpu.example.com", Name: "gpu", Count: 128,
						Attributes: map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{"model": {StringValue: ptr.To("t4")}},
						Capacity:   map[resourcev1.QualifiedName]resource.Quantity{"memory": resource.MustParse("16Gi")}},
					{Driver: "nic.example.com", Name: "nic"},
				},
				StaticPods: []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "etcd"},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "etcd", Image: "etcd:3.6"}}}}},
			},
			{Name: "node-2.example.com"},
		},
		PodBehaviours: []Rule{
			{
				Match: Match{Namespace: "default", Name: "web-*", Labels: "app=web,tier!=db", Image: "nginx:*", Container: "app"},
				Behaviour: Behaviour{
					StartDelay: &metav1.Duration{Duration: time.Second}, ReadyDelay: &metav1.Duration{Duration: 2 * time.Second},
					NeverReady: ptr.To(false), ExitCode: ptr.To[int32](3), ExitAfter: &metav1.Duration{Duration: time.Second},
					OOMKilled: ptr.To(false), ImagePull: "fail", Logs: []string{"hello"}, RestartBackoff: &metav1.Duration{Duration: time.Second},
					HonorGracePeriod: ptr.To(true), Stdin: "ignore",
					Exec: []ExecRule{
						{Command: "sh -c *", Stdout: "out", Stderr: "err", ExitCode: 255, Stdin: "echo"},
						{Command: "date", Local: []string{"date", "-u"}},
					},
					PortForward: []PortForward{{Port: 65535, Address: "127.0.0.1:1"}, {Address: "[::1]:65535"}, {Port: 0, Address: "localhost:8080"}},
				},
			},
		},
	}
	for _, tc := range []struct {
		name string
		file File
	}{
		{"empty", File{}},
		{"time scale 100", File{TimeScale: 100}},
		{"250 nodes", File{Nodes: DefaultNodes(250)}},
		{"every field", full},
	} {
		if err := tc.file.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// ReadFile reads strict YAML: an unknown or duplicate field, a wrong type,
// or a file that does not validate is an error naming the file.
func TestReadFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          string // after "<file>: "
	}{
		{"unknown top-level field", "nodes:\n- name: node-1\nnodez: []\n",
			`unknown field "nodez"`},
		{"unknown nested field", "podBehaviours:\n- match:\n    image: nginx\n  behaviour:\n    startDelays: 1s\n",
			`unknown field "podBehaviours[0].behaviour.startDelays"`},
		{"a field in other capitals", "podBehaviours:\n- match:\n    image: nginx\n  behaviour:\n    startdelay: 1s\n",
			`unknown field "podBehaviours[0].behaviour.startdelay"`},
		{"duplicate field", "timeScale: 1\ntimeScale: 2\n",
			`yaml: unmarshal errors:` + "\n" + `  line 2: key "timeScale" already set in map`},
		{"wrong type", "timeScale: fast\n",
			"json: cannot unmarshal string into Go struct field File.timeScale of type float64"},
		{"invalid file", "nodes:\n- name: node-1\n- name: node-1\n", `nodes[1]: node "node-1" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := writeFile(t, tc.content)
			_, err := ReadFile(name)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if want := name + ": " + tc.want; err.Error() != want {
				t.Errorf("error\n got: %s\nwant: %s", err, want)
			}
		})
	}
	name := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := ReadFile(name); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), name) {
		t.Errorf("missing file: %v, want a not-exist error naming it", err)
	}
}

// A valid file reads into the File it describes.
func TestReadFile(t *testing.T) {
	name := writeFile(t, `
timeScale: 0.5
nodes:
- name: node-1
  labels:
    disktype: ssd
  taints:
  - key: dedicated
    value: infra
    effect: NoSchedule
  capacity:
    cpu: "4"
  devices:
  - driver: gpu.example.com
    name: gpu
    count: 2
podBehaviours:
- match:
    labels: app=web
    image: "nginx:*"
  behaviour:
    startDelay: 1500ms
    exitCode: 3
    exec:
    - command: date
      stdout: "Thu Jan  1 00:00:00 UTC 1970\n"
    portForward:
    - port: 80
      address: 127.0.0.1:8080
`)
	got, err := ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	want := File{
		TimeScale: 0.5,
		Nodes: []NodeSpec{{
			Name:     "node-1",
			Labels:   map[string]string{"disktype": "ssd"},
			Taints:   []corev1.Taint{{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}},
			Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")},
			Devices:  []Device{{Driver: "gpu.example.com", Name: "gpu", Count: 2}},
		}},
		PodBehaviours: []Rule{{
			Match: Match{Labels: "app=web", Image: "nginx:*"},
			Behaviour: Behaviour{
				StartDelay:  &metav1.Duration{Duration: 1500 * time.Millisecond},
				ExitCode:    ptr.To[int32](3),
				Exec:        []ExecRule{{Command: "date", Stdout: "Thu Jan  1 00:00:00 UTC 1970\n"}},
				PortForward: []PortForward{{Port: 80, Address: "127.0.0.1:8080"}},
			},
		}},
	}
	// Quantities compare by value, not by their cached string.
	gotCPU, wantCPU := got.Nodes[0].Capacity[corev1.ResourceCPU], want.Nodes[0].Capacity[corev1.ResourceCPU]
	if gotCPU.Cmp(wantCPU) != 0 || len(got.Nodes[0].Capacity) != 1 {
		t.Errorf("capacity %v, want cpu 4", got.Nodes[0].Capacity)
	}
	got.Nodes[0].Capacity, want.Nodes[0].Capacity = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read\n%#v\nwant\n%#v", got, want)
	}
}

func TestMatchMatches(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-7d9f", Labels: map[string]string{"app": "web", "tier": "front"}}}
	app := corev1.Container{Name: "app", Image: "nginx:1.27"}
	sidecar := corev1.Container{Name: "proxy", Image: "registry.example.com/team/envoy:v1"}
	for _, tc := range []struct {
		name      string
		match     Match
		container corev1.Container
		want      bool
	}{
		{"empty match", Match{}, app, true},
		{"namespace", Match{Namespace: "shop"}, app, true},
		{"other namespace", Match{Namespace: "default"}, app, false},
		{"namespace is not a glob", Match{Namespace: "sh*"}, app, false},
		{"name glob", Match{Name: "web-*"}, app, true},
		{"exact name", Match{Name: "web-7d9f"}, app, true},
		{"name glob with ?", Match{Name: "web-7d9?"}, app, true},
		{"other name", Match{Name: "db-*"}, app, false},
		{"name glob is anchored", Match{Name: "web"}, app, false},
		{"bad name glob matches nothing", Match{Name: "[web"}, app, false},
		{"label equality", Match{Labels: "app=web"}, app, true},
		{"labels, all of them", Match{Labels: "app=web,tier!=db"}, app, true},
		{"label mismatch", Match{Labels: "app=web,tier=db"}, app, false},
		{"label exists", Match{Labels: "tier"}, app, true},
		{"label absent", Match{Labels: "!tier"}, app, false},
		{"label set", Match{Labels: "tier in (front,back)"}, app, true},
		{"bad selector matches nothing", Match{Labels: "app in (web"}, app, false},
		{"image glob", Match{Image: "nginx:*"}, app, true},
		{"image glob other container", Match{Image: "nginx:*"}, sidecar, false},
		{"image glob does not cross /", Match{Image: "*envoy*"}, sidecar, false},
		{"image glob with path", Match{Image: "*/team/envoy:*"}, sidecar, true},
		{"exact image", Match{Image: "nginx:1.27"}, app, true},
		{"image is matched as written, not normalized", Match{Image: "docker.io/library/nginx:1.27"}, app, false},
		{"container", Match{Container: "proxy"}, sidecar, true},
		{"other container", Match{Container: "proxy"}, app, false},
		{"every field", Match{Namespace: "shop", Name: "web-*", Labels: "app=web", Image: "nginx:*", Container: "app"}, app, true},
		{"every field but one", Match{Namespace: "shop", Name: "web-*", Labels: "app=web", Image: "nginx:*", Container: "proxy"}, app, false},
	} {
		if got := tc.match.Matches(pod, tc.container); got != tc.want {
			t.Errorf("%s: %+v matches %s/%s container %s (%s): %v, want %v",
				tc.name, tc.match, pod.Namespace, pod.Name, tc.container.Name, tc.container.Image, got, tc.want)
		}
	}
}

func TestLocalExec(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []Rule
		where string
		ok    bool
	}{
		{"no rules", nil, "", false},
		{"no local commands", []Rule{rule(Behaviour{Exec: []ExecRule{{Command: "date", Stdout: "now"}}}), rule(Behaviour{Stdin: "echo"})}, "", false},
		{"the first of several", []Rule{
			rule(Behaviour{Exec: []ExecRule{{Command: "ls"}}}),
			rule(Behaviour{Exec: []ExecRule{{Command: "ls"}, {Command: "date", Local: []string{"date"}}}}),
			rule(Behaviour{Exec: []ExecRule{{Command: "id", Local: []string{"id"}}}}),
		}, "podBehaviours[1].behaviour.exec[1].local", true},
		// An empty (non-nil) list is a local command Validate refuses.
		{"empty list", []Rule{rule(Behaviour{Exec: []ExecRule{{Command: "date", Local: []string{}}}})}, "podBehaviours[0].behaviour.exec[0].local", true},
	} {
		where, ok := LocalExec(tc.rules)
		if where != tc.where || ok != tc.ok {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, where, ok, tc.where, tc.ok)
		}
	}
}

func TestDefaultNodes(t *testing.T) {
	if n := DefaultNodes(0); len(n) != 0 {
		t.Errorf("DefaultNodes(0): %v", n)
	}
	nodes := DefaultNodes(5)
	wantZones := []string{"zone-a", "zone-b", "zone-c", "zone-a", "zone-b"}
	if len(nodes) != 5 {
		t.Fatalf("%d nodes, want 5", len(nodes))
	}
	for i, n := range nodes {
		want := map[string]string{corev1.LabelTopologyRegion: "region-1", corev1.LabelTopologyZone: wantZones[i]}
		if name := "node-" + string(rune('1'+i)); n.Name != name || !reflect.DeepEqual(n.Labels, want) {
			t.Errorf("node %d: %s %v, want %s %v", i, n.Name, n.Labels, name, want)
		}
		if n.Capacity != nil || n.Taints != nil || n.Devices != nil || n.StaticPods != nil || n.Images != nil {
			t.Errorf("node %d: %+v, want only a name and labels", i, n)
		}
	}
	// Each node has labels of its own.
	nodes[0].Labels["x"] = "y"
	if _, ok := nodes[3].Labels["x"]; ok {
		t.Error("nodes share their labels")
	}
	if HostIP(0) != "172.18.0.3" || HostIP(2) != "172.18.0.5" || PodCIDR(2) != "10.244.2.0/24" {
		t.Errorf("addresses: %s %s %s", HostIP(0), HostIP(2), PodCIDR(2))
	}
}

func TestResourceSlices(t *testing.T) {
	model := map[resourcev1.QualifiedName]resourcev1.DeviceAttribute{"model": {StringValue: ptr.To("t4")}}
	spec := NodeSpec{Name: "node-1", Devices: []Device{
		{Driver: "gpu.example.com", Name: "gpu", Count: 3, Attributes: model,
			Capacity: map[resourcev1.QualifiedName]resource.Quantity{"memory": resource.MustParse("16Gi")}},
		{Driver: "nic.example.com", Name: "nic"},
		{Driver: "fpga.example.com", Name: "fpga", Count: 1},
		{Driver: "gpu.example.com", Name: "mig", Count: 2},
		{Driver: "fpga.example.com", Name: "none", Count: 0},
	}}
	slices, err := spec.ResourceSlices()
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		driver  string
		devices []string
	}
	wants := []want{
		{"fpga.example.com", []string{"fpga", "none"}},
		{"gpu.example.com", []string{"gpu-0", "gpu-1", "gpu-2", "mig-0", "mig-1"}},
		{"nic.example.com", []string{"nic"}},
	}
	if len(slices) != len(wants) {
		t.Fatalf("%d slices, want %d", len(slices), len(wants))
	}
	for i, s := range slices {
		w := wants[i]
		var names []string
		for _, d := range s.Spec.Devices {
			names = append(names, d.Name)
		}
		if s.Name != "node-1-"+w.driver || s.Spec.Driver != w.driver || !reflect.DeepEqual(names, w.devices) {
			t.Errorf("slice %d: %s driver %s devices %v; want node-1-%s driver %s devices %v", i, s.Name, s.Spec.Driver, names, w.driver, w.driver, w.devices)
		}
		if s.Spec.Pool != (resourcev1.ResourcePool{Name: "node-1", Generation: 1, ResourceSliceCount: 1}) {
			t.Errorf("slice %s: pool %+v", s.Name, s.Spec.Pool)
		}
		if s.Spec.NodeName == nil || *s.Spec.NodeName != "node-1" || s.Spec.AllNodes != nil || s.Spec.NodeSelector != nil {
			t.Errorf("slice %s: not the node's own", s.Name)
		}
	}
	gpu := slices[1].Spec.Devices[1]
	if m := gpu.Capacity["memory"].Value; m.Cmp(resource.MustParse("16Gi")) != 0 || len(gpu.Capacity) != 1 {
		t.Errorf("gpu-1 capacity %v", gpu.Capacity)
	}
	if a := gpu.Attributes["model"]; a.StringValue == nil || *a.StringValue != "t4" || len(gpu.Attributes) != 1 {
		t.Errorf("gpu-1 attributes %v", gpu.Attributes)
	}
	if d := slices[1].Spec.Devices[3]; d.Attributes != nil || d.Capacity != nil {
		t.Errorf("mig-0: %+v, want no attributes or capacity", d)
	}
	// Each device has an attribute map of its own.
	model["extra"] = resourcev1.DeviceAttribute{BoolValue: ptr.To(true)}
	slices[1].Spec.Devices[0].Attributes["other"] = resourcev1.DeviceAttribute{IntValue: ptr.To[int64](1)}
	if len(slices[1].Spec.Devices[1].Attributes) != 1 {
		t.Errorf("devices share attributes with the spec or each other: %v", slices[1].Spec.Devices[1].Attributes)
	}

	if s, err := (NodeSpec{Name: "node-2"}).ResourceSlices(); err != nil || len(s) != 0 {
		t.Errorf("node without devices: %v, %v", s, err)
	}
	bad := NodeSpec{Name: "node-3", Devices: []Device{{Driver: "gpu.example.com", Name: "gpu", Count: 129}}}
	if _, err := bad.ResourceSlices(); err == nil || err.Error() != "devices[0].count: 129 is not between 0 and 128" {
		t.Errorf("count 129: %v", err)
	}
}
