package controllers

import (
	"k8s.io/client-go/discovery"
	clientset "k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
)

// clientBuilder is kube-controller-manager's SimpleControllerClientBuilder
// with a user agent of our choosing: upstream's takes the binary's name
// (os.Args[0]), which here is the embedding program's, where a cluster
// shows "kube-controller-manager/<version> (...)/<controller>".
type clientBuilder struct {
	config    *restclient.Config
	userAgent string
}

func (b clientBuilder) Config(name string) (*restclient.Config, error) {
	c := restclient.CopyConfig(b.config)
	c.UserAgent = b.userAgent + "/" + name
	return c, nil
}

func (b clientBuilder) ConfigOrDie(name string) *restclient.Config {
	c, _ := b.Config(name)
	return c
}

func (b clientBuilder) Client(name string) (clientset.Interface, error) {
	c, _ := b.Config(name)
	return clientset.NewForConfig(c)
}

func (b clientBuilder) ClientOrDie(name string) clientset.Interface {
	return clientset.NewForConfigOrDie(b.ConfigOrDie(name))
}

// DiscoveryClient allows bursts, as upstream's does: discovery makes many
// requests at once, rarely.
func (b clientBuilder) DiscoveryClient(name string) (discovery.DiscoveryInterface, error) {
	c, _ := b.Config(name)
	c.Burst, c.QPS = 200, 20
	return clientset.NewForConfig(c)
}

func (b clientBuilder) DiscoveryClientOrDie(name string) discovery.DiscoveryInterface {
	client, err := b.DiscoveryClient(name)
	if err != nil {
		panic(err)
	}
	return client
}
