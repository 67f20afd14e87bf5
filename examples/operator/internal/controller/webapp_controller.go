/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"context"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	webappv1alpha1 "github.com/mockernetes/mockernetes/examples/operator/api/v1alpha1"
)

const (
	// NameLabel is the label that selects a WebApp's pods: its value is the WebApp's name.
	NameLabel = "app.kubernetes.io/name"
	// ManagedByLabel marks the objects this operator made.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedBy is ManagedByLabel's value.
	ManagedBy = "webapp-operator"

	// ConditionReady is the WebApp's condition that is True when all its replicas are ready.
	ConditionReady = "Ready"

	// containerName is the name of the WebApp's one container, and portName its port's.
	containerName = "web"
	portName      = "http"

	defaultReplicas int32 = 1
	defaultPort     int32 = 8080
)

// WebAppReconciler reconciles a WebApp object
type WebAppReconciler struct {
	client.Client
	Scheme *runtime.Scheme
}

// +kubebuilder:rbac:groups=webapp.example.com,resources=webapps,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=webapp.example.com,resources=webapps/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=webapp.example.com,resources=webapps/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete

// Reconcile is part of the main kubernetes reconciliation loop which aims to
// move the current state of the cluster closer to the desired state.
//
// For a WebApp it makes sure that a Deployment and a Service of the same name
// exist, owned by the WebApp (so that the garbage collector deletes them with
// it), and it copies the Deployment's ready replicas into the WebApp's status,
// with a Ready condition.
//
// For more details, check Reconcile and its Result here:
// - https://pkg.go.dev/sigs.k8s.io/controller-runtime@v0.25.2/pkg/reconcile
func (r *WebAppReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)

	webapp := &webappv1alpha1.WebApp{}
	if err := r.Get(ctx, req.NamespacedName, webapp); err != nil {
		// Deleted: the garbage collector removes what it owned.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !webapp.DeletionTimestamp.IsZero() {
		// Being deleted (foreground deletion): leave its dependents to the garbage collector.
		return ctrl.Result{}, nil
	}

	deployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: webapp.Name, Namespace: webapp.Namespace}}
	op, err := controllerutil.CreateOrUpdate(ctx, r.Client, deployment, func() error {
		r.mutateDeployment(webapp, deployment)
		return controllerutil.SetControllerReference(webapp, deployment, r.Scheme)
	})
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("reconciling Deployment: %w", err)
	}
	if op != controllerutil.OperationResultNone {
		log.Info("Deployment reconciled", "deployment", deployment.Name, "operation", op)
	}

	service := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: webapp.Name, Namespace: webapp.Namespace}}
	op, err = controllerutil.CreateOrUpdate(ctx, r.Client, service, func() error {
		r.mutateService(webapp, service)
		return controllerutil.SetControllerReference(webapp, service, r.Scheme)
	})
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("reconciling Service: %w", err)
	}
	if op != controllerutil.OperationResultNone {
		log.Info("Service reconciled", "service", service.Name, "operation", op)
	}

	return ctrl.Result{}, r.updateStatus(ctx, webapp, deployment)
}

// updateStatus copies the Deployment's ready replicas into the WebApp's
// status and sets its Ready condition. It patches the status only when it
// changed; a merge patch needs no resourceVersion, so it does not conflict
// with writes made since the WebApp was read.
func (r *WebAppReconciler) updateStatus(ctx context.Context, webapp *webappv1alpha1.WebApp, deployment *appsv1.Deployment) error {
	desired := replicasOf(webapp)
	ready := deployment.Status.ReadyReplicas

	original := webapp.DeepCopy()
	webapp.Status.ReadyReplicas = ready
	condition := metav1.Condition{
		Type:               ConditionReady,
		Status:             metav1.ConditionFalse,
		Reason:             "ReplicasNotReady",
		Message:            fmt.Sprintf("%d/%d replicas ready", ready, desired),
		ObservedGeneration: webapp.Generation,
	}
	if ready >= desired && deployment.Status.ObservedGeneration >= deployment.Generation {
		condition.Status, condition.Reason = metav1.ConditionTrue, "ReplicasReady"
	}
	meta.SetStatusCondition(&webapp.Status.Conditions, condition)

	if equality.Semantic.DeepEqual(original.Status, webapp.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, webapp, client.MergeFrom(original)); err != nil {
		return client.IgnoreNotFound(err)
	}
	return nil
}

