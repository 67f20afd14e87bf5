package registry

import (
	"context"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	networkinginformers "k8s.io/client-go/informers/networking/v1"
	"k8s.io/client-go/kubernetes"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
)

// liveIPAddresses is the IPAddress informer the ClusterIP repair gets: its
// lister reads the API when its cache does not have an address yet. A new
// Service's IPAddress is written before the Service, but the two reach the
// repair through two watches; when the Service's came first, the repair
// took the address for unallocated, logged an error and put a
// ClusterIPNotAllocated warning on the Service (seen under load, right
// after start-up, for the kube-dns Service).
type liveIPAddresses struct {
	networkinginformers.IPAddressInformer
	client kubernetes.Interface
}

func (i liveIPAddresses) Lister() networkinglisters.IPAddressLister {
	return liveIPAddressLister{IPAddressLister: i.IPAddressInformer.Lister(), client: i.client}
}

type liveIPAddressLister struct {
	networkinglisters.IPAddressLister
	client kubernetes.Interface
}

func (l liveIPAddressLister) Get(name string) (*networkingv1.IPAddress, error) {
	ip, err := l.IPAddressLister.Get(name)
	if !apierrors.IsNotFound(err) {
		return ip, err
	}
	return l.client.NetworkingV1().IPAddresses().Get(context.Background(), name, metav1.GetOptions{})
}
