package kubelet

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
)

// Annotations a pod carries to choose how its containers behave. Each takes
// an optional ".<container>" suffix to apply to one container only; the
// suffixed key wins over the plain one.
const (
	// AnnotationStartDelay: how long containers stay in ContainerCreating
	// (a Go duration, "2s"); an init container, from its turn.
	AnnotationStartDelay = "mockernetes.io/start-delay"
	// AnnotationReadyDelay: how long after starting a container becomes ready.
	AnnotationReadyDelay = "mockernetes.io/ready-delay"
	// AnnotationNeverReady: "true" keeps the containers unready.
	AnnotationNeverReady = "mockernetes.io/never-ready"
	// AnnotationExitCode: the container exits with this code...
	AnnotationExitCode = "mockernetes.io/exit-code"
	// AnnotationExitAfter: ...this long after it started (default 0s).
	AnnotationExitAfter = "mockernetes.io/exit-after"
	// AnnotationOOMKilled: "true" ends the container as OOMKilled (137).
	AnnotationOOMKilled = "mockernetes.io/oom-killed"
	// AnnotationImagePull: "fail" makes the image pull fail (ErrImagePull,
	// then ImagePullBackOff).
	AnnotationImagePull = "mockernetes.io/image-pull"
	// AnnotationLogs: the lines the container prints, newline-separated.
	AnnotationLogs = "mockernetes.io/logs"
	// AnnotationRestartBackoff: the first crash-loop back-off (default 1s;
	// the kubelet's is 10s), doubling up to 5 minutes.
	AnnotationRestartBackoff = "mockernetes.io/restart-backoff"
	// AnnotationGracePeriod: "true" makes a deleted pod go only when its
	// grace period ends, as containers that ignore SIGTERM do (by default
	// it goes at once).
	AnnotationGracePeriod = "mockernetes.io/honor-grace-period"
	// AnnotationStdin: what the container does with an attached client's
	// stdin: "echo" or "ignore".
	AnnotationStdin = "mockernetes.io/stdin"
	// AnnotationPortForward: where connections to the pod's ports go,
	// "PORT=HOST:PORT" pairs separated by commas, or one HOST:PORT for
	// every port ("8080=127.0.0.1:18080").
	AnnotationPortForward = "mockernetes.io/port-forward"
)

// behaviour is what one container does.
type behaviour struct {
	startDelay, readyDelay time.Duration
	neverReady             bool
	exits                  bool
	exitCode               int32
	exitAfter              time.Duration
	oomKilled              bool
	pullFails              bool
	logs                   []printed
	backoff                time.Duration
	// forever: the command runs until stopped (sleep infinity), also in
	// a Job's pod.
	forever bool
	// interactive: the container reads its stdin (a shell with no
	// script, or a command the simulation does not know, with stdin
	// open): it runs until its attached session ends.
	interactive bool
	// shell: the container's command is a shell reading commands from
	// its stdin, played by the simulated shell when attached.
	shell    bool
	exec     []clusterconfig.ExecRule
	stdin    string
	forwards []clusterconfig.PortForward
}

// scaled is b with its durations multiplied by the time scale (1: as
// given).
func (b behaviour) scaled(scale float64) behaviour {
	for _, d := range []*time.Duration{&b.startDelay, &b.readyDelay, &b.exitAfter, &b.backoff} {
		*d = scaled(*d, scale)
	}
	if scale > 0 && scale != 1 && b.logs != nil {
		logs := make([]printed, len(b.logs))
		for i, l := range b.logs {
			logs[i] = printed{scaled(l.after, scale), l.text}
		}
		b.logs = logs
	}
	return b
}

// scaled is d under the time scale (0 or 1: d itself).
func scaled(d time.Duration, scale float64) time.Duration {
	if scale <= 0 || scale == 1 {
		return d
	}
	return time.Duration(float64(d) * scale)
}

func annotation(pod *corev1.Pod, key, container string) (string, bool) {
	if v, ok := pod.Annotations[key+"."+container]; ok {
		return v, true
	}
	v, ok := pod.Annotations[key]
	return v, ok
}

// behaviourOf is a container's behaviour: the defaults, then what its
// command does if it is a simple one (parseCommand), then the matching
// rules in order, then the pod's annotations (values that do not parse are
// ignored); a readiness probe's initial delay is the least ready delay.
func behaviourOf(pod *corev1.Pod, c corev1.Container, rules []clusterconfig.Rule) behaviour {
	p, ok := parseCommand(c)
	return behaviourWith(pod, c, rules, p, ok)
}

