package kubelet

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		command, args []string
		want          string // program as %+v, "" for not recognised
	}{
		{command: []string{"sleep", "300"}, want: "{runs:5m0s forever:false output:[] exitCode:0}"},
		{command: []string{"/bin/sleep"}, args: []string{"1.5", "2m"}, want: "{runs:2m1.5s forever:false output:[] exitCode:0}"},
		{command: []string{"sleep", "infinity"}, want: "{runs:0s forever:true output:[] exitCode:0}"},
		{command: []string{"true"}, want: "{runs:0s forever:false output:[] exitCode:0}"},
		{command: []string{"false"}, want: "{runs:0s forever:false output:[] exitCode:1}"},
		{command: []string{"echo", "hello", "world"}, want: "{runs:0s forever:false output:[hello world] exitCode:0}"},
		{command: []string{"sh", "-c", "echo start; sleep 2 && echo 'done now'; exit 3"}, want: "{runs:2s forever:false output:[start done now@2s] exitCode:3}"},
		{command: []string{"/bin/bash", "-ec"}, args: []string{"false || echo recovered\nsleep 1d"}, want: "{runs:24h0m0s forever:false output:[recovered] exitCode:0}"},
		{command: []string{"sh", "-c", "false && echo never; true || exit 9"}, want: "{runs:0s forever:false output:[] exitCode:0}"},
		{command: []string{"sh", "-c", "false && echo never"}, want: "{runs:0s forever:false output:[] exitCode:1}"},
		{command: []string{"sh", "-c", "echo \"quoted; not split\"; exit 300"}, want: "{runs:0s forever:false output:[quoted; not split] exitCode:44}"},
		{command: []string{"sh", "-c", "sleep 5; sleep infinity"}, want: "{runs:5s forever:true output:[] exitCode:0}"},
		// Not recognised: they run as any other container.
		{command: []string{"nginx", "-g", "daemon off;"}},
		{command: []string{"sh", "-c", "echo $HOME"}},
		{command: []string{"sh", "-c", "cat /etc/hosts | grep x"}},
		{command: []string{"sh", "-c", "sleep 5 &"}},
		{command: []string{"sh", "-c", "wget -q http://example.com"}},
		{command: []string{"sh", "-c", "echo 'unterminated"}},
		{command: []string{"sh", "-c", "sleep"}},
		{command: []string{"sh", "-c", "sleep -1"}},
		{command: []string{"sh", "-c", "exit one"}},
		{command: []string{"sh", "-c", "true &&"}},
		{command: []string{"sh", "script.sh"}},
		{command: []string{"sh", "-c"}},
		{args: []string{"sleep", "10"}, want: "{runs:10s forever:false output:[] exitCode:0}"},
		{},
	} {
		p, ok := parseCommand(corev1.Container{Command: tc.command, Args: tc.args})
		got := ""
		if ok {
			got = fmt.Sprintf("{runs:%v forever:%v output:%v exitCode:%d}", p.runs, p.forever, texts(p.output), p.exitCode)
		}
		if got != tc.want {
			t.Errorf("%q %q: %s, want %s", tc.command, tc.args, got, tc.want)
		}
	}
}

// A recognised command shapes the behaviour; rules and annotations still
// override it; the time scale shrinks it.
func TestCommandBehaviour(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sh", "-c", "echo hi; sleep 2; exit 4"}}}}}
	b := behaviourOf(pod, pod.Spec.Containers[0], nil)
	if !b.exits || b.exitCode != 4 || b.exitAfter != 2*time.Second || fmt.Sprint(texts(b.logs)) != "[hi]" {
		t.Errorf("behaviour of the command: %+v", b)
	}
	pod.Annotations = map[string]string{AnnotationExitCode: "0"}
	if b := behaviourOf(pod, pod.Spec.Containers[0], nil); b.exitCode != 0 || b.exitAfter != 2*time.Second {
		t.Errorf("annotation over the command: %+v", b)
	}
	if s := b.scaled(0.01); s.exitAfter != 20*time.Millisecond || s.backoff != 10*time.Millisecond {
		t.Errorf("scaled by 0.01: %+v", s)
	}
}

