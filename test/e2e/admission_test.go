package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

func createNamespace(t *testing.T, c kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// kube-apiserver's default admission plugins, end to end, with upstream's
// messages: LimitRanger, ResourceQuota (and its controller), NamespaceLifecycle,
// DefaultStorageClass, PodSecurity.
func TestDefaultAdmissionPlugins(t *testing.T) {
	s := startTestServer(t)
	c := s.client(t)
	ctx := t.Context()
	poll := func(what string, cond func(context.Context) (bool, error)) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, cond); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}

	t.Run("LimitRanger", func(t *testing.T) {
		createNamespace(t, c, "limits", nil)
		if _, err := c.CoreV1().LimitRanges("limits").Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "cpu"},
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
				Default:        corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
				DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
			}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p, err := c.CoreV1().Pods("limits").Create(ctx, pod("defaulted", nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := p.Spec.Containers[0].Resources
		if r.Requests.Cpu().String() != "100m" || r.Limits.Cpu().String() != "500m" ||
			p.Annotations["kubernetes.io/limit-ranger"] != "LimitRanger plugin set: cpu request for container app; cpu limit for container app" {
			t.Errorf("the pod's resources %v and annotations %v", r, p.Annotations)
		}
	})

	t.Run("ResourceQuota", func(t *testing.T) {
		createNamespace(t, c, "quota", nil)
		if _, err := c.CoreV1().ResourceQuotas("quota").Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "one-pod"},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The quota controller computes status first; admission refuses
		// pods until it has.
		poll("the quota's status.hard", func(ctx context.Context) (bool, error) {
			q, err := c.CoreV1().ResourceQuotas("quota").Get(ctx, "one-pod", metav1.GetOptions{})
			return err == nil && q.Status.Hard.Pods().Value() == 1, nil
		})
		if _, err := c.CoreV1().Pods("quota").Create(ctx, pod("first", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := c.CoreV1().Pods("quota").Create(ctx, pod("second", nil), metav1.CreateOptions{})
		if want := `pods "second" is forbidden: exceeded quota: one-pod, requested: pods=1, used: pods=1, limited: pods=1`; !apierrors.IsForbidden(err) || err.Error() != want {
			t.Errorf("a second pod: %v, want %q", err, want)
		}
		poll("the quota's status.used", func(ctx context.Context) (bool, error) {
			q, err := c.CoreV1().ResourceQuotas("quota").Get(ctx, "one-pod", metav1.GetOptions{})
			return err == nil && q.Status.Used.Pods().Value() == 1, nil
		})
	})

	t.Run("NamespaceLifecycle", func(t *testing.T) {
		createNamespace(t, c, "doomed", nil)
		// A finalizer keeps the namespace terminating.
		if _, err := c.CoreV1().ConfigMaps("doomed").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := c.CoreV1().Pods("doomed").Create(ctx, pod("late", nil), metav1.CreateOptions{})
		if want := `pods "late" is forbidden: unable to create new content in namespace doomed because it is being terminated`; !apierrors.IsForbidden(err) || err.Error() != want {
			t.Errorf("a pod in a terminating namespace: %v, want %q", err, want)
		}
		_, err = c.CoreV1().Pods("nowhere").Create(ctx, pod("lost", nil), metav1.CreateOptions{})
		if want := `namespaces "nowhere" not found`; !apierrors.IsNotFound(err) || err.Error() != want {
			t.Errorf("a pod in a missing namespace: %v, want %q", err, want)
		}
		// Released, the namespace goes. (The namespace controller marks
		// the ConfigMap deleted meanwhile: an update can meet its write.)
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cm, err := c.CoreV1().ConfigMaps("doomed").Get(ctx, "held", metav1.GetOptions{})
			if err != nil {
				return err
			}
			cm.Finalizers = nil
			_, err = c.CoreV1().ConfigMaps("doomed").Update(ctx, cm, metav1.UpdateOptions{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		poll("the namespace's deletion", func(ctx context.Context) (bool, error) {
			_, err := c.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})

	t.Run("DefaultStorageClass", func(t *testing.T) {
		pvc, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "standard" {
			t.Errorf("the claim's class: %v", pvc.Spec.StorageClassName)
		}
	})

	t.Run("PodSecurity", func(t *testing.T) {
		createNamespace(t, c, "restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
		privileged := pod("priv", nil)
		yes := true
		privileged.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
		_, err := c.CoreV1().Pods("restricted").Create(ctx, privileged, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.HasPrefix(err.Error(), `pods "priv" is forbidden: violates PodSecurity "restricted:latest": privileged (container "app" must not set securityContext.privileged=true)`) {
			t.Errorf("a privileged pod in a restricted namespace: %v", err)
		}
	})
}

// --disable-admission-plugins and --enable-admission-plugins change the
// chain as kube-apiserver's flags do.
func TestAdmissionPluginFlags(t *testing.T) {
	s := startTestServer(t, "--disable-admission-plugins", "PodSecurity,LimitRanger", "--enable-admission-plugins", "AlwaysPullImages", "--controllers", "none")
	c := s.client(t)
	ctx := t.Context()
	createNamespace(t, c, "restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	privileged := pod("priv", nil)
	yes := true
	privileged.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	p, err := c.CoreV1().Pods("restricted").Create(ctx, privileged, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a privileged pod with PodSecurity disabled: %v", err)
	}
	if p.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways {
		t.Errorf("AlwaysPullImages enabled: the pull policy is %q", p.Spec.Containers[0].ImagePullPolicy)
	}
}
