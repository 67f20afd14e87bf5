package e2e

import (
	"regexp"
	"strings"
	"testing"
)

const manifests = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: standalone
  labels:
    app: standalone
spec:
  containers:
  - name: app
    image: busybox:1.36
    command: ["sleep", "3600"]
`

// columns returns the header fields of `kubectl get` output.
func columns(out string) []string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.Fields(lines[0])
}

func TestKubectl(t *testing.T) {
	c := shared.client(t)
	for name, bin := range kubectls(t) {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t, c)
			run := func(stdin string, args ...string) string {
				t.Helper()
				out, err := shared.kubectl(t, bin, stdin, append([]string{"-n", ns}, args...)...)
				if err != nil {
					t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return out
			}

			out := run(manifests, "apply", "-f", "-")
			for _, want := range []string{"configmap/web-config created", "deployment.apps/web created", "service/web created", "pod/standalone created"} {
				if !strings.Contains(out, want) {
					t.Errorf("apply output lacks %q:\n%s", want, out)
				}
			}
			// Applying again changes nothing.
			if out := run(manifests, "apply", "-f", "-"); !strings.Contains(out, "deployment.apps/web unchanged") {
				t.Errorf("second apply:\n%s", out)
			}

			// `kubectl get` prints the upstream table columns.
			for resource, want := range map[string]string{
				"pods":        "NAME READY STATUS RESTARTS AGE",
				"deployments": "NAME READY UP-TO-DATE AVAILABLE AGE",
				"services":    "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
				"configmaps":  "NAME DATA AGE",
			} {
				out := run("", "get", resource)
				if got := strings.Join(columns(out), " "); got != want {
					t.Errorf("get %s columns %q, want %q\n%s", resource, got, want, out)
				}
			}
			if out := run("", "get", "pods", "-o", "wide"); !strings.Contains(columns(out)[len(columns(out))-1], "GATES") {
				t.Errorf("get pods -o wide:\n%s", out)
			}
			svc := run("", "get", "service", "web")
			if !regexp.MustCompile(`web\s+ClusterIP\s+10\.\d+\.\d+\.\d+\s+<none>\s+80/TCP`).MatchString(svc) {
				t.Errorf("get service row:\n%s", svc)
			}
			// The simulated kubelet runs it.
			if out := run("", "wait", "--for=condition=Ready", "pod/standalone", "--timeout=60s"); !strings.Contains(out, "pod/standalone condition met") {
				t.Errorf("kubectl wait:\n%s", out)
			}
			pod := run("", "get", "pod", "standalone")
			if !regexp.MustCompile(`standalone\s+1/1\s+Running\s+0\s+`).MatchString(pod) {
				t.Errorf("get pod row:\n%s", pod)
			}
			if out := run("", "rollout", "status", "deployment/web", "--timeout=60s"); !strings.Contains(out, `deployment "web" successfully rolled out`) {
				t.Errorf("kubectl rollout status:\n%s", out)
			}

			desc := run("", "describe", "deployment", "web")
			for _, want := range []string{"Name:", "web", "Replicas:", "2 desired", "StrategyType:", "RollingUpdate", "nginx:1.27"} {
				if !strings.Contains(desc, want) {
					t.Errorf("describe deployment lacks %q:\n%s", want, desc)
				}
			}
			if desc := run("", "describe", "pod", "standalone"); !strings.Contains(desc, "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s") {
				t.Errorf("describe pod:\n%s", desc)
			}

			explain := run("", "explain", "deployment.spec")
			for _, want := range []string{"KIND:", "Deployment", "FIELD: spec <DeploymentSpec>", "replicas", "template", "strategy"} {
				if !strings.Contains(explain, want) {
					t.Errorf("explain deployment.spec lacks %q:\n%s", want, explain)
				}
			}

			ssa := run(strings.Replace(manifests, "greeting: hello", "greeting: hi", 1), "apply", "--server-side", "--force-conflicts", "-f", "-")
			if !strings.Contains(ssa, "configmap/web-config serverside-applied") {
				t.Errorf("server-side apply:\n%s", ssa)
			}
			if got := run("", "get", "configmap", "web-config", "-o", "jsonpath={.data.greeting}"); got != "hi" {
				t.Errorf("after server-side apply greeting = %q", got)
			}

			resources := run("", "api-resources")
			for _, want := range []string{
				`deployments\s+deploy\s+apps/v1\s+true\s+Deployment`,
				`pods\s+po\s+v1\s+true\s+Pod`,
				`ingresses\s+ing\s+networking.k8s.io/v1\s+true\s+Ingress`,
				`poddisruptionbudgets\s+pdb\s+policy/v1\s+true\s+PodDisruptionBudget`,
			} {
				if !regexp.MustCompile(want).MatchString(resources) {
					t.Errorf("api-resources lacks %s", want)
				}
			}

			out = run(manifests, "delete", "-f", "-", "--grace-period=0", "--wait=false")
			for _, want := range []string{`configmap "web-config" deleted`, `deployment.apps "web" deleted`, `service "web" deleted`, `pod "standalone" deleted`} {
				if !strings.Contains(out, want) {
					t.Errorf("delete output lacks %q:\n%s", want, out)
				}
			}
			if out := run("", "get", "configmaps,services,deployments", "-o", "name"); strings.Contains(out, "web") {
				t.Errorf("left after delete:\n%s", out)
			}
		})
	}
}

// `kubectl version` agrees with the server on the release.
func TestKubectlVersion(t *testing.T) {
	out, err := shared.kubectl(t, kubectlBin, "", "version")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "Server Version: "+k8sVersion) || !strings.Contains(out, "Client Version: "+k8sVersion) {
		t.Errorf("kubectl version:\n%s", out)
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("version skew warning with the matching kubectl:\n%s", out)
	}
}
