// Package clusterconfig is the format of the simulated cluster's
// configuration: the nodes (their labels, capacity, images, devices and
// static pods, and the addresses they are numbered from) and the pod
// behaviour rules, as a server configuration file, `--load`-ed reset and
// the admin API carry them. It reads and checks them; the simulated
// kubelet and the node registration act on them.
package clusterconfig

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// File is the simulated cluster part of a server configuration file:
// the nodes, and pod behaviours chosen by rules instead of annotations.
type File struct {
	Nodes         []NodeSpec `json:"nodes,omitempty"`
	PodBehaviours []Rule     `json:"podBehaviours,omitempty"`
	// TimeScale multiplies every simulated duration (0: unset, as 1).
	TimeScale float64 `json:"timeScale,omitempty"`
}

// Rule gives the containers it matches a behaviour. Rules apply in order
// (a later one overrides an earlier one field by field); a pod's
// mockernetes.io/ annotations override them all.
type Rule struct {
	Match     Match     `json:"match"`
	Behaviour Behaviour `json:"behaviour"`
}

// Match selects containers; empty fields match everything.
type Match struct {
	Namespace string `json:"namespace,omitempty"`
	// Name is a glob on the pod's name ("db-*").
	Name string `json:"name,omitempty"`
	// Labels is a label selector on the pod ("app=web,tier!=db").
	Labels string `json:"labels,omitempty"`
	// Image is a glob on the container image ("nginx:*", "*/worker*").
	Image string `json:"image,omitempty"`
	// Container is the container's name.
	Container string `json:"container,omitempty"`
}

// Behaviour is the annotations' behaviours as configuration.
type Behaviour struct {
	StartDelay     *metav1.Duration `json:"startDelay,omitempty"`
	ReadyDelay     *metav1.Duration `json:"readyDelay,omitempty"`
	NeverReady     *bool            `json:"neverReady,omitempty"`
	ExitCode       *int32           `json:"exitCode,omitempty"`
	ExitAfter      *metav1.Duration `json:"exitAfter,omitempty"`
	OOMKilled      *bool            `json:"oomKilled,omitempty"`
	ImagePull      string           `json:"imagePull,omitempty"`
	Logs           []string         `json:"logs,omitempty"`
	RestartBackoff *metav1.Duration `json:"restartBackoff,omitempty"`
	// HonorGracePeriod keeps deleted pods until their grace period ends
	// (pod-wide: it applies when a rule matches any of the pod's containers).
	HonorGracePeriod *bool `json:"honorGracePeriod,omitempty"`
	// Exec answers commands run in the container (kubectl exec); the last
	// entry that matches, of the last rule that has one, answers.
	Exec []ExecRule `json:"exec,omitempty"`
	// Stdin is what the container does with what an attached client
	// writes to its stdin: "echo" it to stdout, or "ignore" it (default).
	Stdin string `json:"stdin,omitempty"`
	// PortForward sends connections to the container's ports (kubectl
	// port-forward, pods/proxy, services/proxy) to addresses a test
	// listens on.
	PortForward []PortForward `json:"portForward,omitempty"`
}

// ExecRule answers a command run in a container.
type ExecRule struct {
	// Command is the command's words joined by spaces, exactly, or a glob
	// in which * matches any text and ? one character ("sh -c *").
	Command string `json:"command"`
	Stdout  string `json:"stdout,omitempty"`
	Stderr  string `json:"stderr,omitempty"`
	// ExitCode is the command's exit status.
	ExitCode int32 `json:"exitCode,omitempty"`
	// Stdin "echo" copies what the client sends to stdout, after Stdout,
	// until the client closes it.
	Stdin string `json:"stdin,omitempty"`
	// Local runs this command on the server's machine instead, with the
	// exec's streams and exit status; only a server started with
	// --allow-local-exec accepts such rules.
	Local []string `json:"local,omitempty"`
}

// PortForward sends a container port's connections to Address.
type PortForward struct {
	// Port is the pod's port (0: every port).
	Port int32 `json:"port,omitempty"`
	// Address is where connections go ("127.0.0.1:8080"); addresses the
	// simulation made up are refused.
	Address string `json:"address"`
}

// MaxTimeScale bounds the time scale (slow motion up to 100×).
const MaxTimeScale = 100

// ReadFile reads and checks a configuration file.
func ReadFile(name string) (File, error) {
	var f File
	data, err := os.ReadFile(name)
	if err != nil {
		return f, err
	}
	// Keys match case-sensitively, as the API server's strict decoding
	// matches them: Go's JSON decoder would take `startdelay` for
	// `startDelay`.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return f, fmt.Errorf("%s: %v", name, err)
	}
	strict, err := kjson.UnmarshalStrict(js, &f, kjson.DisallowUnknownFields)
	if err != nil {
		return f, fmt.Errorf("%s: %v", name, err)
	}
	if len(strict) > 0 {
		return f, fmt.Errorf("%s: %v", name, errors.Join(strict...))
	}
	if err := f.Validate(); err != nil {
		return f, fmt.Errorf("%s: %v", name, err)
	}
	return f, nil
}

