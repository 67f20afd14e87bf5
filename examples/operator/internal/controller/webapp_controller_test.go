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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	webappv1alpha1 "github.com/mockernetes/mockernetes/examples/operator/api/v1alpha1"
)

const (
	// timeout is how long the cluster gets to act: to run pods, to
	// garbage-collect them. It takes a few seconds; the margin is for slow CI.
	timeout = 30 * time.Second
	// interval is how often Eventually looks again.
	interval = 100 * time.Millisecond
)

var _ = Describe("WebApp Controller", func() {
	Context("When reconciling a resource", func() {
		const (
			resourceName      = "test-resource"
			resourceNamespace = "default"
		)

		ctx := context.Background()

		typeNamespacedName := types.NamespacedName{
			Name:      resourceName,
			Namespace: resourceNamespace,
		}
		webapp := &webappv1alpha1.WebApp{}

		BeforeEach(func() {
			By("creating the custom resource for the Kind WebApp")
			err := k8sClient.Get(ctx, typeNamespacedName, webapp)
			if err != nil && errors.IsNotFound(err) {
				resource := &webappv1alpha1.WebApp{
					ObjectMeta: metav1.ObjectMeta{
						Name:      resourceName,
						Namespace: resourceNamespace,
					},
					Spec: webappv1alpha1.WebAppSpec{
						Image: "nginx:1.27",
					},
				}
				Expect(k8sClient.Create(ctx, resource)).To(Succeed())
			}
		})

		AfterEach(func() {
			resource := &webappv1alpha1.WebApp{}
			err := k8sClient.Get(ctx, typeNamespacedName, resource)
			Expect(err).NotTo(HaveOccurred())

			By("Cleanup the specific resource instance WebApp")
			Expect(k8sClient.Delete(ctx, resource)).To(Succeed())
		})
		It("should successfully reconcile the resource", func() {
			By("Reconciling the created resource")
			controllerReconciler := &WebAppReconciler{
				Client: k8sClient,
				Scheme: k8sClient.Scheme(),
			}

			_, err := controllerReconciler.Reconcile(ctx, reconcile.Request{
				NamespacedName: typeNamespacedName,
			})
			Expect(err).NotTo(HaveOccurred())

			By("checking the Deployment and the Service it made, with the defaults filled in")
			Expect(k8sClient.Get(ctx, typeNamespacedName, webapp)).To(Succeed())
			deployment := &appsv1.Deployment{}
			Expect(k8sClient.Get(ctx, typeNamespacedName, deployment)).To(Succeed())
			Expect(metav1.IsControlledBy(deployment, webapp)).To(BeTrue())
			Expect(deployment.Spec.Replicas).To(HaveValue(BeEquivalentTo(1)))
			Expect(deployment.Spec.Template.Spec.Containers).To(HaveLen(1))
			Expect(deployment.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort).To(BeEquivalentTo(8080))
			service := &corev1.Service{}
			Expect(k8sClient.Get(ctx, typeNamespacedName, service)).To(Succeed())
			Expect(metav1.IsControlledBy(service, webapp)).To(BeTrue())

			By("checking that the WebApp is not Ready yet: its Deployment has just been made")
			Expect(webapp.Status.ReadyReplicas).To(BeZero())
			Expect(meta.IsStatusConditionFalse(webapp.Status.Conditions, ConditionReady)).To(BeTrue())

			By("reconciling again, which changes nothing")
			_, err = controllerReconciler.Reconcile(ctx, reconcile.Request{
				NamespacedName: typeNamespacedName,
			})
			Expect(err).NotTo(HaveOccurred())
			again := &appsv1.Deployment{}
			Expect(k8sClient.Get(ctx, typeNamespacedName, again)).To(Succeed())
			Expect(again.Generation).To(Equal(deployment.Generation))
		})
	})

	// What follows needs a cluster, not just an API server: the Deployment
	// controller makes a ReplicaSet, the ReplicaSet controller its pods, the
	// scheduler binds them to the simulated node whose kubelet runs them and
	// reports them Ready, and the garbage collector deletes what a deleted
	// WebApp owned. main_test.go asks for it.
	Context("With the manager running in a cluster", Ordered, func() {
		const (
			name      = "guestbook"
			namespace = "default"
		)

		var (
			ctx       context.Context
			stop      context.CancelFunc
			key       = types.NamespacedName{Name: name, Namespace: namespace}
			byWebApp  = client.MatchingLabels{NameLabel: name}
			inDefault = client.InNamespace(namespace)
			webapp    *webappv1alpha1.WebApp
		)

		BeforeAll(func() {
			By("starting a manager with the WebApp reconciler")
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{
				Scheme:  scheme.Scheme,
				Metrics: metricsserver.Options{BindAddress: "0"},
			})
			Expect(err).NotTo(HaveOccurred())
			Expect((&WebAppReconciler{
				Client: mgr.GetClient(),
				Scheme: mgr.GetScheme(),
			}).SetupWithManager(mgr)).To(Succeed())

			ctx, stop = context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer GinkgoRecover()
				defer close(done)
				Expect(mgr.Start(ctx)).To(Succeed())
			}()
			DeferCleanup(func() {
				stop()
				Eventually(done, timeout).Should(BeClosed())
			})
		})

		It("creates a Deployment and a Service owned by the WebApp", func() {
			By("creating a WebApp with 2 replicas")
			webapp = &webappv1alpha1.WebApp{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
				Spec: webappv1alpha1.WebAppSpec{
					Image:    "nginx:1.27",
					Replicas: ptr.To[int32](2),
					Port:     80,
				},
			}
			Expect(k8sClient.Create(ctx, webapp)).To(Succeed())

			By("waiting for its Deployment")
			deployment := &appsv1.Deployment{}
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, key, deployment)).To(Succeed())
			}, timeout, interval).Should(Succeed())
			Expect(metav1.IsControlledBy(deployment, webapp)).To(BeTrue(), "the Deployment's controller is the WebApp")
			Expect(deployment.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)))
			Expect(deployment.Spec.Selector.MatchLabels).To(Equal(map[string]string{NameLabel: name}))
			Expect(deployment.Spec.Template.Labels).To(HaveKeyWithValue(NameLabel, name))
			Expect(deployment.Spec.Template.Spec.Containers).To(ConsistOf(SatisfyAll(
				HaveField("Name", "web"),
				HaveField("Image", "nginx:1.27"),
				HaveField("Ports", ConsistOf(HaveField("ContainerPort", BeEquivalentTo(80)))),
				HaveField("ReadinessProbe", Not(BeNil())),
			)))

			By("waiting for its Service")
			service := &corev1.Service{}
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, key, service)).To(Succeed())
			}, timeout, interval).Should(Succeed())
			Expect(metav1.IsControlledBy(service, webapp)).To(BeTrue(), "the Service's controller is the WebApp")
			Expect(service.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
			Expect(service.Spec.ClusterIP).NotTo(BeEmpty(), "the API server allocates a cluster IP")
			Expect(service.Spec.Selector).To(Equal(map[string]string{NameLabel: name}))
			Expect(service.Spec.Ports).To(ConsistOf(SatisfyAll(
				HaveField("Port", BeEquivalentTo(80)),
				HaveField("TargetPort", Equal(intstr.FromString("http"))),
			)))
		})

		It("runs the pods until they are Ready and reports readyReplicas 2", func() {
			By("waiting for the Deployment's 2 pods to be Ready")
			Eventually(func(g Gomega) {
				pods := &corev1.PodList{}
				g.Expect(k8sClient.List(ctx, pods, inDefault, byWebApp)).To(Succeed())
				g.Expect(pods.Items).To(HaveLen(2))
				for _, pod := range pods.Items {
					g.Expect(pod.Spec.NodeName).NotTo(BeEmpty(), "pod %s is scheduled", pod.Name)
					g.Expect(pod.Status.Phase).To(Equal(corev1.PodRunning), "pod %s runs", pod.Name)
					g.Expect(pod.Status.Conditions).To(ContainElement(SatisfyAll(
						HaveField("Type", corev1.PodReady),
						HaveField("Status", corev1.ConditionTrue),
					)), "pod %s is Ready", pod.Name)
				}
			}, timeout, interval).Should(Succeed())

			By("waiting for the WebApp's status to say so")
			Eventually(func(g Gomega) {
				got := &webappv1alpha1.WebApp{}
				g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
				g.Expect(got.Status.ReadyReplicas).To(BeEquivalentTo(2))
				g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, ConditionReady)).To(BeTrue())
			}, timeout, interval).Should(Succeed())
		})

		It("scales the Deployment when the WebApp's replicas change", func() {
			By("setting replicas to 3")
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, key, webapp)).To(Succeed())
				webapp.Spec.Replicas = ptr.To[int32](3)
				g.Expect(k8sClient.Update(ctx, webapp)).To(Succeed())
			}, timeout, interval).Should(Succeed())

			By("waiting for a third Ready pod and readyReplicas 3")
			Eventually(func(g Gomega) {
				got := &webappv1alpha1.WebApp{}
				g.Expect(k8sClient.Get(ctx, key, got)).To(Succeed())
				g.Expect(got.Status.ReadyReplicas).To(BeEquivalentTo(3))
				g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, ConditionReady)).To(BeTrue())
			}, timeout, interval).Should(Succeed())
		})

		It("garbage-collects the Deployment, its ReplicaSets, its pods and the Service when the WebApp is deleted", func() {
			By("checking the chain of owners: WebApp → Deployment → ReplicaSet → pods")
			deployment := &appsv1.Deployment{}
			Expect(k8sClient.Get(ctx, key, deployment)).To(Succeed())
			replicaSets := &appsv1.ReplicaSetList{}
			Expect(k8sClient.List(ctx, replicaSets, inDefault, byWebApp)).To(Succeed())
			Expect(replicaSets.Items).NotTo(BeEmpty())
			for i := range replicaSets.Items {
				Expect(metav1.IsControlledBy(&replicaSets.Items[i], deployment)).To(BeTrue())
			}

			By("deleting the WebApp, in the background")
			Expect(k8sClient.Delete(ctx, webapp, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())

			By("waiting for the garbage collector to delete what it owned")
			Eventually(func(g Gomega) {
				g.Expect(errors.IsNotFound(k8sClient.Get(ctx, key, &webappv1alpha1.WebApp{}))).To(BeTrue(), "the WebApp is gone")
				g.Expect(errors.IsNotFound(k8sClient.Get(ctx, key, &appsv1.Deployment{}))).To(BeTrue(), "the Deployment is gone")
				g.Expect(errors.IsNotFound(k8sClient.Get(ctx, key, &corev1.Service{}))).To(BeTrue(), "the Service is gone")

				replicaSets := &appsv1.ReplicaSetList{}
				g.Expect(k8sClient.List(ctx, replicaSets, inDefault, byWebApp)).To(Succeed())
				g.Expect(replicaSets.Items).To(BeEmpty(), "the ReplicaSets are gone")

				pods := &corev1.PodList{}
				g.Expect(k8sClient.List(ctx, pods, inDefault, byWebApp)).To(Succeed())
				g.Expect(pods.Items).To(BeEmpty(), "the pods are gone")
			}, timeout, interval).Should(Succeed())
		})
	})
})