// mutateDeployment sets the fields of the Deployment that the WebApp decides,
// and leaves the others (the API server's defaults) as they are, so that an
// unchanged WebApp makes no update.
func (r *WebAppReconciler) mutateDeployment(webapp *webappv1alpha1.WebApp, deployment *appsv1.Deployment) {
	labels := labelsFor(webapp)
	deployment.Labels = mergeLabels(deployment.Labels, labels)
	if deployment.Spec.Selector == nil { // immutable once created
		deployment.Spec.Selector = &metav1.LabelSelector{MatchLabels: selectorFor(webapp)}
	}
	deployment.Spec.Replicas = ptr.To(replicasOf(webapp))

	template := &deployment.Spec.Template
	template.Labels = mergeLabels(template.Labels, labels)
	if len(template.Spec.Containers) != 1 {
		template.Spec.Containers = []corev1.Container{{}}
	}
	container := &template.Spec.Containers[0]
	container.Name = containerName
	container.Image = webapp.Spec.Image
	container.Ports = []corev1.ContainerPort{{
		Name:          portName,
		ContainerPort: portOf(webapp),
		Protocol:      corev1.ProtocolTCP,
	}}
	if container.ReadinessProbe == nil {
		container.ReadinessProbe = &corev1.Probe{}
	}
	container.ReadinessProbe.ProbeHandler = corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{
			Path:   "/",
			Port:   intstr.FromString(portName),
			Scheme: corev1.URISchemeHTTP,
		},
	}
}

// mutateService sets the fields of the Service that the WebApp decides: a
// ClusterIP Service selecting the WebApp's pods, its port sent to the
// container's.
func (r *WebAppReconciler) mutateService(webapp *webappv1alpha1.WebApp, service *corev1.Service) {
	service.Labels = mergeLabels(service.Labels, labelsFor(webapp))
	service.Spec.Type = corev1.ServiceTypeClusterIP
	service.Spec.Selector = selectorFor(webapp)
	service.Spec.Ports = []corev1.ServicePort{{
		Name:       portName,
		Port:       portOf(webapp),
		TargetPort: intstr.FromString(portName),
		Protocol:   corev1.ProtocolTCP,
	}}
}

// selectorFor is the label selector of a WebApp's pods.
func selectorFor(webapp *webappv1alpha1.WebApp) map[string]string {
	return map[string]string{NameLabel: webapp.Name}
}

// labelsFor is the labels of the objects made for a WebApp.
func labelsFor(webapp *webappv1alpha1.WebApp) map[string]string {
	return map[string]string{NameLabel: webapp.Name, ManagedByLabel: ManagedBy}
}

// mergeLabels sets the labels from on into, keeping into's others (which
// users or other tools may have added).
func mergeLabels(into, from map[string]string) map[string]string {
	if into == nil {
		into = make(map[string]string, len(from))
	}
	maps.Copy(into, from)
	return into
}

func replicasOf(webapp *webappv1alpha1.WebApp) int32 {
	return ptr.Deref(webapp.Spec.Replicas, defaultReplicas)
}

func portOf(webapp *webappv1alpha1.WebApp) int32 {
	if webapp.Spec.Port == 0 {
		return defaultPort
	}
	return webapp.Spec.Port
}

// SetupWithManager sets up the controller with the Manager.
// It watches the WebApps, and the Deployments and Services they own: a change
// of those (a pod of the Deployment becoming ready, say) reconciles their WebApp.
func (r *WebAppReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&webappv1alpha1.WebApp{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Named("webapp").
		Complete(r)
}
