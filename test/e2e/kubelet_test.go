package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func TestNodes(t *testing.T) {
	c := shared.client(t)
	n, err := c.CoreV1().Nodes().Get(t.Context(), "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := false
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && cond.Reason == "KubeletReady" {
			ready = true
		}
	}
	if !ready || n.Status.NodeInfo.KubeletVersion != k8sVersion || n.Status.Allocatable.Pods().Value() != 110 ||
		len(n.Spec.Taints) != 0 || n.Labels["kubernetes.io/hostname"] != "node-1" || n.Spec.PodCIDR != "10.244.0.0/24" {
		t.Errorf("node-1: %+v", n)
	}
	lease, err := c.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(t.Context(), "node-1", metav1.GetOptions{})
	if err != nil || lease.Spec.RenewTime == nil || *lease.Spec.HolderIdentity != "node-1" {
		t.Errorf("node lease: %v %+v", err, lease)
	}
	out, err := shared.kubectl(t, kubectlBin, "", "get", "nodes")
	if err != nil || !regexp.MustCompile(`node-1 +Ready +<none>`).MatchString(out) ||
		!regexp.MustCompile(`mockernetes-control-plane +Ready +control-plane`).MatchString(out) || !strings.Contains(out, k8sVersion) {
		t.Errorf("kubectl get nodes: %v\n%s", err, out)
	}
}

// A node pulls an image the first time it runs it, and under
// imagePullPolicy Always each time; otherwise the image is already there.
func TestImagePulls(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	image := "registry.example/" + ns + ":1"
	run := func(name string, policy corev1.PullPolicy) []string {
		t.Helper()
		p := pod(name, nil)
		p.Spec.NodeName = "node-1"
		p.Spec.Containers[0].Image, p.Spec.Containers[0].ImagePullPolicy = image, policy
		if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var pulls []string
		eventually(t, name+"'s events", func(ctx context.Context) (bool, error) {
			evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
			if err != nil {
				return false, nil
			}
			pulls = nil
			started := false
			for _, e := range evs.Items {
				switch e.Reason {
				case "Pulling", "Pulled":
					pulls = append(pulls, e.Reason+": "+e.Message)
				case "Started":
					started = true
				}
			}
			slices.Sort(pulls)
			return started, nil
		})
		return pulls
	}
	pulled := []string{`Pulled: Successfully pulled image "` + image + `" in 0s (0s including waiting). Image size: 0 bytes.`, `Pulling: Pulling image "` + image + `"`}
	present := []string{`Pulled: Container image "` + image + `" already present on machine and can be accessed by the pod`}
	if got := run("first", corev1.PullIfNotPresent); !slices.Equal(got, pulled) {
		t.Errorf("the first pod with the image: %q, want %q", got, pulled)
	}
	if got := run("second", corev1.PullIfNotPresent); !slices.Equal(got, present) {
		t.Errorf("the second pod with the image: %q, want %q", got, present)
	}
	if got := run("always", corev1.PullAlways); !slices.Equal(got, pulled) {
		t.Errorf("imagePullPolicy Always: %q, want %q", got, pulled)
	}
}

