package system

import (
	"net"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/mockernetes/mockernetes/pkg/crds"
)

func TestManifests(t *testing.T) {
	_, serviceRange, _ := net.ParseCIDR("10.96.0.0/12")
	v := Values{Cluster: "test", Advertise: net.ParseIP("172.18.0.2"), ServiceRange: *serviceRange, Version: "v1.37.2"}
	node, err := ControlPlaneNode(v)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range node.StaticPods {
		names = append(names, p.Name)
		for _, arg := range p.Spec.Containers[0].Command {
			if strings.Contains(arg, "${") {
				t.Errorf("%s: unfilled %s", p.Name, arg)
			}
		}
	}
	if node.Name != "test-control-plane" || strings.Join(names, ",") != "etcd,kube-apiserver,kube-controller-manager,kube-scheduler" ||
		node.StaticPods[1].Spec.Containers[0].Image != "registry.k8s.io/kube-apiserver:v1.37.2" {
		t.Errorf("control plane: %s %v", node.Name, names)
	}
	addOns, err := AddOns(v)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := crds.Objects(addOns)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objects {
		kinds[o.GetKind()]++
		if o.GetKind() == "Service" {
			if ip, _, _ := unstructured.NestedString(o.Object, "spec", "clusterIP"); ip != "10.96.0.10" {
				t.Errorf("kube-dns at %s", ip)
			}
		}
	}
	if kinds["Deployment"] != 2 || kinds["DaemonSet"] != 2 || kinds["Service"] != 1 || kinds["Namespace"] != 1 {
		t.Errorf("add-ons: %v", kinds)
	}
	if _, err := nth(net.IPNet{IP: net.ParseIP("10.0.0.0").To4(), Mask: net.CIDRMask(29, 32)}, 10); err == nil {
		t.Error("the tenth address of a /29")
	}
}
