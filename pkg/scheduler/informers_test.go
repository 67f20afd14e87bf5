package scheduler

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// TestWithoutFinishedPods checks that kube-scheduler's view of a shared
// factory shows what its filtered pod informer would: finished pods are
// neither listed nor delivered, and a pod that finishes is deleted.
func TestWithoutFinishedPods(t *testing.T) {
	pod := func(name string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Status: corev1.PodStatus{Phase: phase}}
	}
	client := fake.NewClientset(pod("done", corev1.PodSucceeded), pod("web", corev1.PodRunning))
	shared := informers.NewSharedInformerFactory(client, 0)
	view := withoutFinishedPods(shared)
	var mu sync.Mutex
	var seen []string
	record := func(what string) func(any) {
		return func(obj any) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, what+" "+obj.(*corev1.Pod).Name)
		}
	}
	if _, err := view.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    record("add"),
		UpdateFunc: func(_, obj any) { record("update")(obj) },
		DeleteFunc: record("delete"),
	}); err != nil {
		t.Fatal(err)
	}
	// Another component's handler on the same informer sees everything.
	var all []string
	if _, err := shared.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { mu.Lock(); all = append(all, obj.(*corev1.Pod).Name); mu.Unlock() },
	}); err != nil {
		t.Fatal(err)
	}
	typed := view.Core().V1().Pods().TypedInformer().GetTypedIndexer()
	lister := view.Core().V1().Pods().Lister()
	ctx := t.Context()
	shared.Start(ctx.Done())
	shared.WaitForCacheSync(ctx.Done())

	waitFor := func(want ...string) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return slices.Equal(seen, want), nil
		}); err != nil {
			mu.Lock()
			got := slices.Clone(seen)
			mu.Unlock()
			t.Fatalf("handler saw %q, want %q", got, want)
		}
	}
	waitFor("add web")
	// The other handler gets its events on a goroutine of its own.
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(all)
		return slices.Equal(all, []string{"done", "web"}), nil
	}); err != nil {
		mu.Lock()
		t.Errorf("the shared informer's own handler saw %q", all)
		mu.Unlock()
	}
	listed := func() []string {
		pods, err := lister.List(labels.Everything())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range pods {
			names = append(names, p.Name)
		}
		slices.Sort(names)
		return names
	}
	if got := listed(); !slices.Equal(got, []string{"web"}) {
		t.Errorf("listed %q, want only web", got)
	}
	if _, err := lister.Pods("default").Get("done"); err == nil {
		t.Error("the finished pod can be got")
	}
	if _, ok, _ := typed.GetByKey("default/done"); ok {
		t.Error("the typed indexer has the finished pod")
	}

	running := pod("web", corev1.PodRunning)
	running.Labels = map[string]string{"v": "2"}
	if _, err := client.CoreV1().Pods("default").Update(ctx, running, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("add web", "update web")
	if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, pod("web", corev1.PodFailed), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("add web", "update web", "delete web")
	if got := listed(); len(got) != 0 {
		t.Errorf("listed %q once it finished, want none", got)
	}
	// Deleting it now changes nothing in the view: it left already.
	if err := client.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod("next", corev1.PodPending), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("add web", "update web", "delete web", "add next")
}
