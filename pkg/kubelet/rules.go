package kubelet

import (
	"fmt"
	"os"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
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
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return f, fmt.Errorf("%s: %v", name, err)
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
	}
	for i, r := range f.PodBehaviours {
		if _, err := labels.Parse(r.Match.Labels); err != nil {
			return fmt.Errorf("podBehaviours[%d].match.labels: %v", i, err)
		}
		if _, err := path.Match(r.Match.Image, ""); err != nil {
			return fmt.Errorf("podBehaviours[%d].match.image: %v", i, err)
		}
		if p := r.Behaviour.ImagePull; p != "" && p != "fail" {
			return fmt.Errorf("podBehaviours[%d].behaviour.imagePull: %q is not \"fail\"", i, p)
		}
	}
	return nil
}

func (m Match) matches(pod *corev1.Pod, c corev1.Container) bool {
	if m.Namespace != "" && m.Namespace != pod.Namespace || m.Container != "" && m.Container != c.Name {
		return false
	}
	if m.Image != "" {
		if ok, _ := path.Match(m.Image, c.Image); !ok {
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

// honorsGracePeriod reports whether a deleted pod waits out its grace
// period: by annotation, or by a rule matching one of its containers.
func honorsGracePeriod(pod *corev1.Pod, rules []Rule) bool {
	if v, ok := pod.Annotations[AnnotationGracePeriod]; ok {
		return v == "true"
	}
	honor := false
	for _, r := range rules {
		if r.Behaviour.HonorGracePeriod == nil {
			continue
		}
		for _, c := range pod.Spec.Containers {
			if r.Match.matches(pod, c) {
				honor = *r.Behaviour.HonorGracePeriod
			}
		}
	}
	return honor
}

// apply sets the fields the rule sets.
func (r Behaviour) apply(b *behaviour) {
	if r.StartDelay != nil {
		b.startDelay = r.StartDelay.Duration
	}
	if r.ReadyDelay != nil {
		b.readyDelay = r.ReadyDelay.Duration
	}
	if r.NeverReady != nil {
		b.neverReady = *r.NeverReady
	}
	if r.ExitCode != nil {
		b.exits, b.exitCode = true, *r.ExitCode
	}
	if r.ExitAfter != nil {
		b.exitAfter = r.ExitAfter.Duration
	}
	if r.OOMKilled != nil && *r.OOMKilled {
		b.exits, b.oomKilled, b.exitCode = true, true, 137
	}
	if r.ImagePull == "fail" {
		b.pullFails = true
	}
	if r.Logs != nil {
		b.logs = r.Logs
	}
	if r.RestartBackoff != nil {
		b.backoff = r.RestartBackoff.Duration
	}
}
