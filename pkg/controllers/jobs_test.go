package controllers

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// TestJobsBusy checks what keeps settle waiting for the Job controller.
func TestJobsBusy(t *testing.T) {
	job := func(mutate func(*batchv1.Job)) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "migrate", UID: "job-uid"},
			Spec: batchv1.JobSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "job-uid"}}}}
		mutate(j)
		return j
	}
	pod := func(phase corev1.PodPhase, finalizer bool, owner types.UID) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "migrate-abc", Labels: map[string]string{"batch.kubernetes.io/controller-uid": "job-uid"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "migrate", UID: owner, Controller: ptr.To(true)}}},
			Status: corev1.PodStatus{Phase: phase}}
		if finalizer {
			p.Finalizers = []string{batchv1.JobTrackingFinalizer}
		}
		return p
	}
	done := func(t batchv1.JobConditionType) func(*batchv1.Job) {
		return func(j *batchv1.Job) {
			j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue})
		}
	}
	for _, tc := range []struct {
		name string
		job  *batchv1.Job
		pod  *corev1.Pod
		busy string
	}{
		{"running pod", job(func(*batchv1.Job) {}), pod(corev1.PodRunning, true, "job-uid"), ""},
		{"finished pod not counted", job(func(*batchv1.Job) {}), pod(corev1.PodSucceeded, true, "job-uid"), "pod migrate-abc finished"},
		{"finished pod counted", job(func(j *batchv1.Job) { j.Status.Succeeded = 1 }), pod(corev1.PodSucceeded, false, "job-uid"), ""},
		{"another job's pod", job(func(*batchv1.Job) {}), pod(corev1.PodFailed, true, "other"), ""},
		{"uncounted", job(func(j *batchv1.Job) {
			j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Failed: []types.UID{"p"}}
		}), nil, "not counted yet"},
		{"success met, not complete", job(done(batchv1.JobSuccessCriteriaMet)), nil, "final condition not set"},
		{"complete", job(func(j *batchv1.Job) { done(batchv1.JobSuccessCriteriaMet)(j); done(batchv1.JobComplete)(j) }), nil, ""},
		{"failure target, not failed", job(done(batchv1.JobFailureTarget)), nil, "final condition not set"},
	} {
		jobs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		if err := jobs.Add(tc.job); err != nil {
			t.Fatal(err)
		}
		if tc.pod != nil {
			if err := pods.Add(tc.pod); err != nil {
				t.Fatal(err)
			}
		}
		got := jobsBusy(batchlisters.NewJobLister(jobs), corelisters.NewPodLister(pods))()
		if (got == "") != (tc.busy == "") || !strings.Contains(got, tc.busy) {
			t.Errorf("%s: busy %q, want %q", tc.name, got, tc.busy)
		}
	}
}
