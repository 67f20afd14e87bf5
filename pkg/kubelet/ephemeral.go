package kubelet

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// stepEphemeral moves the ephemeral containers of a pod (what kubectl
// debug adds) as the kubelet does: each starts once added, initialized pod
// or not; it is never restarted and never ready; it runs until its
// behaviour ends it (a command that exits, the end of its attached
// session) or the pod ends. p is the status being built; pull, event and
// due are step's.
func (k *Kubelet) stepEphemeral(ctx context.Context, pod, p *corev1.Pod, now time.Time, pull func(corev1.Container), event eventFunc, due func(time.Time)) {
	for _, ec := range pod.Spec.EphemeralContainers {
		c := corev1.Container(ec.EphemeralContainerCommon)
		b := k.behaviourOf(ctx, pod, c)
		run := fmt.Sprintf("%s/%s/0", pod.UID, c.Name)
		i := slices.IndexFunc(p.Status.EphemeralContainerStatuses, func(s corev1.ContainerStatus) bool { return s.Name == c.Name })
		if i < 0 {
			s := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
			if b.pullFails {
				s.State = failPull(c, event)
				p.Status.EphemeralContainerStatuses = append(p.Status.EphemeralContainerStatuses, s)
				due(now.Add(b.backoff))
				continue
			}
			pull(c)
			k.begin(pod, c, &s, now, b.logs, event)
			p.Status.EphemeralContainerStatuses = append(p.Status.EphemeralContainerStatuses, s)
			i = len(p.Status.EphemeralContainerStatuses) - 1
		}
		s := &p.Status.EphemeralContainerStatuses[i]
		if w := s.State.Waiting; w != nil && w.Reason == "ErrImagePull" {
			s.State = backOffPull(c, event)
			continue
		}
		if s.State.Running == nil {
			continue
		}
		if code, ended := k.endedWith(pod.UID, c.Name, 0); b.interactive && ended {
			b.exits, b.exitCode, b.exitAfter = true, code, 0 // its attached session ended it
		}
		if !b.exits {
			continue
		}
		if exitAt := k.when(run, s.State.Running.StartedAt.Time).Add(b.exitAfter); now.Before(exitAt) {
			due(exitAt)
			continue
		}
		k.config.Logs.End(pod.UID, c.Name, 0)
		s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: b.exitCode, Reason: b.terminatedReason(),
			StartedAt: s.State.Running.StartedAt, FinishedAt: metav1.NewTime(now), ContainerID: s.ContainerID}}
	}
}
