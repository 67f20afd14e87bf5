package registry

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	api "k8s.io/kubernetes/pkg/apis/core"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
)

// NodeProxyREST is nodes/{name}/proxy (upstream's node ProxyREST), answered
// in process by the simulated kubelet: it never dials or resolves, since
// the nodes' addresses are made up and may be real machines' on the
// user's network. Requests to nodes it does not run, or to ports other
// than the kubelet's, are refused as a kubelet that does not listen
// refuses them.
type NodeProxyREST struct {
	// Store is the node storage.
	Store *genericregistry.Store
	// Kubelets run the simulated nodes (nil: none).
	Kubelets Kubelets
}

// Kubelets are the simulated nodes' kubelets.
type Kubelets interface {
	// Handler is the kubelet HTTP API of node, if it runs that node.
	Handler(node string) (http.Handler, bool)
	// Runs reports whether node is a simulated node.
	Runs(node string) bool
}

var _ rest.Connecter = &NodeProxyREST{}

// New returns an empty NodeProxyOptions.
func (r *NodeProxyREST) New() runtime.Object { return &api.NodeProxyOptions{} }

// Destroy does nothing: the store is shared with the node REST.
func (r *NodeProxyREST) Destroy() {}

// ConnectMethods are the methods proxied.
func (r *NodeProxyREST) ConnectMethods() []string {
	return []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
}

// NewConnectOptions returns the options, whose path is the subpath.
func (r *NodeProxyREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &api.NodeProxyOptions{}, true, "path"
}

// Connect returns the kubelet's handler for the node, or the error of a
// connection refused.
func (r *NodeProxyREST) Connect(ctx context.Context, id string, opts runtime.Object, _ rest.Responder) (http.Handler, error) {
	o, ok := opts.(*api.NodeProxyOptions)
	if !ok {
		return nil, fmt.Errorf("Invalid options object: %#v", opts)
	}
	_, name, port, valid := utilnet.SplitSchemeNamePort(id)
	if !valid {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid node request %q", id))
	}
	obj, err := r.Store.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	node := &corev1.Node{}
	if err := legacyscheme.Scheme.Convert(obj, node, nil); err != nil {
		return nil, err
	}
	return r.connect(node, port, o.Path)
}

// connect is Connect once the node is found: the kubelet's handler at path
// if it runs the node and port is the node's kubelet port (or none).
func (r *NodeProxyREST) connect(node *corev1.Node, port, path string) (http.Handler, error) {
	// kube-apiserver's default --kubelet-preferred-address-types
	host, err := nodeutil.GetPreferredNodeAddress(node, []corev1.NodeAddressType{
		corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeInternalIP, corev1.NodeExternalDNS, corev1.NodeExternalIP,
	})
	if err != nil {
		return nil, err
	}
	kubeletPort := "10250"
	if p := node.Status.DaemonEndpoints.KubeletEndpoint.Port; p > 0 {
		kubeletPort = strconv.Itoa(int(p))
	}
	why := fmt.Sprintf("no kubelet listens for node %q in mockernetes", node.Name)
	if port == "" || port == kubeletPort {
		if r.Kubelets != nil {
			if h, ok := r.Kubelets.Handler(node.Name); ok {
				return at(h, utilnet.JoinPreservingTrailingSlash("/", path)), nil
			}
		}
		port = kubeletPort
	} else if r.Kubelets != nil {
		if r.Kubelets.Runs(node.Name) {
			why = fmt.Sprintf("mockernetes answers only the kubelet's port %s of node %q", kubeletPort, node.Name)
		}
	}
	return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach service: dial tcp %s: connect: connection refused (%s)",
		net.JoinHostPort(host, port), why))
}

// at serves h with the request's path replaced by path and its query kept,
// as the proxy's location has it.
func at(h http.Handler, path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := req.Clone(req.Context())
		r.URL.Path, r.URL.RawPath = path, ""
		r.RequestURI = r.URL.RequestURI()
		h.ServeHTTP(w, r)
	})
}
