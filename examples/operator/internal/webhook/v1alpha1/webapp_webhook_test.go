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
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webappv1alpha1 "github.com/mockernetes/mockernetes/examples/operator/api/v1alpha1"
)

var _ = Describe("WebApp Webhook", func() {
	var (
		obj       *webappv1alpha1.WebApp
		oldObj    *webappv1alpha1.WebApp
		validator WebAppValidator
	)

	BeforeEach(func() {
		obj = &webappv1alpha1.WebApp{
			ObjectMeta: metav1.ObjectMeta{Name: "webapp", Namespace: "default"},
			Spec: webappv1alpha1.WebAppSpec{
				Image:    "nginx:1.27",
				Replicas: ptr.To[int32](3),
				Port:     8080,
			},
		}
		oldObj = obj.DeepCopy()
		validator = WebAppValidator{}
		Expect(validator).NotTo(BeNil(), "Expected validator to be initialized")
		Expect(oldObj).NotTo(BeNil(), "Expected oldObj to be initialized")
		Expect(obj).NotTo(BeNil(), "Expected obj to be initialized")
	})

	Context("When creating or updating WebApp under Validating Webhook", func() {
		It("Should admit creation if the image is set and replicas are at most 10", func() {
			Expect(validator.ValidateCreate(ctx, obj)).To(BeNil())
			obj.Spec.Replicas = ptr.To[int32](MaxReplicas)
			Expect(validator.ValidateCreate(ctx, obj)).To(BeNil())
			obj.Spec.Replicas = nil
			Expect(validator.ValidateCreate(ctx, obj)).To(BeNil())
		})

		It("Should deny creation if the image is empty", func() {
			obj.Spec.Image = ""
			_, err := validator.ValidateCreate(ctx, obj)
			Expect(err).To(MatchError(ContainSubstring("spec.image: Required value: a container image is required")))
		})

		It("Should deny creation if replicas are more than 10", func() {
			obj.Spec.Replicas = ptr.To[int32](11)
			_, err := validator.ValidateCreate(ctx, obj)
			Expect(err).To(MatchError(ContainSubstring("spec.replicas: Invalid value: 11: must be at most 10")))
		})

		It("Should validate updates correctly", func() {
			Expect(validator.ValidateUpdate(ctx, oldObj, obj)).To(BeNil())
			obj.Spec.Replicas = ptr.To[int32](11)
			_, err := validator.ValidateUpdate(ctx, oldObj, obj)
			Expect(err).To(HaveOccurred())
		})
	})

	// The same checks, made by the API server: it calls the webhook that
	// config/webhook/manifests.yaml registers, served by the manager that
	// webhook_suite_test.go starts.
	Context("When the API server calls the webhook", func() {
		const denied = `admission webhook "vwebapp-v1alpha1.kb.io" denied the request`

		It("Should admit a valid WebApp", func() {
			obj.Name = "valid"
			obj.Spec.Port = 0
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			DeferCleanup(func() {
				Expect(k8sClient.Delete(ctx, obj)).To(Succeed())
			})

			By("reading it back, its port defaulted by the CRD's schema")
			got := &webappv1alpha1.WebApp{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
			Expect(got.Spec.Image).To(Equal("nginx:1.27"))
			Expect(got.Spec.Replicas).To(HaveValue(BeEquivalentTo(3)))
			Expect(got.Spec.Port).To(BeEquivalentTo(8080))
		})

		It("Should refuse a WebApp with 11 replicas, with the webhook's message", func() {
			obj.Name = "too-many"
			obj.Spec.Replicas = ptr.To[int32](11)
			err := k8sClient.Create(ctx, obj)
			Expect(err).To(HaveOccurred())
			GinkgoWriter.Printf("the API server answered: %v\n", err)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "the webhook's Invalid status reaches the client: %v", err)
			Expect(err.Error()).To(ContainSubstring(denied))
			Expect(err.Error()).To(ContainSubstring("spec.replicas: Invalid value: 11: must be at most 10"))
		})

		It("Should refuse a WebApp with an empty image", func() {
			obj.Name = "no-image"
			obj.Spec.Image = ""
			err := k8sClient.Create(ctx, obj)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(denied))
			Expect(err.Error()).To(ContainSubstring("spec.image: Required value: a container image is required"))
		})

		It("Should refuse an update to 11 replicas", func() {
			obj.Name = "scaled"
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			DeferCleanup(func() {
				Expect(k8sClient.Delete(ctx, obj)).To(Succeed())
			})

			obj.Spec.Replicas = ptr.To[int32](11)
			err := k8sClient.Update(ctx, obj)
			Expect(err).To(MatchError(ContainSubstring("must be at most 10")))
		})
	})
})