// A bare pod goes Pending → Running → Ready, reported as a kubelet reports it.
func TestPodLifecycle(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	w, err := c.CoreV1().Pods(ns).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	p := pod("web", nil)
	p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1.36"}}
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var creating, running *corev1.Pod
	timeout := time.After(time.Minute)
	for running == nil {
		select {
		case ev := <-w.ResultChan():
			got := ev.Object.(*corev1.Pod)
			if len(got.Status.ContainerStatuses) == 1 && got.Status.ContainerStatuses[0].State.Waiting != nil {
				creating = got
			}
			if got.Status.Phase == corev1.PodRunning && condition(got, corev1.PodReady) != nil && condition(got, corev1.PodReady).Status == corev1.ConditionTrue {
				running = got
			}
		case <-timeout:
			t.Fatal("pod never Running and Ready")
		}
	}
	// A pod with init containers: every container waits in PodInitializing,
	// with the image of its spec until it runs.
	if creating == nil || creating.Status.Phase != corev1.PodPending || creating.Status.ContainerStatuses[0].State.Waiting.Reason != "PodInitializing" ||
		creating.Status.ContainerStatuses[0].Image != "nginx:1.27" ||
		creating.Status.InitContainerStatuses[0].State.Waiting.Reason != "PodInitializing" || condition(creating, corev1.PodInitialized).Status != corev1.ConditionFalse {
		t.Errorf("pending status: %+v", creating)
	}
	s := running.Status
	if running.Spec.NodeName != "node-1" || s.HostIP != "172.18.0.3" || !strings.HasPrefix(s.PodIP, "10.244.0.") || len(s.PodIPs) != 1 || s.StartTime == nil {
		t.Errorf("running pod: node %q hostIP %q podIP %q startTime %v", running.Spec.NodeName, s.HostIP, s.PodIP, s.StartTime)
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		if cond := condition(running, ct); cond == nil || cond.Status != corev1.ConditionTrue {
			t.Errorf("condition %s: %+v", ct, cond)
		}
	}
	cs := s.ContainerStatuses[0]
	if cs.Name != "app" || cs.Image != "docker.io/library/nginx:1.27" || !cs.Ready || cs.RestartCount != 0 || cs.State.Running == nil || cs.Started == nil || !*cs.Started {
		t.Errorf("container status: %+v", cs)
	}
	init := s.InitContainerStatuses[0]
	if init.State.Terminated == nil || init.State.Terminated.Reason != "Completed" || init.State.Terminated.ExitCode != 0 {
		t.Errorf("init container status: %+v", init)
	}
	// Events: the scheduler's, then the kubelet's.
	eventually(t, "events", func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web"})
		if err != nil {
			return false, nil
		}
		seen := map[string][]string{} // the init container's and the app's
		for _, e := range evs.Items {
			// kube-scheduler writes events.k8s.io events: no source, only
			// a reporting controller (as on a real cluster).
			seen[e.Reason] = append(seen[e.Reason], e.ReportingController+": "+e.Message)
		}
		has := func(reason, prefix string) bool {
			return slices.ContainsFunc(seen[reason], func(m string) bool { return strings.HasPrefix(m, prefix) })
		}
		// Pulled: the first pod with the image on node-1 pulls it (other
		// tests may have run one there before; TestImagePulls tells them).
		pulled := has("Pulling", `kubelet: Pulling image "nginx:1.27"`) && has("Pulled", `kubelet: Successfully pulled image "nginx:1.27"`) ||
			has("Pulled", `kubelet: Container image "nginx:1.27" already present on machine and can be accessed by the pod`)
		return has("Scheduled", "default-scheduler: Successfully assigned "+ns+"/web to node-1") && pulled &&
			len(seen["Created"]) == 2 && has("Created", "kubelet: Container created") && len(seen["Started"]) == 2 && has("Started", "kubelet: Container started"), nil
	})

	// Deleting it ends it at once (the kubelet confirms the deletion).
	if err := c.CoreV1().Pods(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod gone", func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// A readiness probe's initial delay holds Ready back.
func TestReadinessDelay(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	p := pod("slow", nil)
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{InitialDelaySeconds: 1, ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80)}}}
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "running, not ready", func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().Pods(ns).Get(ctx, "slow", metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.PodRunning {
			return false, nil
		}
		if r := condition(got, corev1.PodReady); r.Status != corev1.ConditionFalse || r.Reason != "ContainersNotReady" || r.Message != "containers with unready status: [app]" {
			t.Fatalf("Ready condition while the probe waits: %+v", r)
		}
		return true, nil
	})
	eventually(t, "ready after the delay", func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().Pods(ns).Get(ctx, "slow", metav1.GetOptions{})
		return err == nil && condition(got, corev1.PodReady).Status == corev1.ConditionTrue, nil
	})
}

