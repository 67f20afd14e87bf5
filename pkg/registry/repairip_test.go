package registry

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// The repair's IPAddress lister finds an address its informer has not seen
// yet (here: never started), and still says NotFound for one that is not
// there.
func TestLiveIPAddressLister(t *testing.T) {
	client := fake.NewClientset(&networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "10.96.0.10"}})
	factory := informers.NewSharedInformerFactory(client, 0)
	lister := liveIPAddresses{IPAddressInformer: factory.Networking().V1().IPAddresses(), client: client}.Lister()
	if ip, err := lister.Get("10.96.0.10"); err != nil || ip.Name != "10.96.0.10" {
		t.Errorf("an address the cache lacks: %v %v", ip, err)
	}
	if _, err := lister.Get("10.96.0.11"); !apierrors.IsNotFound(err) {
		t.Errorf("a missing address: %v, want NotFound", err)
	}
}
