package kubelet

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestShell(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
		{Name: "scripts", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "scripts"}}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	c := corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "MODE", Value: "test"}, {Name: "SECRET", ValueFrom: &corev1.EnvVarSource{}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "info", MountPath: "/etc/podinfo"}, {Name: "scripts", MountPath: "/scripts"},
			{Name: "scratch", MountPath: "/data"}, {Name: "host", MountPath: "/host"}}}
	var slept time.Duration
	k, _ := newStatusKubelet(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "scripts"}, Data: map[string]string{
		"check.sh": "#!/bin/sh\n# says it is ready\necho ready # and why#not\nexit 3\n",
		"vars.sh":  "echo $1\n",
	}})
	run := func(stdin string, tty bool, argv ...string) (string, string, int32) {
		var out, errOut bytes.Buffer
		sh := k.newShell(pod, c)
		sh.in, sh.out, sh.err, sh.tty = strings.NewReader(stdin), &out, &errOut, tty
		sh.sleep = func(_ context.Context, d time.Duration) bool { slept += d; return true }
		code := sh.run(context.Background(), argv)
		return out.String(), errOut.String(), code
	}
	for _, tc := range []struct {
		stdin       string
		tty         bool
		argv        []string
		out, errOut string
		code        int32
	}{
		{argv: []string{"echo", "a", "b"}, out: "a b\n"},
		{argv: []string{"/bin/echo", "-n", "x"}, out: "x"},
		{argv: []string{"sh", "-c", "true && echo yes || echo no; false && echo skipped; exit 3"}, out: "yes\n", code: 3},
		{argv: []string{"bash", "-ec", "false || echo recovered"}, out: "recovered\n"},
		{argv: []string{"sh", "-c", "echo $HOME | cat"}, errOut: "sh: mockernetes does not simulate this script (redirections, variables, subshells): echo $HOME | cat\n", code: 127},
		{argv: []string{"curl", "-s", "localhost"}, errOut: "sh: curl: not found\n", code: 127},
		{argv: []string{"sh", "-c", "nope; echo after"}, out: "after\n", errOut: "sh: nope: not found\n"},
		{stdin: "data\n", argv: []string{"cat"}, out: "data\n"},
		{argv: []string{"cat", "/etc/passwd"}, errOut: "cat: can't open '/etc/passwd': " + notSimulated + "\n", code: 1},
		{argv: []string{"cat", "/etc/podinfo/nope"}, errOut: "cat: can't open '/etc/podinfo/nope': No such file or directory\n", code: 1},
		{argv: []string{"cat", "etc/hostname"}, out: "web-1\n"},
		{argv: []string{"cat", "/etc"}, errOut: "cat: read error: Is a directory\n", code: 1},
		{argv: []string{"ls", "/etc/podinfo"}, out: "name\n"},
		{argv: []string{"ls", "/etc/podinfo/name", "/etc/podinfo/nope"}, out: "/etc/podinfo/name\n", errOut: "ls: /etc/podinfo/nope: No such file or directory\n", code: 1},
		{argv: []string{"ls", "/etc"}, errOut: "ls: can't list '/etc': " + simulatedVolumes + "\n", code: 1},
		{argv: []string{"ls", "/data"}},
		{argv: []string{"cat", "/data"}, errOut: "cat: read error: Is a directory\n", code: 1},
		{argv: []string{"cat", "/data/x"}, errOut: "cat: can't open '/data/x': No such file or directory\n", code: 1},
		{argv: []string{"ls", "/host"}, errOut: "ls: can't list '/host': " + simulatedVolumes + "\n", code: 1},
		{argv: []string{"cat", "/host/etc/os-release"}, errOut: "cat: can't open '/host/etc/os-release': " + notSimulated + "\n", code: 1},
		{argv: []string{"printenv", "MODE", "SECRET"}, out: "test\n", code: 1},
		{argv: []string{"env"}, out: "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=web-1\nMODE=test\nHOME=/root\n"},
		{argv: []string{"hostname"}, out: "web-1\n"},
		{argv: []string{"sh", "-c", "sleep 2; sleep 1m"}},
		{argv: []string{"sh", "script.sh"}, errOut: "sh: can't open 'script.sh': " + notSimulated + "\n", code: 2},
		{argv: []string{"sh", "/scripts/nope.sh"}, errOut: "sh: can't open '/scripts/nope.sh': No such file or directory\n", code: 2},
		{argv: []string{"sh", "/scripts/check.sh"}, out: "ready\n", code: 3},
		{argv: []string{"bash", "/scripts/vars.sh", "x"}, errOut: "sh: mockernetes does not simulate this script (redirections, variables, subshells): echo $1\n", code: 127},
		{argv: []string{"sh", "-c", "echo a#b #c"}, out: "a#b\n"},
		// Writes: the emptyDir and the container's own files; the
		// kubelet's volumes are read-only, others are not simulated.
		{argv: []string{"sh", "-c", "echo hi > /data/x; echo more >>/data/x; cat /data/x"}, out: "hi\nmore\n"},
		{argv: []string{"sh", "-c", "echo again > /data/x && cat /data/x && ls /data"}, out: "again\nx\n"},
		{argv: []string{"sh", "-c", "echo x > /etc/podinfo/y || echo refused"}, out: "refused\n", errOut: "sh: can't create /etc/podinfo/y: Read-only file system\n"},
		{argv: []string{"sh", "-c", "echo x > /host/y"}, errOut: "sh: can't create /host/y: " + notSimulated + "\n", code: 1},
		{argv: []string{"sh", "-c", "echo x > /data"}, errOut: "sh: can't create /data: Is a directory\n", code: 1},
		{argv: []string{"sh", "-c", "echo gone >/dev/null; nope 2>/dev/null || echo failed"}, out: "failed\n"},
		{argv: []string{"sh", "-c", "nope 2>&1 | grep -c found"}, out: "1\n"},
		{argv: []string{"sh", "-c", "nope > /tmp/out 2>&1; cat /tmp/out"}, out: "sh: nope: not found\n"},
		{argv: []string{"sh", "-c", "echo warning >&2; echo fine 1>/dev/null"}, errOut: "warning\n"},
		{argv: []string{"sh", "-c", "touch /tmp/ready && test -f /tmp/ready && test a != b && test a = a && echo ready"}, out: "ready\n"},
		{argv: []string{"sh", "-c", "test -d /data && test -e /data/none || echo none"}, out: "none\n"},
		{argv: []string{"test", "-f", "/etc/passwd"}, errOut: "test: /etc/passwd: " + notSimulated + "\n", code: 2},
		{argv: []string{"sh", "-c", "mkdir -p /data/sub && echo nested > /data/sub/f && cat /data/sub/f"}, out: "nested\n"},
		{argv: []string{"tar", "-xf", "-", "member"}, errOut: "tar: mockernetes simulates only tar xf - [-C DIR] (-xf - member)\n", code: 1},
		{argv: []string{"tar", "-xf", "-", "-C"}, errOut: "tar: mockernetes simulates only tar xf - [-C DIR] (-xf - -C)\n", code: 1},
		{argv: []string{"mkdir", "/etc/podinfo/d"}, errOut: "mkdir: can't create directory '/etc/podinfo/d': Read-only file system\n", code: 1},
		// Pipes and filters.
		{argv: []string{"sh", "-c", "env | grep MODE"}, out: "MODE=test\n"},
		{argv: []string{"sh", "-c", "env | grep -c ="}, out: "4\n"},
		{argv: []string{"sh", "-c", "MODE=x env"}, errOut: "sh: mockernetes does not simulate this script (redirections, variables, subshells): MODE=x env\n", code: 127},
		{argv: []string{"sh", "-c", "env | grep -q NOPE || echo absent"}, out: "absent\n"},
		{argv: []string{"sh", "-c", "env | grep -v -i 'path\\|home' | sort -r"}, out: "MODE=test\nHOSTNAME=web-1\n"},
		{argv: []string{"sh", "-c", "env | grep -E '^(MODE|HOME)=' | head -n 1"}, out: "MODE=test\n"},
		{argv: []string{"sh", "-c", "env | tail -1 | wc -c"}, out: "11\n"},
		{argv: []string{"grep", "-n", "ready", "/scripts/check.sh", "/scripts/vars.sh"}, out: "/scripts/check.sh:2:# says it is ready\n/scripts/check.sh:3:echo ready # and why#not\n"},
		{argv: []string{"grep", "x", "/scripts/nope"}, errOut: "grep: /scripts/nope: No such file or directory\n", code: 2},
		{argv: []string{"sh", "-c", "grep nothing /scripts/vars.sh; echo $?"}, errOut: "sh: mockernetes does not simulate this script (redirections, variables, subshells): grep nothing /scripts/vars.sh; echo $?\n", code: 127},
		{argv: []string{"sh", "-c", "grep nothing /scripts/vars.sh || echo none"}, out: "none\n"},
		{argv: []string{"wc", "-l", "/scripts/check.sh"}, out: "4 /scripts/check.sh\n"},
		{argv: []string{"head", "-2", "/scripts/check.sh"}, out: "#!/bin/sh\n# says it is ready\n"},
		{stdin: "b\na\nb\nb\n10\n9\n", argv: []string{"sh", "-c", "sort | uniq -c"}, out: "      1 10\n      1 9\n      1 a\n      3 b\n"},
		{stdin: "10\n9\n-1\n", argv: []string{"sort", "-n"}, out: "-1\n9\n10\n"},
		{argv: []string{"sh", "-c", "echo a | exit 4; echo still"}, out: "still\n"},
		{argv: []string{"sh", "-c", "env | awk '{print $1}'"}, errOut: "sh: awk: not found\n", code: 127},
		{argv: []string{"sh", "-c", "env | wc"}, errOut: "sh: mockernetes simulates wc with one of -l, -w and -c only\n", code: 1},
		{argv: []string{"sh", "-c", "echo x |"}, errOut: "sh: mockernetes does not simulate this script (redirections, variables, subshells): echo x |\n", code: 127},
		{stdin: "echo one\nexit 4\necho never\n", argv: []string{"sh"}, out: "one\n", code: 4},
		{stdin: "echo one\n", argv: []string{"sh"}, out: "one\n"},
		{stdin: "echo hi\rex\x7fxit 2\r", tty: true, argv: []string{"sh"}, out: "/ # echo hi\r\nhi\r\n/ # ex\b \bxit 2\r\n", code: 2},
	} {
		out, errOut, code := run(tc.stdin, tc.tty, tc.argv...)
		if out != tc.out || errOut != tc.errOut || code != tc.code {
			t.Errorf("%q: out %q err %q exit %d, want %q %q %d", tc.argv, out, errOut, code, tc.out, tc.errOut, tc.code)
		}
	}
	if slept != 62*time.Second {
		t.Errorf("slept %s", slept)
	}

	// tar cf - (kubectl cp from the pod): members without the leading
	// slash, the directory first; extracting is refused.
	out, errOut, code := run("", false, "tar", "cf", "-", "/etc/podinfo")
	if errOut != "tar: removing leading '/' from member names\n" || code != 0 {
		t.Errorf("tar cf -: err %q exit %d", errOut, code)
	}
	var members []string
	archive := tar.NewReader(strings.NewReader(out))
	for {
		h, err := archive.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		content, _ := io.ReadAll(archive)
		members = append(members, h.Name+"="+string(content))
	}
	if want := []string{"etc/podinfo/=", "etc/podinfo/name=web-1"}; !slices.Equal(members, want) {
		t.Errorf("tar members %q, want %q", members, want)
	}

	// tar xf - (kubectl cp into the pod): written where the container can
	// write, refused in a read-only volume.
	var archived bytes.Buffer
	w := tar.NewWriter(&archived)
	for _, h := range []*tar.Header{{Typeflag: tar.TypeDir, Name: "app/", Mode: 0o755}, {Typeflag: tar.TypeReg, Name: "app/conf.txt", Mode: 0o644, Size: 5}} {
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Write([]byte("conf\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(archived.String(), false, "tar", "-xmf", "-", "-C", "/data"); code != 0 || errOut != "" {
		t.Errorf("tar -xmf into the emptyDir: err %q exit %d", errOut, code)
	}
	if out, _, _ := run("", false, "cat", "/data/app/conf.txt"); out != "conf\n" {
		t.Errorf("the file extracted: %q", out)
	}
	if _, errOut, code := run(archived.String(), false, "tar", "-xmf", "-", "-C", "/etc/podinfo"); code != 1 || !strings.Contains(errOut, "tar: can't open 'etc/podinfo/app/conf.txt': Read-only file system") {
		t.Errorf("tar -xmf into a read-only volume: err %q exit %d", errOut, code)
	}
	// A container's command writes nothing (it is played again at each
	// step): one that does is not known.
	c.Command = []string{"sh", "-c", "echo x > /data/y"}
	if p, ok := k.program(t.Context(), pod, &c); ok {
		t.Errorf("a command that writes played as %+v", p)
	}
	c.Command = []string{"sh", "-c", "echo quiet > /dev/null; echo said 2>&1"}
	if p, ok := k.program(t.Context(), pod, &c); !ok || fmt.Sprint(texts(p.output)) != "[said]" {
		t.Errorf("a command that writes to /dev/null: %+v %v", p, ok)
	}
}

func TestMatchCommand(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		argv    []string
		want    bool
	}{
		{"pg_isready", []string{"pg_isready"}, true},
		{"pg_isready", []string{"pg_isready", "-h", "x"}, false},
		{"pg_isready*", []string{"pg_isready", "-h", "x"}, true},
		{"sh -c *backup*", []string{"sh", "-c", "cd /data && ./backup.sh\nexit"}, true},
		{"cat /etc/?osts", []string{"cat", "/etc/hosts"}, true},
		{"a.b", []string{"axb"}, false},
	} {
		if got := matchCommand(tc.pattern, tc.argv); got != tc.want {
			t.Errorf("matchCommand(%q, %q) = %v", tc.pattern, tc.argv, got)
		}
	}
}

