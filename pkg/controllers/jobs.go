package controllers

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// jobsBusy is settle's look at the Job controller's work. The controller
// batches a Job's pod changes and syncs the Job a second later
// (syncJobBatchPeriod), longer than settle's quiet window: without this, a
// settled cluster could still show a Job Running whose pod has finished. A
// Job is in progress while it has terminated pods it has not counted yet
// (in uncountedTerminatedPods, or a finished pod of its still holding the
// job-tracking finalizer), or has met its success or failure criteria
// without its final condition yet. A new pod after a failure waits for the
// Job's back-off, a delay the Job asked for: that is not waited for.
func jobsBusy(jobs batchlisters.JobLister, pods corelisters.PodLister) func() string {
	return func() string {
		all, err := jobs.List(labels.Everything())
		if err != nil {
			return ""
		}
		for _, job := range all {
			if why := jobBusy(job, pods); why != "" {
				return fmt.Sprintf("job %s/%s: %s", job.Namespace, job.Name, why)
			}
		}
		return ""
	}
}

func jobBusy(job *batchv1.Job, pods corelisters.PodLister) string {
	if u := job.Status.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
		return "terminated pods not counted yet"
	}
	condition := func(t batchv1.JobConditionType) bool {
		return slices.ContainsFunc(job.Status.Conditions, func(c batchv1.JobCondition) bool { return c.Type == t && c.Status == corev1.ConditionTrue })
	}
	finished := condition(batchv1.JobComplete) || condition(batchv1.JobFailed)
	if !finished && (condition(batchv1.JobSuccessCriteriaMet) || condition(batchv1.JobFailureTarget)) {
		return "its outcome is known, its final condition not set yet"
	}
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil || job.Spec.Selector == nil {
		return ""
	}
	owned, err := pods.Pods(job.Namespace).List(selector)
	if err != nil {
		return ""
	}
	for _, p := range owned {
		if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != job.UID {
			continue
		}
		if (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) && slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			return fmt.Sprintf("pod %s finished, not counted yet", p.Name)
		}
	}
	return ""
}