// Validate checks node names and rules.
func (f File) Validate() error {
	if f.TimeScale < 0 || f.TimeScale > MaxTimeScale {
		return fmt.Errorf("timeScale: %v is not between 0 and %v", f.TimeScale, MaxTimeScale)
	}
	if len(f.Nodes) > 250 {
		return fmt.Errorf("nodes: %d nodes, at most 250", len(f.Nodes))
	}
	seen := map[string]bool{}
	for i, n := range f.Nodes {
		if n.Name == "" {
			return fmt.Errorf("nodes[%d]: name is required", i)
		}
		if errs := validation.IsDNS1123Subdomain(n.Name); len(errs) > 0 {
			return fmt.Errorf("nodes[%d].name: %q: %s", i, n.Name, strings.Join(errs, "; "))
		}
		if seen[n.Name] {
			return fmt.Errorf("nodes[%d]: node %q appears twice", i, n.Name)
		}
		seen[n.Name] = true
		if err := n.validateDevices(); err != nil {
			return fmt.Errorf("nodes[%d] (%s): %v", i, n.Name, err)
		}
		for j, p := range n.StaticPods {
			if p.Name == "" || len(p.Spec.Containers) == 0 {
				return fmt.Errorf("nodes[%d].staticPods[%d]: a name and containers are required", i, j)
			}
		}
	}
	for i, r := range f.PodBehaviours {
		if _, err := labels.Parse(r.Match.Labels); err != nil {
			return fmt.Errorf("podBehaviours[%d].match.labels: %v", i, err)
		}
		if _, err := path.Match(r.Match.Image, ""); err != nil {
			return fmt.Errorf("podBehaviours[%d].match.image: %v", i, err)
		}
		if _, err := path.Match(r.Match.Name, ""); err != nil {
			return fmt.Errorf("podBehaviours[%d].match.name: %v", i, err)
		}
		if p := r.Behaviour.ImagePull; p != "" && p != "fail" {
			return fmt.Errorf("podBehaviours[%d].behaviour.imagePull: %q is not \"fail\"", i, p)
		}
		if err := r.Behaviour.validateSessions(); err != nil {
			return fmt.Errorf("podBehaviours[%d].behaviour.%v", i, err)
		}
	}
	return nil
}

// validateSessions checks the exec, stdin and port-forward fields.
func (b Behaviour) validateSessions() error {
	if b.Stdin != "" && b.Stdin != "echo" && b.Stdin != "ignore" {
		return fmt.Errorf("stdin: %q is not \"echo\" or \"ignore\"", b.Stdin)
	}
	for i, e := range b.Exec {
		switch {
		case strings.TrimSpace(e.Command) == "":
			return fmt.Errorf("exec[%d].command: required", i)
		case e.Stdin != "" && e.Stdin != "echo" && e.Stdin != "ignore":
			return fmt.Errorf("exec[%d].stdin: %q is not \"echo\" or \"ignore\"", i, e.Stdin)
		case e.ExitCode < 0 || e.ExitCode > 255:
			return fmt.Errorf("exec[%d].exitCode: %d is not between 0 and 255", i, e.ExitCode)
		case e.Local != nil && (len(e.Local) == 0 || e.Local[0] == ""):
			return fmt.Errorf("exec[%d].local: a command is required", i)
		}
	}
	for i, f := range b.PortForward {
		if f.Port < 0 || f.Port > 65535 {
			return fmt.Errorf("portForward[%d].port: %d is not a port", i, f.Port)
		}
		if err := ForwardAddress(f.Address); err != nil {
			return fmt.Errorf("portForward[%d].address: %v", i, err)
		}
	}
	return nil
}

// ForwardAddress checks a port-forward target: host:port.
func ForwardAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return fmt.Errorf("%q is not host:port", addr)
	}
	return nil
}

// LocalExec reports the first rule that runs a local command, by its
// place in the file.
func LocalExec(rules []Rule) (string, bool) {
	for i, r := range rules {
		for j, e := range r.Behaviour.Exec {
			if e.Local != nil {
				return fmt.Sprintf("podBehaviours[%d].behaviour.exec[%d].local", i, j), true
			}
		}
	}
	return "", false
}

// Matches reports whether the rule's match selects container c of pod.
func (m Match) Matches(pod *corev1.Pod, c corev1.Container) bool {
	if m.Namespace != "" && m.Namespace != pod.Namespace || m.Container != "" && m.Container != c.Name {
		return false
	}
	if m.Image != "" {
		if ok, _ := path.Match(m.Image, c.Image); !ok {
			return false
		}
	}
	if m.Name != "" {
		if ok, _ := path.Match(m.Name, pod.Name); !ok {
			return false
		}
	}
	if m.Labels != "" {
		sel, err := labels.Parse(m.Labels)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			return false
		}
	}
	return true
}