func TestReadsCommands(t *testing.T) {
	for _, tc := range []struct {
		c    corev1.Container
		want bool
	}{
		{corev1.Container{}, true},
		{corev1.Container{Command: []string{"sh"}}, true},
		{corev1.Container{Command: []string{"/bin/bash", "-i", "-l"}}, true},
		{corev1.Container{Command: []string{"sh", "-c", "echo"}}, false},
		{corev1.Container{Command: []string{"python"}}, false},
	} {
		if got := readsCommands(tc.c); got != tc.want {
			t.Errorf("readsCommands(%q) = %v", tc.c.Command, got)
		}
	}
}

// FuzzShell plays any script, with any input, in the simulated shell:
// whatever it is, the shell answers (an error is an answer) and does not
// panic.
func FuzzShell(f *testing.F) {
	for _, seed := range []string{
		"echo hi > /data/x; cat /data/x | grep -c h", "env | sort -r | uniq -c | head -n 2 | tail -1 | wc -l",
		"nope 2>&1 >/dev/null || echo failed >&2", "tar -xmf - -C /data", "test -d /data && touch /tmp/a",
		"grep -e 'a\\|b' -v -i", "sort -n -u -r", "mkdir -p /data/a && echo x >> /data/a/b", "echo >", "a | | b",
	} {
		f.Add(seed, "line one\nline two\n")
	}
	pod := statusPod("web-1", corev1.RestartPolicyAlways)
	pod.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	c := corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/data"}}}
	k, _ := newStatusKubelet(f)
	f.Fuzz(func(t *testing.T, script, stdin string) {
		var out bytes.Buffer
		sh := k.newShell(pod, c)
		sh.in, sh.out, sh.err = strings.NewReader(stdin), &out, &out
		sh.sleep = func(context.Context, time.Duration) bool { return true }
		sh.run(t.Context(), []string{"sh", "-c", script})
	})
}