// TestProgram checks the commands the simulated shell plays for a
// container: what they print of its files and environment, how long they
// sleep, how they exit; and that what the shell does not know is left to
// the defaults.
func TestProgram(t *testing.T) {
	k, _ := newStatusKubelet(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app"}, Data: map[string]string{
		"app.yaml": "port: 8080\nmode: test\n",
		"run.sh":   "#!/bin/sh\necho running\nexit 2\n",
	}})
	pod := statusPod("web-1", corev1.RestartPolicyNever)
	pod.Spec.Volumes = []corev1.Volume{{Name: "app", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}}}
	for _, tc := range []struct {
		command []string
		stdin   bool
		want    string // program as %+v, "" for not known
	}{
		{command: []string{"sh", "-c", "cat /etc/app/app.yaml; printenv MODE; hostname"},
			want: "{runs:0s forever:false output:[port: 8080 mode: test test web-1] exitCode:0}"},
		{command: []string{"sh", "-c", "echo start; sleep 5; cat /etc/app/missing.yaml"},
			want: "{runs:5s forever:false output:[start cat: can't open '/etc/app/missing.yaml': No such file or directory@5s] exitCode:1}"},
		{command: []string{"sh", "-c", "cat /etc/app/app.yaml && sleep infinity"}, want: "{runs:0s forever:true output:[port: 8080 mode: test] exitCode:130}"},
		{command: []string{"/bin/cat", "/etc/app/app.yaml"}, want: "{runs:0s forever:false output:[port: 8080 mode: test] exitCode:0}"},
		{command: []string{"sh", "/etc/app/run.sh"}, want: "{runs:0s forever:false output:[running] exitCode:2}"},
		{command: []string{"ls", "/etc/app"}, want: "{runs:0s forever:false output:[app.yaml run.sh] exitCode:0}"},
		{command: []string{"sh", "-c", "cat /etc/app/app.yaml; nginx -g 'daemon off;'"}}, // another program
		{command: []string{"sh", "-c", "cat /etc/passwd"}},                               // the image's files
		{command: []string{"sh", "-c", "echo $HOME"}},                                    // a variable
		{command: []string{"nginx"}},
		{command: []string{"sh"}, stdin: true}, // its session drives it
	} {
		c := corev1.Container{Name: "app", Image: "busybox:1.36", Command: tc.command, Stdin: tc.stdin, Env: []corev1.EnvVar{{Name: "MODE", Value: "test"}},
			VolumeMounts: []corev1.VolumeMount{{Name: "app", MountPath: "/etc/app"}}}
		pod.Spec.Containers = []corev1.Container{c}
		got := ""
		if p, ok := k.program(t.Context(), pod, &c); ok {
			got = fmt.Sprintf("{runs:%v forever:%v output:%v exitCode:%d}", p.runs, p.forever, texts(p.output), p.exitCode)
		}
		if tc.stdin {
			if b := k.behaviourOf(t.Context(), pod, c); !b.interactive {
				t.Errorf("%q with stdin: %+v, want it interactive", tc.command, b)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%q: %s, want %s", tc.command, got, tc.want)
		}
		b := k.behaviourOf(t.Context(), pod, c)
		if tc.want == "" {
			if b.exits || len(b.logs) != 2 || b.logs[0].text != "Starting app (image busybox:1.36)" {
				t.Errorf("%q: %+v, want the default behaviour", tc.command, b)
			}
		} else if b.exits == b.forever {
			t.Errorf("%q: behaviour %+v", tc.command, b)
		}
	}
}

// texts are the lines printed, each with its time after the start (text@5s)
// unless printed at once.
func texts(lines []printed) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
		if l.after > 0 {
			out[i] += "@" + l.after.String()
		}
	}
	return out
}