func TestUnschedulable(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	picky := pod("picky", nil)
	picky.Spec.NodeSelector = map[string]string{"disktype": "ssd"}
	greedy := pod("greedy", nil)
	greedy.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100")}
	for _, p := range []*corev1.Pod{picky, greedy} {
		if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, msg := range map[string]string{
		"picky":  "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint(s). preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
		"greedy": "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint(s). preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
	} {
		eventually(t, name+" unschedulable", func(ctx context.Context) (bool, error) {
			got, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			cond := condition(got, corev1.PodScheduled)
			return got.Status.Phase == corev1.PodPending && got.Spec.NodeName == "" && cond != nil && cond.Status == corev1.ConditionFalse &&
				cond.Reason == corev1.PodReasonUnschedulable && cond.Message == msg, nil
		})
		eventually(t, name+" FailedScheduling event", func(ctx context.Context) (bool, error) {
			evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=FailedScheduling"})
			return err == nil && len(evs.Items) > 0 && evs.Items[0].Message == msg && evs.Items[0].Type == corev1.EventTypeWarning, nil
		})
	}
	// A node that gets the label takes the picky pod.
	if _, err := c.CoreV1().Nodes().Patch(t.Context(), "node-1", types.MergePatchType, []byte(`{"metadata":{"labels":{"disktype":"ssd"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.CoreV1().Nodes().Patch(context.Background(), "node-1", types.MergePatchType, []byte(`{"metadata":{"labels":{"disktype":null}}}`), metav1.PatchOptions{})
	})
	eventually(t, "picky pod running", func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().Pods(ns).Get(ctx, "picky", metav1.GetOptions{})
		return err == nil && got.Spec.NodeName == "node-1" && got.Status.Phase == corev1.PodRunning, nil
	})
}

// Pods that name a ConfigMap or Secret that is not there do not start, as
// on a real cluster: one whose volume names it stays ContainerCreating
// (FailedMount), one whose environment names it waits in
// CreateContainerConfigError; both start once it is created.
func TestMissingReferences(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	mounts := pod("mounts", nil)
	mounts.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	mounts.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/app"}, {Name: "scratch", MountPath: "/scratch"}}
	env := pod("env", nil)
	env.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
	for _, p := range []*corev1.Pod{mounts, env} {
		if _, err := c.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the pods to say why they wait", func(ctx context.Context) (bool, error) {
		out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "get", "pods", "--no-headers", "-o", "custom-columns=NAME:.metadata.name,STATUS:.status.phase")
		if err != nil {
			return false, nil
		}
		table, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "get", "pods", "--no-headers")
		if err != nil {
			return false, nil
		}
		return strings.Count(out, "Pending") == 2 &&
			regexp.MustCompile(`(?m)^env\s+0/1\s+CreateContainerConfigError\s`).MatchString(table) &&
			regexp.MustCompile(`(?m)^mounts\s+0/1\s+ContainerCreating\s`).MatchString(table), nil
	})
	eventually(t, "their events", func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
		if err != nil {
			return false, nil
		}
		var seen []string
		for _, e := range evs.Items {
			seen = append(seen, e.InvolvedObject.Name+" "+e.Reason+" "+e.Message)
		}
		return slices.Contains(seen, `mounts FailedMount MountVolume.SetUp failed for volume "cfg" : configmap "app-config" not found`) &&
			slices.Contains(seen, `env Failed Error: secret "db" not found`), nil
	})
	if p, err := c.CoreV1().Pods(ns).Get(t.Context(), "env", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if w := p.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Message != `secret "db" not found` {
		t.Errorf("env's container: %+v", p.Status.ContainerStatuses[0].State)
	}

	if _, err := c.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-config"},
		Data: map[string]string{"app.yaml": "port: 8080\n"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// They start at once: settle waits for them.
	settleShared(t)
	pods, err := c.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("%s: %s once what it names is there, want Running", p.Name, p.Status.Phase)
		}
	}
	// Its environment has the Secret's value and the kubernetes Service's
	// address, as a container's has.
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "exec", "env", "--", "printenv", "PASSWORD", "KUBERNETES_SERVICE_HOST"); err != nil || out != "s3cret\n10.96.0.1\n" {
		t.Errorf("printenv in the container: %v %q", err, out)
	}
	// Its mounted ConfigMap is files; its service account's token is one
	// the API server takes.
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "exec", "mounts", "--", "sh", "-c", "ls /etc/app; cat /etc/app/app.yaml /var/run/secrets/kubernetes.io/serviceaccount/namespace"); err != nil || out != "app.yaml\nport: 8080\n"+ns {
		t.Errorf("the mounted files: %v %q", err, out)
	}
	// Its resolv.conf points at the cluster's DNS; the image's files are
	// not simulated, and it says so.
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "exec", "mounts", "--", "cat", "/etc/resolv.conf"); err != nil ||
		out != "search "+ns+".svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n" {
		t.Errorf("resolv.conf: %v %q", err, out)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "exec", "mounts", "--", "cat", "/etc/passwd"); err == nil || !strings.Contains(out, "mockernetes simulates only the files of") {
		t.Errorf("cat /etc/passwd: %v %q, want an error that says it is not simulated", err, out)
	}
	// kubectl cp from the pod: a file, and a directory.
	dir := t.TempDir()
	if out, err := shared.kubectl(t, kubectlBin, "", "cp", ns+"/mounts:/etc/app/app.yaml", filepath.Join(dir, "copy.yaml")); err != nil {
		t.Errorf("kubectl cp of a file: %v %s", err, out)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "cp", ns+"/mounts:/etc/app", filepath.Join(dir, "app")); err != nil {
		t.Errorf("kubectl cp of a directory: %v %s", err, out)
	}
	for _, p := range []string{"copy.yaml", "app/app.yaml"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != "port: 8080\n" {
			t.Errorf("%s copied from the pod: %v %q", p, err, b)
		}
	}
	// kubectl cp into the pod: its emptyDir takes the file, its ConfigMap
	// volume is read-only; a redirection writes there too.
	local := filepath.Join(dir, "local.txt")
	if err := os.WriteFile(local, []byte("from the test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "cp", local, ns+"/mounts:/scratch/local.txt"); err != nil {
		t.Errorf("kubectl cp into the emptyDir: %v %s", err, out)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "exec", "mounts", "--", "sh", "-c", "echo appended >> /scratch/local.txt; cat /scratch/local.txt"); err != nil || out != "from the test\nappended\n" {
		t.Errorf("the file copied in: %v %q", err, out)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "cp", local, ns+"/mounts:/etc/app/local.txt"); err == nil || !strings.Contains(out, "Read-only file system") {
		t.Errorf("kubectl cp into the ConfigMap volume: %v %q, want it refused", err, out)
	}
	token, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "exec", "mounts", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token")
	if err != nil {
		t.Fatalf("the token: %v %s", err, token)
	}
	cfg := rest.AnonymousClientConfig(shared.restConfig(t))
	cfg.BearerToken = token
	if review, err := kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err != nil ||
		review.Status.UserInfo.Username != "system:serviceaccount:"+ns+":default" {
		t.Errorf("who the token is: %v %+v", err, review)
	}
}

// TestContainerScripts runs Jobs whose commands read what the kubelet gives
// their container (a mounted ConfigMap, the environment, the hostname): the
// logs are what they print, and a script that fails fails its Job.
func TestContainerScripts(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	if _, err := c.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Data: map[string]string{"app.yaml": "port: 8080\n", "migrate.sh": "#!/bin/sh\n# the migration\necho migrating\nexit 3\n"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	job := func(name string, command ...string) *batchv1.Job {
		return &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: batchv1.JobSpec{BackoffLimit: ptr.To(int32(0)), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Volumes: []corev1.Volume{{Name: "app", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}}},
				Containers: []corev1.Container{{Name: "main", Image: "busybox:1.36", Command: command,
					Env:          []corev1.EnvVar{{Name: "GREETING", Value: "hello"}},
					VolumeMounts: []corev1.VolumeMount{{Name: "app", MountPath: "/config"}}}},
			}}},
		}
	}
	for _, j := range []*batchv1.Job{
		job("report", "sh", "-c", "cat /config/app.yaml; printenv GREETING"),
		job("migrate", "sh", "/config/migrate.sh"),
	} {
		if _, err := c.BatchV1().Jobs(ns).Create(t.Context(), j, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// An init container that fails fails a pod that is never restarted.
	initFails := pod("init-fails", nil)
	initFails.Spec.RestartPolicy = corev1.RestartPolicyNever
	initFails.Spec.InitContainers = []corev1.Container{{Name: "check", Image: "busybox:1.36", Command: []string{"sh", "-c", "echo not ready; exit 1"}}}
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), initFails, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// One whose image cannot be pulled holds the pod in its turn.
	initPull := pod("init-pull", nil)
	initPull.Annotations = map[string]string{"mockernetes.io/image-pull.fetch": "fail"}
	initPull.Spec.InitContainers = []corev1.Container{{Name: "fetch", Image: "registry.example/fetch:1"}}
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), initPull, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	settleShared(t)
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "get", "pod", "init-fails", "--no-headers"); err != nil || !regexp.MustCompile(`^init-fails\s+0/1\s+Init:Error\s`).MatchString(out) {
		t.Errorf("kubectl get pod init-fails: %v %q, want Init:Error", err, out)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "get", "pod", "init-pull", "--no-headers"); err != nil || !regexp.MustCompile(`^init-pull\s+0/1\s+Init:ImagePullBackOff\s`).MatchString(out) {
		t.Errorf("kubectl get pod init-pull: %v %q, want Init:ImagePullBackOff", err, out)
	}
	if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "logs", "init-fails", "-c", "check"); err != nil || out != "not ready\n" {
		t.Errorf("logs of the init container: %v %q", err, out)
	}
	for name, want := range map[string]string{"report": "Complete", "migrate": "Failed"} {
		j, err := c.BatchV1().Jobs(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(j.Status.Conditions, func(cond batchv1.JobCondition) bool {
			return string(cond.Type) == want && cond.Status == corev1.ConditionTrue
		}) {
			t.Errorf("job %s: %+v, want %s", name, j.Status.Conditions, want)
		}
	}
	for name, want := range map[string]string{"report": "port: 8080\nhello\n", "migrate": "migrating\n"} {
		if out, err := shared.kubectl(t, kubectlBin, "", "-n", ns, "logs", "job/"+name); err != nil || out != want {
			t.Errorf("logs of job %s: %v %q, want %q", name, err, out, want)
		}
	}
}

// settleShared waits for the shared server's cluster to settle.
func settleShared(t *testing.T) {
	t.Helper()
	control, err := testcontrol.New(shared.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := control.Settle(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
}
