package kubelet

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Annotations a pod carries to choose how its containers behave. Each takes
// an optional ".<container>" suffix to apply to one container only; the
// suffixed key wins over the plain one.
const (
	// AnnotationStartDelay: how long containers stay in ContainerCreating
	// (a Go duration, "2s").
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
	logs                   []string
	backoff                time.Duration
}

func annotation(pod *corev1.Pod, key, container string) (string, bool) {
	if v, ok := pod.Annotations[key+"."+container]; ok {
		return v, true
	}
	v, ok := pod.Annotations[key]
	return v, ok
}

// behaviourOf is a container's behaviour: the defaults, then the matching
// rules in order, then the pod's annotations (values that do not parse are
// ignored).
func behaviourOf(pod *corev1.Pod, c corev1.Container, rules []Rule) behaviour {
	b := behaviour{backoff: time.Second, logs: defaultLines(pod, c)}
	for _, r := range rules {
		if r.Match.matches(pod, c) {
			r.Behaviour.apply(&b)
		}
	}
	duration := func(key string, into *time.Duration) {
		if v, ok := annotation(pod, key, c.Name); ok {
			if d, err := time.ParseDuration(v); err == nil && d >= 0 {
				*into = d
			}
		}
	}
	duration(AnnotationStartDelay, &b.startDelay)
	duration(AnnotationReadyDelay, &b.readyDelay)
	duration(AnnotationExitAfter, &b.exitAfter)
	duration(AnnotationRestartBackoff, &b.backoff)
	if c.ReadinessProbe != nil {
		if d := time.Duration(c.ReadinessProbe.InitialDelaySeconds) * time.Second; d > b.readyDelay {
			b.readyDelay = d
		}
	}
	if v, _ := annotation(pod, AnnotationNeverReady, c.Name); v == "true" {
		b.neverReady = true
	}
	if v, ok := annotation(pod, AnnotationExitCode, c.Name); ok {
		if code, err := strconv.ParseInt(v, 10, 32); err == nil {
			b.exits, b.exitCode = true, int32(code)
		}
	}
	if v, _ := annotation(pod, AnnotationOOMKilled, c.Name); v == "true" {
		b.exits, b.oomKilled, b.exitCode = true, true, 137
	}
	if v, _ := annotation(pod, AnnotationImagePull, c.Name); v == "fail" {
		b.pullFails = true
	}
	if v, ok := annotation(pod, AnnotationLogs, c.Name); ok {
		b.logs = strings.Split(strings.TrimSuffix(v, "\n"), "\n")
	}
	return b
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
