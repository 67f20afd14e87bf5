package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// soakDuration is how long the soak tests run: MOCKERNETES_SOAK (a Go
// duration; `make soak` sets a minute), else short.
func soakDuration(t *testing.T, short time.Duration) time.Duration {
	if v := os.Getenv("MOCKERNETES_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("MOCKERNETES_SOAK=%q: %v", v, err)
		}
		return d
	}
	return short
}

// Fifty clients mix every verb on one server with its controllers and
// kubelet running: nothing answers 5xx, nothing deadlocks (the server
// answers and settles afterwards), and, as `make test` runs this package,
// the race detector stays silent.
func TestMixedVerbs(t *testing.T) {
	duration := soakDuration(t, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), duration+3*time.Minute)
	defer cancel()
	srv, _, rc := runServer(t, ctx)
	if err := srv.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	c := kubernetes.NewForConfigOrDie(rc)
	ns := "soak"
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var ops, expected atomic.Int64
	var mu sync.Mutex
	failures := map[string]int{}
	check := func(op string, err error) {
		ops.Add(1)
		var status apierrors.APIStatus
		switch {
		case err == nil:
		case errors.As(err, &status) && status.Status().Code < 500:
			expected.Add(1) // conflicts, not found, already exists: the race of fifty clients
		case ctx.Err() != nil:
		default:
			mu.Lock()
			failures[op+": "+err.Error()]++
			mu.Unlock()
		}
	}
	until := time.Now().Add(duration)
	var clients sync.WaitGroup
	for w := range 50 {
		clients.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			cms := c.CoreV1().ConfigMaps(ns)
			for i := 0; time.Now().Before(until); i++ {
				name := fmt.Sprintf("cm-%d", r.IntN(40))
				switch op := r.IntN(14); op {
				case 0:
					_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"w": fmt.Sprint(w % 5)}}}, metav1.CreateOptions{})
					check("create", err)
				case 1:
					_, err := cms.Get(ctx, name, metav1.GetOptions{})
					check("get", err)
				case 2:
					cm, err := cms.Get(ctx, name, metav1.GetOptions{})
					if err == nil {
						cm.Data = map[string]string{"i": fmt.Sprint(i)}
						_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
					}
					check("update", err)
				case 3:
					_, err := cms.Patch(ctx, name, types.MergePatchType, []byte(`{"data":{"m":"`+fmt.Sprint(i)+`"}}`), metav1.PatchOptions{})
					check("merge patch", err)
				case 4:
					_, err := cms.Patch(ctx, name, types.JSONPatchType, []byte(`[{"op":"add","path":"/metadata/labels/j","value":"x"}]`), metav1.PatchOptions{})
					check("json patch", err)
				case 5:
					_, err := cms.Patch(ctx, name, types.StrategicMergePatchType, []byte(`{"metadata":{"annotations":{"s":"`+fmt.Sprint(i)+`"}}}`), metav1.PatchOptions{})
					check("strategic patch", err)
				case 6:
					_, err := cms.Patch(ctx, name, types.ApplyPatchType, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"`+name+`"},"data":{"a":"`+fmt.Sprint(w)+`"}}`),
						metav1.PatchOptions{FieldManager: fmt.Sprintf("w%d", w), Force: ptr.To(true)})
					check("apply", err)
				case 7:
					check("delete", cms.Delete(ctx, name, metav1.DeleteOptions{}))
				case 8:
					_, err := cms.List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("w=%d", w%5), Limit: 10})
					check("list", err)
				case 9:
					wi, err := cms.Watch(ctx, metav1.ListOptions{})
					if err == nil {
						stop := time.AfterFunc(200*time.Millisecond, wi.Stop)
						for range wi.ResultChan() {
						}
						stop.Stop()
					}
					check("watch", err)
				case 10:
					check("deletecollection", cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: fmt.Sprintf("w=%d", w%5)}))
				case 11:
					d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("d-%d", r.IntN(10))}, Spec: appsv1.DeploymentSpec{
						Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "soak"}},
						Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "soak"}},
							Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}}}
					_, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
					check("create deployment", err)
				case 12:
					check("delete deployment", c.AppsV1().Deployments(ns).Delete(ctx, fmt.Sprintf("d-%d", r.IntN(10)), metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}))
				case 13:
					_, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
					check("list pods", err)
				}
			}
		})
	}
	clients.Wait()
	t.Logf("%d operations in %v, %d refused as expected (conflicts, not found, already exists)", ops.Load(), duration, expected.Load())
	for f, n := range failures {
		t.Errorf("%d× %s", n, f)
	}
	// Nothing is stuck: the server answers and the cluster settles.
	control, err := testcontrol.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := control.Settle(ctx, time.Minute); err != nil {
		t.Errorf("settle after the mix: %v", err)
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("the server after the mix: %v", err)
	}
}
