package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// eventually polls cond every 10 ms for up to a minute.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, time.Minute, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func deployment(name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func TestDeploymentController(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	d, err := c.AppsV1().Deployments(ns).Create(t.Context(), deployment("web", "nginx:1.27", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pods *corev1.PodList
	eventually(t, "3 pods", func(ctx context.Context) (bool, error) {
		pods, err = c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(pods.Items) == 3, nil
	})
	rss, err := c.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(rss.Items) != 1 {
		t.Fatalf("replica sets: %v %v", err, rss)
	}
	rs := rss.Items[0]
	hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if hash == "" || rs.Name != "web-"+hash || len(rs.OwnerReferences) != 1 || rs.OwnerReferences[0].UID != d.UID ||
		!ptr.Deref(rs.OwnerReferences[0].Controller, false) || !ptr.Deref(rs.OwnerReferences[0].BlockOwnerDeletion, false) {
		t.Errorf("replica set %s: labels %v owners %+v", rs.Name, rs.Labels, rs.OwnerReferences)
	}
	for _, p := range pods.Items {
		if p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != rs.UID ||
			!strings.HasPrefix(p.Name, rs.Name+"-") {
			t.Errorf("pod %s: labels %v owners %+v", p.Name, p.Labels, p.OwnerReferences)
		}
		// ServiceAccount admission is on with the serviceaccount controller.
		if p.Spec.ServiceAccountName != "default" || len(p.Spec.Volumes) != 1 || !strings.HasPrefix(p.Spec.Volumes[0].Name, "kube-api-access-") {
			t.Errorf("pod %s: serviceAccountName %q volumes %v", p.Name, p.Spec.ServiceAccountName, p.Spec.Volumes)
		}
	}

	// The simulated kubelet runs the pods; the deployment reports them
	// ready, and its conditions, as kube-controller-manager does.
	eventually(t, "deployment available", func(ctx context.Context) (bool, error) {
		d, err = c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 3 && d.Status.AvailableReplicas == 3 && d.Status.UpdatedReplicas == 3 &&
			d.Status.ObservedGeneration == d.Generation, nil
	})
	conditions := map[appsv1.DeploymentConditionType]appsv1.DeploymentCondition{}
	for _, cond := range d.Status.Conditions {
		conditions[cond.Type] = cond
	}
	if a := conditions[appsv1.DeploymentAvailable]; a.Status != corev1.ConditionTrue || a.Reason != "MinimumReplicasAvailable" || a.Message != "Deployment has minimum availability." {
		t.Errorf("Available condition: %+v", a)
	}
	if p := conditions[appsv1.DeploymentProgressing]; p.Status != corev1.ConditionTrue || p.Reason != "NewReplicaSetAvailable" || p.Message != fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs.Name) {
		t.Errorf("Progressing condition: %+v", p)
	}
	// The deployment controller's events.
	eventually(t, "ScalingReplicaSet event", func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,reason=ScalingReplicaSet"})
		return err == nil && len(evs.Items) > 0 && evs.Items[0].Source.Component == "deployment-controller" &&
			evs.Items[0].Message == fmt.Sprintf("Scaled up replica set %s from 0 to 3", rs.Name), nil
	})

	// Scale to 1: two pods go.
	if _, err := c.AppsV1().Deployments(ns).Patch(t.Context(), "web", types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "scaled to 1", func(ctx context.Context) (bool, error) {
		l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(l.Items) == 1, nil
	})

	// A new image rolls out a new ReplicaSet (RollingUpdate).
	if _, err := c.AppsV1().Deployments(ns).Patch(t.Context(), "web", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var newRS appsv1.ReplicaSet
	eventually(t, "new replica set", func(ctx context.Context) (bool, error) {
		l, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 2 {
			return false, nil
		}
		for _, r := range l.Items {
			if r.Spec.Template.Spec.Containers[0].Image == "nginx:1.28" {
				newRS = r
				return ptr.Deref(r.Spec.Replicas, 0) == 1, nil
			}
		}
		return false, nil
	})
	if newRS.Annotations["deployment.kubernetes.io/revision"] != "2" {
		t.Errorf("new replica set revision %q", newRS.Annotations["deployment.kubernetes.io/revision"])
	}
	// Its pod becomes ready, the old one is scaled away.
	eventually(t, "rollout", func(ctx context.Context) (bool, error) {
		old, err := c.AppsV1().ReplicaSets(ns).Get(ctx, rs.Name, metav1.GetOptions{})
		return err == nil && ptr.Deref(old.Spec.Replicas, -1) == 0, nil
	})
}

