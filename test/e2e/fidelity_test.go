package e2e

import (
	"net"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// checkPodSpecDefaults checks what kube-apiserver's defaulting
// (pkg/apis/core/v1/defaults.go) adds to a minimal pod spec.
func checkPodSpecDefaults(t *testing.T, what string, spec corev1.PodSpec) {
	t.Helper()
	if spec.RestartPolicy != corev1.RestartPolicyAlways || spec.DNSPolicy != corev1.DNSClusterFirst ||
		spec.SchedulerName != corev1.DefaultSchedulerName || ptr.Deref(spec.TerminationGracePeriodSeconds, 0) != 30 ||
		spec.SecurityContext == nil {
		t.Errorf("%s: pod spec defaults: restartPolicy=%q dnsPolicy=%q schedulerName=%q grace=%v securityContext=%v",
			what, spec.RestartPolicy, spec.DNSPolicy, spec.SchedulerName, spec.TerminationGracePeriodSeconds, spec.SecurityContext)
	}
	c := spec.Containers[0]
	if c.TerminationMessagePath != "/dev/termination-log" || c.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
		t.Errorf("%s: container termination message defaults: %q %q", what, c.TerminationMessagePath, c.TerminationMessagePolicy)
	}
	wantPull := corev1.PullIfNotPresent
	if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
		wantPull = corev1.PullAlways
	}
	if c.ImagePullPolicy != wantPull {
		t.Errorf("%s: imagePullPolicy for %q = %q, want %q", what, c.Image, c.ImagePullPolicy, wantPull)
	}
}

func TestDefaulting(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	ns := newNamespace(t, c)
	labels := map[string]string{"app": "web"}

	// Deployment.
	d, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(d.Spec.Replicas, 0) != 1 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.String() != "25%" ||
		d.Spec.Strategy.RollingUpdate.MaxSurge.String() != "25%" || ptr.Deref(d.Spec.RevisionHistoryLimit, 0) != 10 ||
		ptr.Deref(d.Spec.ProgressDeadlineSeconds, 0) != 600 || d.Generation != 1 {
		t.Errorf("deployment defaults: %+v generation %d", d.Spec, d.Generation)
	}
	checkPodSpecDefaults(t, "deployment template", d.Spec.Template.Spec)
	if len(d.ManagedFields) != 1 || d.ManagedFields[0].Operation != metav1.ManagedFieldsOperationUpdate {
		t.Errorf("managed fields: %+v", d.ManagedFields)
	}

	// Pod: defaulting plus the admission chain (Priority, DefaultTolerationSeconds).
	p, err := c.CoreV1().Pods(ns).Create(ctx, pod("p", labels), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkPodSpecDefaults(t, "pod", p.Spec)
	if ptr.Deref(p.Spec.Priority, -1) != 0 || ptr.Deref(p.Spec.PreemptionPolicy, "") != corev1.PreemptLowerPriority ||
		!ptr.Deref(p.Spec.EnableServiceLinks, false) {
		t.Errorf("pod priority=%v preemptionPolicy=%v enableServiceLinks=%v", p.Spec.Priority, p.Spec.PreemptionPolicy, p.Spec.EnableServiceLinks)
	}
	tolerations := map[string]bool{}
	for _, tol := range p.Spec.Tolerations {
		if tol.Operator == corev1.TolerationOpExists && tol.Effect == corev1.TaintEffectNoExecute && ptr.Deref(tol.TolerationSeconds, 0) == 300 {
			tolerations[tol.Key] = true
		}
	}
	if !tolerations["node.kubernetes.io/not-ready"] || !tolerations["node.kubernetes.io/unreachable"] || len(p.Spec.Tolerations) != 2 {
		t.Errorf("pod tolerations: %+v", p.Spec.Tolerations)
	}
	if p.Status.Phase != corev1.PodPending || p.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("pod status: phase %q qosClass %q", p.Status.Phase, p.Status.QOSClass)
	}

	// Service: ClusterIP from 10.96.0.0/12, single stack IPv4, TCP, targetPort = port.
	svc, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, serviceRange, _ := net.ParseCIDR("10.96.0.0/12")
	ip := net.ParseIP(svc.Spec.ClusterIP)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || ip == nil || !serviceRange.Contains(ip) || ip.String() == "10.96.0.1" ||
		len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != svc.Spec.ClusterIP ||
		len(svc.Spec.IPFamilies) != 1 || svc.Spec.IPFamilies[0] != corev1.IPv4Protocol ||
		ptr.Deref(svc.Spec.IPFamilyPolicy, "") != corev1.IPFamilyPolicySingleStack ||
		svc.Spec.SessionAffinity != corev1.ServiceAffinityNone ||
		ptr.Deref(svc.Spec.InternalTrafficPolicy, "") != corev1.ServiceInternalTrafficPolicyCluster ||
		svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP || svc.Spec.Ports[0].TargetPort != intstr.FromInt32(80) {
		t.Errorf("service defaults: %+v", svc.Spec)
	}
	// The allocated ClusterIP has its IPAddress object, as with the upstream allocator.
	if _, err := c.NetworkingV1().IPAddresses().Get(ctx, svc.Spec.ClusterIP, metav1.GetOptions{}); err != nil {
		t.Errorf("IPAddress for %s: %v", svc.Spec.ClusterIP, err)
	}

	// PersistentVolumeClaim.
	pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// DefaultStorageClass admission gives it the default class, `standard`.
	if ptr.Deref(pvc.Spec.VolumeMode, "") != corev1.PersistentVolumeFilesystem || pvc.Status.Phase != corev1.ClaimPending ||
		len(pvc.Finalizers) != 1 || pvc.Finalizers[0] != "kubernetes.io/pvc-protection" || ptr.Deref(pvc.Spec.StorageClassName, "") != "standard" {
		t.Errorf("pvc: volumeMode %v phase %q finalizers %v class %v", pvc.Spec.VolumeMode, pvc.Status.Phase, pvc.Finalizers, pvc.Spec.StorageClassName)
	}

	// PodDisruptionBudget: nothing defaulted in spec.
	pdb, err := c.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pdb.Spec.MaxUnavailable != nil || pdb.Spec.UnhealthyPodEvictionPolicy != nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Generation != 1 {
		t.Errorf("pdb: %+v", pdb.Spec)
	}

	// Ingress: no default class exists, so none is set.
	prefix := networkingv1.PathTypePrefix
	ing, err := c.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "web.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ing.Spec.IngressClassName != nil || ing.Generation != 1 {
		t.Errorf("ingress: class %v generation %d", ing.Spec.IngressClassName, ing.Generation)
	}

	// ServiceAccount, ConfigMap, Secret.
	sa, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sa.Secrets) != 0 || sa.AutomountServiceAccountToken != nil {
		t.Errorf("serviceaccount: %+v", sa)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sec, err := c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != corev1.SecretTypeOpaque || string(sec.Data["k"]) != "v" || sec.StringData != nil {
		t.Errorf("secret: type %q data %v stringData %v", sec.Type, sec.Data, sec.StringData)
	}
}

