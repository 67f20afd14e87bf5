package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func annotated(name string, annotations map[string]string) *corev1.Pod {
	p := pod(name, nil)
	p.Annotations = annotations
	return p
}

// Pod behaviours chosen by annotation (mockernetes.io/...).
func TestPodBehaviours(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	get := func(ctx context.Context, name string) *corev1.Pod {
		p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return p
	}

	t.Run("crash loop", func(t *testing.T) {
		p := annotated("crasher", map[string]string{
			"mockernetes.io/exit-code": "3", "mockernetes.io/restart-backoff": "50ms",
			"mockernetes.io/logs": "starting\npanic: boom",
		})
		if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "restartCount ≥ 2 in CrashLoopBackOff", func(ctx context.Context) (bool, error) {
			p := get(ctx, "crasher")
			if p == nil || len(p.Status.ContainerStatuses) == 0 {
				return false, nil
			}
			s := p.Status.ContainerStatuses[0]
			return s.RestartCount >= 2 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" &&
				strings.HasPrefix(s.State.Waiting.Message, "back-off ") && strings.Contains(s.State.Waiting.Message, "restarting failed container=app pod=crasher_"+ns) &&
				s.LastTerminationState.Terminated != nil && s.LastTerminationState.Terminated.ExitCode == 3 &&
				s.LastTerminationState.Terminated.Reason == "Error" && !s.Ready && p.Status.Phase == corev1.PodRunning, nil
		})
		prev, err := logs(t, c, ns, "crasher", &corev1.PodLogOptions{Previous: true})
		if err != nil || prev != "starting\npanic: boom\n" {
			t.Errorf("previous log: %v %q", err, prev)
		}
		if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "logs", "-p", "crasher"); err != nil || out != "starting\npanic: boom\n" {
			t.Errorf("kubectl logs -p: %v %q", err, out)
		}
		eventually(t, "BackOff event", func(ctx context.Context) (bool, error) {
			evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=crasher,reason=BackOff"})
			return err == nil && len(evs.Items) > 0 && evs.Items[0].Type == corev1.EventTypeWarning &&
				strings.HasPrefix(evs.Items[0].Message, "Back-off restarting failed container app in pod crasher_"+ns), nil
		})
		out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "get", "pod", "crasher")
		if err != nil || !regexp.MustCompile(`crasher\s+0/1\s+(CrashLoopBackOff|Error|Running)\s+[2-9]\d*`).MatchString(out) {
			t.Errorf("kubectl get pod crasher:\n%s", out)
		}
	})

	t.Run("image pull failure", func(t *testing.T) {
		p := annotated("nopull", map[string]string{"mockernetes.io/image-pull": "fail", "mockernetes.io/restart-backoff": "50ms"})
		if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		reasons := map[string]bool{}
		eventually(t, "ErrImagePull then ImagePullBackOff", func(ctx context.Context) (bool, error) {
			p := get(ctx, "nopull")
			if p != nil && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Waiting != nil {
				reasons[p.Status.ContainerStatuses[0].State.Waiting.Reason] = true
				return p.Status.ContainerStatuses[0].State.Waiting.Reason == "ImagePullBackOff" && p.Status.Phase == corev1.PodPending, nil
			}
			return false, nil
		})
		eventually(t, "Failed events", func(ctx context.Context) (bool, error) {
			evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=nopull,reason=Failed"})
			msgs := ""
			for _, e := range evs.Items {
				msgs += e.Message + "\n"
			}
			return err == nil && strings.Contains(msgs, "Error: ErrImagePull") && strings.Contains(msgs, "Error: ImagePullBackOff"), nil
		})
	})

	t.Run("exits", func(t *testing.T) {
		done := annotated("done", map[string]string{"mockernetes.io/exit-code": "0"})
		done.Spec.RestartPolicy = corev1.RestartPolicyNever
		oom := annotated("oom", map[string]string{"mockernetes.io/oom-killed": "true"})
		oom.Spec.RestartPolicy = corev1.RestartPolicyNever
		for _, p := range []*corev1.Pod{done, oom} {
			if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "done Succeeded", func(ctx context.Context) (bool, error) {
			p := get(ctx, "done")
			return p != nil && p.Status.Phase == corev1.PodSucceeded && p.Status.ContainerStatuses[0].State.Terminated.Reason == "Completed", nil
		})
		eventually(t, "oom Failed", func(ctx context.Context) (bool, error) {
			p := get(ctx, "oom")
			return p != nil && p.Status.Phase == corev1.PodFailed && p.Status.ContainerStatuses[0].State.Terminated.Reason == "OOMKilled" &&
				p.Status.ContainerStatuses[0].State.Terminated.ExitCode == 137, nil
		})
	})

	t.Run("grace period", func(t *testing.T) {
		p := annotated("graceful", map[string]string{"mockernetes.io/honor-grace-period": "true"})
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](2)
		readyPod(t, c, ns, p)
		start := time.Now()
		if err := c.CoreV1().Pods(ns).Delete(t.Context(), "graceful", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if got := get(t.Context(), "graceful"); got == nil || got.DeletionTimestamp == nil {
			t.Fatalf("pod gone before its grace period: %+v", got)
		}
		eventually(t, "gone after the grace period", func(ctx context.Context) (bool, error) {
			return get(ctx, "graceful") == nil, nil
		})
		if since := time.Since(start); since < 1500*time.Millisecond || since > 10*time.Second {
			t.Errorf("gone after %v with a 2 s grace period", since)
		}
	})

	t.Run("delays", func(t *testing.T) {
		slow := annotated("slowstart", map[string]string{"mockernetes.io/start-delay": "300ms", "mockernetes.io/ready-delay.app": "300ms"})
		never := annotated("never", map[string]string{"mockernetes.io/never-ready": "true"})
		never.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}}
		for _, p := range []*corev1.Pod{slow, never} {
			if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		eventually(t, "slowstart: creating, running unready, ready", func(ctx context.Context) (bool, error) {
			p := get(ctx, "slowstart")
			if p == nil || len(p.Status.ContainerStatuses) == 0 {
				return false, nil
			}
			s := p.Status.ContainerStatuses[0]
			switch {
			case s.State.Waiting != nil && s.State.Waiting.Reason == "ContainerCreating":
				seen["creating"] = true
			case s.State.Running != nil && !s.Ready:
				seen["unready"] = true
			case s.Ready:
				seen["ready"] = true
			}
			return seen["ready"], nil
		})
		if !seen["creating"] || !seen["unready"] {
			t.Errorf("slowstart went through %v", seen)
		}
		eventually(t, "never: running", func(ctx context.Context) (bool, error) {
			p := get(ctx, "never")
			return p != nil && p.Status.Phase == corev1.PodRunning, nil
		})
		if p := get(t.Context(), "never"); p == nil || p.Status.ContainerStatuses[0].Ready {
			t.Errorf("never-ready pod is ready: %+v", p)
		}
		eventually(t, "Unhealthy event", func(ctx context.Context) (bool, error) {
			evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=never,reason=Unhealthy"})
			return err == nil && len(evs.Items) == 1 && evs.Items[0].Message == "Readiness probe failed: HTTP probe failed with statuscode: 503", nil
		})
	})
}
