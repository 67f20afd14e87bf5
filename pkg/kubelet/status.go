package kubelet

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/kubernetes/pkg/features"
	kubecontainer "k8s.io/kubernetes/pkg/kubelet/container"
	"k8s.io/kubernetes/pkg/kubelet/status"
	kubetypes "k8s.io/kubernetes/pkg/kubelet/types"
)

// derivePodStatus sets the phase, IPs and conditions from the container
// statuses, as the kubelet's generateAPIPodStatus does: the phase by
// getPhase's rules, the conditions by upstream's own generators
// (pkg/kubelet/status), PodScheduled True as the kubelet owns it.
func (k *Kubelet) derivePodStatus(old, p *corev1.Pod) error {
	all := append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
	// A deleted pod whose containers stopped is terminal: Succeeded or
	// Failed whatever its restart policy (a static pod's mirror excepted).
	terminal := old.DeletionTimestamp != nil && !kubetypes.IsStaticPod(old)
	p.Status.Phase = podPhase(old, all, kubecontainer.HasAnyRegularContainerStarted(&old.Spec, p.Status.ContainerStatuses), terminal)
	completed := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	// The sandbox is stopped when the pod has completed.
	sandbox := sandboxed(all)
	if old.Spec.HostNetwork && p.Status.PodIP == "" && p.Status.HostIP != "" {
		p.Status.PodIP, p.Status.PodIPs = p.Status.HostIP, []corev1.PodIP{{IP: p.Status.HostIP}}
	}
	if sandbox && p.Status.PodIP == "" {
		ip, err := k.ips.allocate(old.Spec.NodeName, k.nodes().index[old.Spec.NodeName], refOf(old))
		if err != nil {
			return err
		}
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	}
	switch {
	case completed:
		setCondition(p, corev1.PodReadyToStartContainers, corev1.ConditionFalse, kubetypes.PodSandboxNotReadyReason, kubetypes.PodSandboxNotReadyMsgSandboxNotReady)
	case sandbox:
		setCondition(p, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", "")
	default:
		setCondition(p, corev1.PodReadyToStartContainers, corev1.ConditionFalse, kubetypes.PodSandboxNotReadyReason, kubetypes.PodSandboxNotReadyMsgNoPodSandbox)
	}
	// setCondition keeps the transition times and sets the generation.
	for _, c := range []corev1.PodCondition{
		status.GeneratePodInitializedCondition(old, &old.Status, all, p.Status.Phase),
		status.GeneratePodReadyCondition(old, &old.Status, p.Status.Conditions, all, p.Status.Phase),
		status.GenerateContainersReadyCondition(old, &old.Status, all, p.Status.Phase),
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	} {
		setCondition(p, c.Type, c.Status, c.Reason, c.Message)
	}
	return nil
}

// podPhase is the kubelet's getPhase (pkg/kubelet/kubelet_pods.go), with
// ContainerRestartRules as its feature gate says: init containers first,
// then sidecars and containers.
func podPhase(pod *corev1.Pod, statuses []corev1.ContainerStatus, initialized, terminal bool) corev1.PodPhase {
	restartRules := utilfeature.DefaultFeatureGate.Enabled(features.ContainerRestartRules)
	restartable := func(c corev1.Container, exitCode int32) bool {
		return podutil.ContainerShouldRestart(c, pod.Spec, exitCode)
	}
	pendingInit, pendingSidecars, failedInit, failedInitFinal := 0, 0, 0, 0
	for _, c := range pod.Spec.InitContainers {
		if podutil.IsRestartableInitContainer(&c) {
			continue
		}
		s, ok := podutil.GetContainerStatus(statuses, c.Name)
		switch {
		case !ok || s.State.Running != nil:
			pendingInit++
		case s.State.Terminated != nil || s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			t := s.State.Terminated
			if t == nil {
				t = s.LastTerminationState.Terminated
			}
			if t.ExitCode != 0 {
				failedInit++
				if !restartable(c, t.ExitCode) {
					failedInitFinal++
				}
			}
		default:
			pendingInit++
		}
	}
	unknown, running, waiting, stopped, stoppedFinal, succeeded := 0, 0, 0, 0, 0, 0
	for _, c := range pod.Spec.InitContainers {
		if !podutil.IsRestartableInitContainer(&c) {
			continue
		}
		s, ok := podutil.GetContainerStatus(statuses, c.Name)
		switch {
		case !ok:
			unknown++
		case s.State.Running != nil:
			if s.Started == nil || !*s.Started {
				pendingSidecars++
			}
			running++
		case s.State.Terminated != nil, s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
		case s.State.Waiting != nil:
			pendingSidecars++
			waiting++
		default:
			pendingSidecars++
			unknown++
		}
	}
	for _, c := range pod.Spec.Containers {
		s, ok := podutil.GetContainerStatus(statuses, c.Name)
		switch {
		case !ok:
			unknown++
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil, s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			t := s.State.Terminated
			if t == nil {
				t = s.LastTerminationState.Terminated
			}
			stopped++
			if !restartable(c, t.ExitCode) {
				stoppedFinal++
			}
			if s.State.Terminated != nil && t.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil:
			waiting++
		default:
			unknown++
		}
	}
	if restartRules && failedInitFinal > 0 || !restartRules && failedInit > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingInit > 0 || pendingSidecars > 0 && !initialized, waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		switch {
		case terminal:
		case restartRules && stopped != stoppedFinal:
			return corev1.PodRunning
		case restartRules:
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped != succeeded && pod.Spec.RestartPolicy != corev1.RestartPolicyNever:
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	default:
		return corev1.PodPending
	}
}

// sandboxed: the pod's sandbox exists once a container got past
// ContainerCreating (or an init container past PodInitializing).
func sandboxed(statuses ...[]corev1.ContainerStatus) bool {
	for _, list := range statuses {
		for _, s := range list {
			if w := s.State.Waiting; w == nil || w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" || s.RestartCount > 0 {
				return true
			}
		}
	}
	return false
}