// wantInvalid checks a 422 and its message, as upstream validation words it.
func wantInvalid(t *testing.T, what string, err error, message string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Errorf("%s: got %v, want 422 Invalid", what, err)
		return
	}
	if got := err.Error(); got != message && !(strings.HasSuffix(message, "…") && strings.HasPrefix(got, strings.TrimSuffix(message, "…"))) {
		t.Errorf("%s:\n got: %s\nwant: %s", what, got, message)
	}
}

func TestValidation(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	ns := newNamespace(t, c)
	labels := map[string]string{"app": "web"}

	_, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "nocontainers"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}},
		},
	}, metav1.CreateOptions{})
	wantInvalid(t, "deployment without containers", err,
		`Deployment.apps "nocontainers" is invalid: spec.template.spec.containers: Required value`)

	_, err = c.CoreV1().Pods(ns).Create(ctx, pod("BadName", nil), metav1.CreateOptions{})
	wantInvalid(t, "uppercase pod name", err,
		`Pod "BadName" is invalid: metadata.name: Invalid value: "BadName": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`)

	_, err = c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-port"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 70000, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	wantInvalid(t, "service port 70000", err,
		`Service "bad-port" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive`)

	_, err = c.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "both"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
		},
	}, metav1.CreateOptions{})
	wantInvalid(t, "pdb with minAvailable and maxUnavailable", err,
		`PodDisruptionBudget.policy "both" is invalid: spec: Invalid value: …`)
	if err != nil && !strings.HasSuffix(err.Error(), ": minAvailable and maxUnavailable cannot be both set") {
		t.Errorf("pdb message: %v", err)
	}

	// Pod spec updates outside the mutable fields are refused.
	if _, err := c.CoreV1().Pods(ns).Create(ctx, pod("immutable", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The kubelet writes the pod's status meanwhile: retry on conflicts.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.CoreV1().Pods(ns).Get(ctx, "immutable", metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		_, err = c.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
		return err
	})
	wantInvalid(t, "pod restartPolicy update", err,
		`Pod "immutable" is invalid: spec: Forbidden: pod updates may not change fields other than `+"`spec.containers[*].image`"+`…`)
	// The image is one of the mutable fields.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.CoreV1().Pods(ns).Get(ctx, "immutable", metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Spec.Containers[0].Image = "nginx:1.28"
		_, err = c.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Errorf("pod image update: %v", err)
	}
}
