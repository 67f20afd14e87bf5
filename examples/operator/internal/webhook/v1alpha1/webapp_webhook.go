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

package v1alpha1

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	webappv1alpha1 "github.com/mockernetes/mockernetes/examples/operator/api/v1alpha1"
)

// nolint:unused
// log is for logging in this package.
var webapplog = logf.Log.WithName("webapp-resource")

// SetupWebAppWebhookWithManager registers the webhook for WebApp in the manager.
func SetupWebAppWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &webappv1alpha1.WebApp{}).
		WithValidator(&WebAppValidator{}).
		Complete()
}

// MaxReplicas is the most replicas a WebApp may ask for.
const MaxReplicas = 10

// +kubebuilder:webhook:path=/validate-webapp-example-com-v1alpha1-webapp,mutating=false,failurePolicy=fail,sideEffects=None,groups=webapp.example.com,resources=webapps,verbs=create;update,versions=v1alpha1,name=vwebapp-v1alpha1.kb.io,admissionReviewVersions=v1

// WebAppValidator struct is responsible for validating the WebApp resource
// when it is created, updated, or deleted.
//
// NOTE: The +kubebuilder:object:generate=false marker prevents controller-gen from generating DeepCopy methods,
// as this struct is used only for temporary operations and does not need to be deeply copied.
type WebAppValidator struct{}

// ValidateCreate implements admission.Validator so a webhook will be registered for the type WebApp.
func (v *WebAppValidator) ValidateCreate(_ context.Context, obj *webappv1alpha1.WebApp) (admission.Warnings, error) {
	webapplog.Info("Validation for WebApp upon creation", "name", obj.GetName())

	return nil, validateWebApp(obj)
}

// ValidateUpdate implements admission.Validator so a webhook will be registered for the type WebApp.
func (v *WebAppValidator) ValidateUpdate(_ context.Context, oldObj, newObj *webappv1alpha1.WebApp) (admission.Warnings, error) {
	webapplog.Info("Validation for WebApp upon update", "name", newObj.GetName())

	return nil, validateWebApp(newObj)
}

// ValidateDelete implements admission.Validator so a webhook will be registered for the type WebApp.
func (v *WebAppValidator) ValidateDelete(_ context.Context, obj *webappv1alpha1.WebApp) (admission.Warnings, error) {
	webapplog.Info("Validation for WebApp upon deletion", "name", obj.GetName())

	// Not registered for deletion (verbs=create;update): nothing to check.
	return nil, nil
}

// validateWebApp refuses a WebApp without an image or with more than
// MaxReplicas replicas. The error is an Invalid API error listing every
// problem, which the API server returns to the client as
//
//	admission webhook "vwebapp-v1alpha1.kb.io" denied the request: WebApp.webapp.example.com "name" is invalid: spec.replicas: Invalid value: 11: must be at most 10
func validateWebApp(webapp *webappv1alpha1.WebApp) error {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if webapp.Spec.Image == "" {
		errs = append(errs, field.Required(spec.Child("image"), "a container image is required"))
	}
	if r := webapp.Spec.Replicas; r != nil && *r > MaxReplicas {
		errs = append(errs, field.Invalid(spec.Child("replicas"), *r, fmt.Sprintf("must be at most %d", MaxReplicas)))
	}
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(webappv1alpha1.GroupVersion.WithKind("WebApp").GroupKind(), webapp.Name, errs)
}