// ownedBy is an ownerReference to the deployment.
func ownedBy(d *appsv1.Deployment) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, BlockOwnerDeletion: ptr.To(true)}}
}

// withDependents creates a deployment and the objects the first user gives
// an ownerReference to it: Service, PVC, PDB, ServiceAccount, HTTPRoute.
func withDependents(t testing.TB, c kubernetes.Interface, dyn interface {
	Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error)
}, ns, name string) *appsv1.Deployment {
	ctx := context.Background()
	d, err := c.AppsV1().Deployments(ns).Create(ctx, deployment(name, "nginx:1.27", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owners := ownedBy(d)
	meta := metav1.ObjectMeta{Name: name, OwnerReferences: owners}
	if _, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: meta, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: meta, Spec: policyv1.PodDisruptionBudgetSpec{
		MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gatewayv1.SchemeGroupVersion.String(), "kind": "HTTPRoute",
		"metadata": map[string]any{"name": name, "ownerReferences": []any{map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment", "name": d.Name, "uid": string(d.UID), "blockOwnerDeletion": true}}},
		"spec": map[string]any{"parentRefs": []any{map[string]any{"name": "gateway"}}},
	}}
	if _, err := dyn.Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return d
}

// remaining lists which of the deployment's family still exist.
func remaining(ctx context.Context, t testing.TB, c kubernetes.Interface, dyn interface {
	Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
}, ns, name string) []string {
	var left []string
	check := func(kind string, err error) {
		if err == nil {
			left = append(left, kind)
		} else if !apierrors.IsNotFound(err) {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	_, err := c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	check("Deployment", err)
	rss, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err == nil && len(rss.Items) > 0 {
		left = append(left, "ReplicaSet")
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err == nil && len(pods.Items) > 0 {
		left = append(left, "Pod")
	}
	_, err = c.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	check("Service", err)
	_, err = c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	check("PersistentVolumeClaim", err)
	_, err = c.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
	check("PodDisruptionBudget", err)
	_, err = c.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	check("ServiceAccount", err)
	_, err = dyn.Get(ctx, name, metav1.GetOptions{})
	check("HTTPRoute", err)
	sort.Strings(left)
	return left
}

func TestGarbageCollection(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	routes := shared.dynamic(t).Resource(gatewayv1.SchemeGroupVersion.WithResource("httproutes")).Namespace(ns)

	t.Run("background", func(t *testing.T) {
		withDependents(t, c, routes, ns, "bg")
		eventually(t, "pods", func(ctx context.Context) (bool, error) {
			return strings.Contains(strings.Join(remaining(ctx, t, c, routes, ns, "bg"), ","), "Pod"), nil
		})
		if err := c.AppsV1().Deployments(ns).Delete(t.Context(), "bg", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "everything gone", func(ctx context.Context) (bool, error) {
			return len(remaining(ctx, t, c, routes, ns, "bg")) == 0, nil
		})
	})

	t.Run("foreground", func(t *testing.T) {
		d := withDependents(t, c, routes, ns, "fg")
		// A dependent that holds on (a finalizer of its own) keeps the owner.
		holder := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fg-holder", OwnerReferences: ownedBy(d), Finalizers: []string{"example.com/hold"}}}
		if _, err := c.CoreV1().ConfigMaps(ns).Create(t.Context(), holder, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.AppsV1().Deployments(ns).Delete(t.Context(), "fg", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "dependents gone but the holder", func(ctx context.Context) (bool, error) {
			return strings.Join(remaining(ctx, t, c, routes, ns, "fg"), ",") == "Deployment", nil
		})
		owner, err := c.AppsV1().Deployments(ns).Get(t.Context(), "fg", metav1.GetOptions{})
		if err != nil || owner.DeletionTimestamp == nil || len(owner.Finalizers) != 1 || owner.Finalizers[0] != metav1.FinalizerDeleteDependents {
			t.Fatalf("owner during foreground deletion: %v %+v", err, owner.ObjectMeta)
		}
		if _, err := c.CoreV1().ConfigMaps(ns).Patch(t.Context(), "fg-holder", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "owner gone", func(ctx context.Context) (bool, error) {
			return len(remaining(ctx, t, c, routes, ns, "fg")) == 0, nil
		})
	})

	t.Run("orphan", func(t *testing.T) {
		withDependents(t, c, routes, ns, "or")
		// Ready pods: the kubelet has done writing their status.
		eventually(t, "pods ready", func(ctx context.Context) (bool, error) {
			d, err := c.AppsV1().Deployments(ns).Get(ctx, "or", metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == 2, nil
		})
		if err := c.AppsV1().Deployments(ns).Delete(t.Context(), "or", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationOrphan)}); err != nil {
			t.Fatal(err)
		}
		want := "HTTPRoute,PersistentVolumeClaim,Pod,PodDisruptionBudget,ReplicaSet,Service,ServiceAccount"
		eventually(t, "owner gone, dependents left", func(ctx context.Context) (bool, error) {
			return strings.Join(remaining(ctx, t, c, routes, ns, "or"), ",") == want, nil
		})
		eventually(t, "ownerReferences removed", func(ctx context.Context) (bool, error) {
			svc, err1 := c.CoreV1().Services(ns).Get(ctx, "or", metav1.GetOptions{})
			rs, err2 := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=or"})
			route, err3 := routes.Get(ctx, "or", metav1.GetOptions{})
			return err1 == nil && err2 == nil && err3 == nil && len(svc.OwnerReferences) == 0 &&
				len(rs.Items) == 1 && len(rs.Items[0].OwnerReferences) == 0 && len(route.GetOwnerReferences()) == 0, nil
		})
	})
}

func TestNamespaceDeletion(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	routes := shared.dynamic(t).Resource(gatewayv1.SchemeGroupVersion.WithResource("httproutes")).Namespace(ns)
	withDependents(t, c, routes, ns, "app")
	if _, err := c.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Namespaces().Delete(t.Context(), ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "namespace gone", func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

func TestDisruptionBudgetStatus(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	if _, err := c.AppsV1().Deployments(ns).Create(t.Context(), deployment("db", "postgres:17", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PolicyV1().PodDisruptionBudgets(ns).Create(t.Context(), &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "3 pods", func(ctx context.Context) (bool, error) {
		l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=db"})
		return err == nil && len(l.Items) == 3, nil
	})
	status := func(healthy, desired, allowed, expected int32) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			pdb, err := c.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "db", metav1.GetOptions{})
			s := pdb.Status
			return err == nil && s.CurrentHealthy == healthy && s.DesiredHealthy == desired &&
				s.DisruptionsAllowed == allowed && s.ExpectedPods == expected && s.ObservedGeneration == pdb.Generation, nil
		}
	}
	// The kubelet makes the three pods ready.
	eventually(t, "all healthy", status(3, 2, 1, 3))
	// Scaling down to two leaves no disruption allowed.
	if _, err := c.AppsV1().Deployments(ns).Patch(t.Context(), "db", types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two healthy", status(2, 2, 0, 2))
	// A pod that is not ready (a readiness probe that never passes in time) counts as unhealthy.
	probed := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "slow", Labels: map[string]string{"app": "db"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "postgres:17",
			ReadinessProbe: &corev1.Probe{InitialDelaySeconds: 3600, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}}},
	}
	if _, err := c.CoreV1().Pods(ns).Create(t.Context(), probed, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an unready pod", status(2, 2, 0, 3))
}

// --controllers=none is envtest: objects stay exactly as written.
func TestNoControllers(t *testing.T) {
	s := startTestServer(t, "--controllers=none", "--gateway-api=false")
	c := s.client(t)
	if _, err := c.AppsV1().Deployments("default").Create(t.Context(), deployment("web", "nginx", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod is admitted without a ServiceAccount (the admission plugin is off).
	p, err := c.CoreV1().Pods("default").Create(t.Context(), pod("lonely", nil), metav1.CreateOptions{})
	if err != nil || p.Spec.ServiceAccountName != "" {
		t.Fatalf("pod without controllers: %v %q", err, p.Spec.ServiceAccountName)
	}
	if sas, err := c.CoreV1().ServiceAccounts("default").List(t.Context(), metav1.ListOptions{}); err != nil || len(sas.Items) != 0 {
		t.Errorf("service accounts appeared: %v %v", err, sas)
	}
	// Give controllers, if any ran, ample time: nothing may change.
	time.Sleep(time.Second)
	rss, err := c.AppsV1().ReplicaSets("default").List(t.Context(), metav1.ListOptions{})
	if err != nil || len(rss.Items) != 0 {
		t.Errorf("replica sets appeared without controllers: %v %d", err, len(rss.Items))
	}
	d, err := c.AppsV1().Deployments("default").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil || d.Status.ObservedGeneration != 0 || len(d.Status.Conditions) != 0 {
		t.Errorf("deployment status changed without controllers: %v %+v", err, d.Status)
	}
}

// A claim of the default StorageClass is bound to a volume made for it;
// the volume goes with the claim.
func TestVolumeProvisioning(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	sc, err := c.StorageV1().StorageClasses().Get(t.Context(), "standard", metav1.GetOptions{})
	if err != nil || sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Fatalf("default StorageClass: %v %+v", err, sc)
	}
	claim, err := c.CoreV1().PersistentVolumeClaims(ns).Create(t.Context(), &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// DefaultStorageClass admission gave it the default class.
	if ptr.Deref(claim.Spec.StorageClassName, "") != "standard" {
		t.Errorf("storageClassName %v", claim.Spec.StorageClassName)
	}
	var pvName string
	eventually(t, "claim bound", func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.ClaimBound {
			return false, nil
		}
		pvName = got.Spec.VolumeName
		return got.Status.Capacity.Storage().String() == "2Gi", nil
	})
	pv, err := c.CoreV1().PersistentVolumes().Get(t.Context(), pvName, metav1.GetOptions{})
	if err != nil || pv.Status.Phase != corev1.VolumeBound || pv.Spec.ClaimRef.UID != claim.UID || pv.Spec.StorageClassName != "standard" {
		t.Fatalf("volume: %v %+v", err, pv)
	}
	if err := c.CoreV1().PersistentVolumeClaims(ns).Delete(t.Context(), "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "volume deleted with its claim", func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// '*,-garbagecollector' runs everything but the garbage collector.
func TestControllersWithoutGarbageCollector(t *testing.T) {
	s := startTestServer(t, "--controllers=*,-garbagecollector", "--gateway-api=false")
	c := s.client(t)
	if _, err := c.AppsV1().Deployments("default").Create(t.Context(), deployment("web", "nginx", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replica set", func(ctx context.Context) (bool, error) {
		l, err := c.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 1, nil
	})
	if err := c.AppsV1().Deployments("default").Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // with a garbage collector the ReplicaSet would be gone in milliseconds
	if l, err := c.AppsV1().ReplicaSets("default").List(t.Context(), metav1.ListOptions{}); err != nil || len(l.Items) != 1 {
		t.Errorf("replica sets after deleting their deployment without GC: %v %v", err, l)
	}
}

// The job controller: a Job's pod succeeds (set here, as a kubelet would), the Job completes.
func TestJobController(t *testing.T) {
	c := shared.client(t)
	ns := newNamespace(t, c)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "once"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "run", Image: "busybox", Command: []string{"true"}}},
		}}},
	}
	if _, err := c.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The simulated kubelet runs its pod to completion.
	eventually(t, "job complete", func(ctx context.Context) (bool, error) {
		j, err := c.BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range j.Status.Conditions {
			if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
				return j.Status.Succeeded == 1, nil
			}
		}
		return false, nil
	})
}
