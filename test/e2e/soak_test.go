package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// Churn leaves nothing behind: MOCKERNETES_SOAK_CYCLES create/delete
// cycles of ConfigMaps (one in ten a pod, run by the simulated kubelet
// and deleted) leave the server's RSS within a fifth and its goroutines
// where they were after the first tenth, and no object. What the server
// keeps on purpose is bounded in time, here to 5 s so that the first tenth
// of a long run already fills it: the pods' Events (--event-ttl) and the
// replaced versions (--history-window); at their defaults (an hour, five
// minutes) they grow the RSS for that long (docs/reliability.md). `make
// soak` runs it.
func TestChurn(t *testing.T) {
	cycles, _ := strconv.Atoi(os.Getenv("MOCKERNETES_SOAK_CYCLES"))
	if cycles < 1000 {
		t.Skip("MOCKERNETES_SOAK_CYCLES (at least 1000) not set: `make soak` runs this")
	}
	t.Parallel()
	s := startTestServer(t, "--gateway-api=false", "--event-ttl=5s", "--history-window=5s")
	c := s.client(t)
	control, err := testcontrol.New(s.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, c)
	ctx := t.Context()
	before, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run := func(from, to int) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := from + w; i < to; i += 8 {
					name := fmt.Sprintf("c%d", i)
					if i%10 == 0 {
						p := pod(name, nil)
						if _, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
							t.Error(err)
							return
						}
						_ = c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
						continue
					}
					cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"payload": strings.Repeat("x", 512)}}
					if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
						t.Error(err)
						return
					}
					if err := c.CoreV1().ConfigMaps(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := control.Settle(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	measure := func() (rss float64, goroutines int) {
		return rssMiB(t, s.cmd.Process.Pid), goroutinesOf(t, c)
	}
	start := time.Now()
	run(0, cycles/10)
	rss0, g0 := measure()
	run(cycles/10, cycles)
	rss1, g1 := measure()
	t.Logf("%d cycles in %v: RSS %.0f → %.0f MiB, goroutines %d → %d", cycles, time.Since(start).Round(time.Second), rss0, rss1, g0, g1)
	if g1 > g0+20 {
		t.Errorf("goroutines grew from %d to %d over the churn", g0, g1)
	}
	if cycles >= 50000 && rss1 > 1.2*rss0 {
		t.Errorf("RSS grew from %.0f to %.0f MiB over the churn", rss0, rss1)
	}
	// The history window holds: a watch from before the churn is too old.
	w, err := c.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: before.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-w.ResultChan()
	w.Stop()
	if status, ok := ev.Object.(*metav1.Status); ev.Type != watch.Error || !ok || status.Code != http.StatusGone {
		t.Errorf("a watch from resourceVersion %s, before the churn: %s %+v, want 410 Gone", before.ResourceVersion, ev.Type, ev.Object)
	}
	if left, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil || len(left.Items) != 1 { // kube-root-ca.crt
		t.Errorf("ConfigMaps left: %v %d", err, len(left.Items))
	}
}

// goroutinesOf reads the server's go_goroutines from /metrics.
func goroutinesOf(t *testing.T, c kubernetes.Interface) int {
	t.Helper()
	raw, err := c.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// A CronJob that forbids concurrent runs skips its next run while its Job
// still runs (a container sleeping 5 minutes), with the CronJob
// controller's event. Cron runs by the minute, so this takes up to two:
// `make soak` runs it (MOCKERNETES_SOAK_CRONJOB=1).
func TestCronJobForbid(t *testing.T) {
	if os.Getenv("MOCKERNETES_SOAK_CRONJOB") == "" {
		t.Skip("MOCKERNETES_SOAK_CRONJOB not set: `make soak` runs this")
	}
	t.Parallel()
	c := shared.client(t)
	ns := newNamespace(t, c)
	ctx := t.Context()
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "forbid"},
		Spec: batchv1.CronJobSpec{
			Schedule:          "* * * * *",
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "work", Image: "busybox:1.36", Command: []string{"sleep", "300"}}},
			}}}},
		},
	}
	if _, err := c.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		events, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=forbid,reason=JobAlreadyActive"})
		if err != nil {
			t.Fatal(err)
		}
		if len(events.Items) > 0 {
			if msg := events.Items[0].Message; msg != "Not starting job because prior execution is running and concurrency policy is Forbid" {
				t.Errorf("event: %q", msg)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no JobAlreadyActive event in 3 minutes")
		}
		time.Sleep(time.Second)
	}
	jobs, err := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 1 || jobs.Items[0].Status.Active != 1 {
		t.Errorf("jobs: %v %+v", err, jobs)
	}
}