// behaviourWith is behaviourOf with what the container's command does
// (when ok) known.
func behaviourWith(pod *corev1.Pod, c corev1.Container, rules []clusterconfig.Rule, p program, ok bool) behaviour {
	b := behaviour{backoff: time.Second, logs: printedAtStart(defaultLines(pod, c))}
	if ok {
		b.logs = p.output
		if p.forever {
			b.forever = true
		} else {
			b.exits, b.exitCode, b.exitAfter = true, p.exitCode, p.runs
		}
	} else if c.Stdin {
		// It prints what its session makes it print, nothing by itself.
		b.interactive, b.shell, b.logs = true, readsCommands(c), nil
	}
	for _, r := range rules {
		if r.Match.Matches(pod, c) {
			b.apply(r.Behaviour)
		}
	}
	b.apply(annotated(pod, c))
	if c.ReadinessProbe != nil {
		b.readyDelay = max(b.readyDelay, time.Duration(c.ReadinessProbe.InitialDelaySeconds)*time.Second)
	}
	return b
}

// annotated is what the pod's annotations set for container c, as a rule.
func annotated(pod *corev1.Pod, c corev1.Container) clusterconfig.Behaviour {
	var a clusterconfig.Behaviour
	duration := func(key string) *metav1.Duration {
		if v, ok := annotation(pod, key, c.Name); ok {
			if d, err := time.ParseDuration(v); err == nil && d >= 0 {
				return &metav1.Duration{Duration: d}
			}
		}
		return nil
	}
	a.StartDelay, a.ReadyDelay = duration(AnnotationStartDelay), duration(AnnotationReadyDelay)
	a.ExitAfter, a.RestartBackoff = duration(AnnotationExitAfter), duration(AnnotationRestartBackoff)
	if v, _ := annotation(pod, AnnotationNeverReady, c.Name); v == "true" {
		a.NeverReady = ptr.To(true)
	}
	if v, ok := annotation(pod, AnnotationExitCode, c.Name); ok {
		if code, err := strconv.ParseInt(v, 10, 32); err == nil {
			a.ExitCode = ptr.To(int32(code))
		}
	}
	if v, _ := annotation(pod, AnnotationOOMKilled, c.Name); v == "true" {
		a.OOMKilled = ptr.To(true)
	}
	if v, _ := annotation(pod, AnnotationImagePull, c.Name); v == "fail" {
		a.ImagePull = v
	}
	if v, ok := annotation(pod, AnnotationLogs, c.Name); ok {
		a.Logs = strings.Split(strings.TrimSuffix(v, "\n"), "\n")
	}
	if v, _ := annotation(pod, AnnotationStdin, c.Name); v == "echo" || v == "ignore" {
		a.Stdin = v
	}
	if v, ok := annotation(pod, AnnotationPortForward, c.Name); ok {
		a.PortForward = parseForwards(v)
	}
	return a
}

// parseForwards reads the port-forward annotation; pairs that do not
// parse are ignored.
func parseForwards(v string) []clusterconfig.PortForward {
	var out []clusterconfig.PortForward
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		var f clusterconfig.PortForward
		if port, addr, ok := strings.Cut(item, "="); ok {
			n, err := strconv.ParseInt(port, 10, 32)
			if err != nil || n < 1 || n > 65535 {
				continue
			}
			f = clusterconfig.PortForward{Port: int32(n), Address: addr}
		} else {
			f = clusterconfig.PortForward{Address: item}
		}
		if clusterconfig.ForwardAddress(f.Address) == nil {
			out = append(out, f)
		}
	}
	return out
}

// terminatedReason is the kubelet's reason for a container that exited.
func (b behaviour) terminatedReason() string {
	switch {
	case b.oomKilled:
		return "OOMKilled"
	case b.exitCode == 0:
		return "Completed"
	default:
		return "Error"
	}
}

// backoffFor is the crash-loop back-off before restart number n+1: the
// kubelet's doubling from a base, capped at 5 minutes.
func (b behaviour) backoffFor(restartCount int32) time.Duration {
	d := b.backoff
	for i := int32(0); i < restartCount && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

func backoffMessage(d time.Duration, container string, pod *corev1.Pod) string {
	return fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", d, container, pod.Name, pod.Namespace, pod.UID)
}

// honorsGracePeriod reports whether a deleted pod waits out its grace
// period: by annotation, or by a rule matching one of its containers.
func honorsGracePeriod(pod *corev1.Pod, rules []clusterconfig.Rule) bool {
	if v, ok := pod.Annotations[AnnotationGracePeriod]; ok {
		return v == "true"
	}
	honor := false
	for _, r := range rules {
		if r.Behaviour.HonorGracePeriod == nil {
			continue
		}
		for _, c := range pod.Spec.Containers {
			if r.Match.Matches(pod, c) {
				honor = *r.Behaviour.HonorGracePeriod
			}
		}
	}
	return honor
}

// apply sets the fields the rule r sets.
func (b *behaviour) apply(r clusterconfig.Behaviour) {
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
		b.logs = printedAtStart(r.Logs)
	}
	if r.RestartBackoff != nil {
		b.backoff = r.RestartBackoff.Duration
	}
	b.exec = append(b.exec, r.Exec...)
	if r.Stdin != "" {
		b.stdin = r.Stdin
	}
	b.forwards = append(b.forwards, r.PortForward...)
}
