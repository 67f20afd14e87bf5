package registry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kubelets runs node-1, whose kubelet answers every path with its own.
type kubelets struct{}

func (kubelets) Handler(node string) (http.Handler, bool) {
	if node != "node-1" {
		return nil, false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("kubelet at " + r.URL.RequestURI()))
	}), true
}

func (kubelets) Runs(node string) bool { return node == "node-1" }

// nodes/proxy reaches a simulated node's kubelet at the subpath (query
// kept); other ports and other nodes are refused as a connection nobody
// accepts, never dialed.
func TestNodeProxyConnect(t *testing.T) {
	r := &NodeProxyREST{Kubelets: kubelets{}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}, Status: corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "172.18.0.3"}, {Type: corev1.NodeHostName, Address: "node-1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
	}}
	h, err := r.connect(node, "", "healthz")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/nodes/node-1/proxy/healthz?verbose", nil))
	if w.Body.String() != "kubelet at /healthz?verbose" {
		t.Errorf("proxied /healthz?verbose: %d %q", w.Code, w.Body.String())
	}
	if _, err := r.connect(node, "10250", "pods"); err != nil {
		t.Errorf("the kubelet's port named: %v", err)
	}
	_, err = r.connect(node, "9100", "metrics")
	if !apierrors.IsServiceUnavailable(err) || err.Error() != `error trying to reach service: dial tcp node-1:9100: connect: connection refused (mockernetes answers only the kubelet's port 10250 of node "node-1")` {
		t.Errorf("other port: %v", err)
	}
	stranger := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Status: corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.20"}}}}
	_, err = r.connect(stranger, "", "pods")
	if !apierrors.IsServiceUnavailable(err) || err.Error() != `error trying to reach service: dial tcp 192.168.1.20:10250: connect: connection refused (no kubelet listens for node "node-a" in mockernetes)` {
		t.Errorf("node without kubelet: %v", err)
	}
	if _, err := (&NodeProxyREST{}).connect(node, "", "pods"); !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "no kubelet listens") {
		t.Errorf("no kubelets at all: %v", err)
	}
}
