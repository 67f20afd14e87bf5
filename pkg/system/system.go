// Package system is what a fresh cluster holds besides the API's own
// objects, as kind v0.33 creates it: a control-plane node whose kubelet runs
// the control plane's static pods (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, as mirror pods), and the add-ons
// kubeadm and kind install: CoreDNS behind the kube-dns Service, the
// kube-proxy and kindnet DaemonSets, kind's local-path provisioner. They are
// manifests (manifests/system): the server applies the add-ons as it
// applies --load, and the controllers, scheduler and kubelets run them as
// any other workload.
package system

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/mockernetes/mockernetes/manifests"
	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/crds"
)

// ControlPlaneLabel and the taint of that key mark the control-plane node.
const ControlPlaneLabel = "node-role.kubernetes.io/control-plane"

// Values fill the manifests in.
type Values struct {
	// Cluster names the cluster: its control-plane node is
	// <Cluster>-control-plane.
	Cluster string
	// Advertise is the API server's advertised address.
	Advertise net.IP
	// ServiceRange is the ClusterIP range; kube-dns has its tenth address.
	ServiceRange net.IPNet
	// Version is the Kubernetes version of the control plane's images.
	Version string
}

// ControlPlaneNode is the control-plane node with its static pods: kind's
// labels and taint, so that workloads go to the workers.
func ControlPlaneNode(v Values) (clusterconfig.NodeSpec, error) {
	name := v.Cluster + "-control-plane"
	pods, err := staticPods(v, name)
	if err != nil {
		return clusterconfig.NodeSpec{}, err
	}
	return clusterconfig.NodeSpec{
		Name:       name,
		Labels:     map[string]string{ControlPlaneLabel: "", "node.kubernetes.io/exclude-from-external-load-balancers": ""},
		Taints:     []corev1.Taint{{Key: ControlPlaneLabel, Effect: corev1.TaintEffectNoSchedule}},
		StaticPods: pods,
	}, nil
}

// AddOns are the add-ons' manifests, for the server to apply.
func AddOns(v Values) ([]crds.Source, error) {
	var out []crds.Source
	for _, name := range []string{"coredns.yaml", "kube-proxy.yaml", "kindnet.yaml", "local-path-storage.yaml"} {
		data, err := fill(name, v, v.Cluster+"-control-plane")
		if err != nil {
			return nil, err
		}
		out = append(out, crds.Source{Name: "system/" + name, Data: data})
	}
	return out, nil
}

func staticPods(v Values, node string) ([]corev1.Pod, error) {
	data, err := fill("control-plane.yaml", v, node)
	if err != nil {
		return nil, err
	}
	var pods []corev1.Pod
	decoder := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var p corev1.Pod
		if err := decoder.Decode(&p); err != nil {
			if errors.Is(err, io.EOF) {
				return pods, nil
			}
			return nil, fmt.Errorf("system/control-plane.yaml: %w", err)
		}
		pods = append(pods, p)
	}
}

// fill reads an embedded manifest and fills in its ${...} values.
func fill(name string, v Values, node string) ([]byte, error) {
	data, err := manifests.System.ReadFile("system/" + name)
	if err != nil {
		return nil, err
	}
	dns, err := nth(v.ServiceRange, 10)
	if err != nil {
		return nil, err
	}
	return []byte(strings.NewReplacer(
		"${NODE}", node,
		"${CONTROL_PLANE_NODE}", node,
		"${ADVERTISE}", v.Advertise.String(),
		"${SERVICE_RANGE}", v.ServiceRange.String(),
		"${POD_NETWORK}", clusterconfig.PodNetwork,
		"${VERSION}", v.Version,
		"${DNS_IP}", dns.String(),
	).Replace(string(data))), nil
}

// nth is the n-th address of a range (10.96.0.0/12, 10: 10.96.0.10).
func nth(r net.IPNet, n int64) (net.IP, error) {
	base := r.IP.To4()
	size := 4
	if base == nil {
		base, size = r.IP.To16(), 16
	}
	ip := new(big.Int).Add(new(big.Int).SetBytes(base), big.NewInt(n))
	out := ip.FillBytes(make([]byte, size))
	if !r.Contains(out) {
		return nil, fmt.Errorf("the service range %s has no address %d", r.String(), n)
	}
	return out, nil
}
