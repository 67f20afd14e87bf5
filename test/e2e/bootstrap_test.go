package e2e

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// A fresh server holds what a fresh kube-apiserver creates.
func TestBootstrap(t *testing.T) {
	c := shared.client(t)
	ctx := ctxFor(t)
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		n, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || n.Labels["kubernetes.io/metadata.name"] != ns || n.Status.Phase != "Active" {
			t.Errorf("namespace %s: %v %+v", ns, err, n)
		}
	}

	svc, err := c.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(shared.restConfig(t).Host)
	port, _ := strconv.Atoi(u.Port())
	if svc.Spec.ClusterIP != "10.96.0.1" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 ||
		svc.Spec.Ports[0].TargetPort.IntValue() != port || svc.Labels["component"] != "apiserver" || svc.Labels["provider"] != "kubernetes" {
		t.Errorf("kubernetes service: %+v labels %v", svc.Spec, svc.Labels)
	}
	ep, err := c.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 1 || ep.Subsets[0].Addresses[0].IP != "172.18.0.2" ||
		ep.Subsets[0].Ports[0].Port != int32(port) {
		t.Errorf("kubernetes endpoints: %v %+v", err, ep)
	}
	slice, err := c.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(slice.Endpoints) != 1 || slice.Endpoints[0].Addresses[0] != "172.18.0.2" {
		t.Errorf("kubernetes endpointslice: %v %+v", err, slice)
	}

	// The default ServiceCIDR, marked Ready by upstream's controller.
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		cidr, err := c.NetworkingV1().ServiceCIDRs().Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if len(cidr.Spec.CIDRs) != 1 || cidr.Spec.CIDRs[0] != "10.96.0.0/12" {
			t.Fatalf("default ServiceCIDR: %+v", cidr.Spec)
		}
		for _, cond := range cidr.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == metav1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Errorf("default ServiceCIDR never Ready: %v", err)
	}
	if _, err := c.NetworkingV1().IPAddresses().Get(ctx, "10.96.0.1", metav1.GetOptions{}); err != nil {
		t.Errorf("IPAddress of the kubernetes service: %v", err)
	}

	for _, name := range []string{"system-node-critical", "system-cluster-critical"} {
		if _, err := c.SchedulingV1().PriorityClasses().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("priority class %s: %v", name, err)
		}
	}
	roles, err := c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/bootstrapping=rbac-defaults"})
	if err != nil || len(roles.Items) < 50 {
		t.Errorf("bootstrap cluster roles: %v, %d", err, len(roles.Items))
	}
	admin, err := c.RbacV1().ClusterRoles().Get(ctx, "cluster-admin", metav1.GetOptions{})
	if err != nil || admin.Annotations["rbac.authorization.kubernetes.io/autoupdate"] != "true" {
		t.Errorf("cluster-admin: %v %+v", err, admin)
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Get(ctx, "system:controller:deployment-controller", metav1.GetOptions{}); err != nil {
		t.Errorf("controller role binding: %v", err)
	}
	if _, err := c.RbacV1().Roles("kube-system").Get(ctx, "extension-apiserver-authentication-reader", metav1.GetOptions{}); err != nil {
		t.Errorf("kube-system role: %v", err)
	}
	if _, err := c.RbacV1().RoleBindings("kube-public").Get(ctx, "system:controller:bootstrap-signer", metav1.GetOptions{}); err != nil {
		t.Errorf("kube-public role binding: %v", err)
	}
	if _, err := c.FlowcontrolV1().FlowSchemas().Get(ctx, "exempt", metav1.GetOptions{}); err != nil {
		t.Errorf("flow schema exempt: %v", err)
	}
	cm, err := c.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
	if err != nil || cm.Data["client-ca-file"] == "" {
		t.Errorf("extension-apiserver-authentication: %v %+v", err, cm)
	}
}
