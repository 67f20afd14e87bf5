// Package testload is the load the reliability tests put on a server
// while they do something to it (stop it, for one): open watches and
// clients creating, listing and deleting, until stopped.
package testload

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Start opens watches of ConfigMaps in namespace ns and runs clients that
// create, list (pods, everywhere) and delete in a loop, until the returned
// function is called; it returns once they all ended. Errors are expected
// (the server may be stopping) and ignored; an error opening a watch is
// returned.
func Start(ctx context.Context, c kubernetes.Interface, ns string, watches, clients int) (stop func(), err error) {
	load, end := context.WithCancel(ctx)
	var running sync.WaitGroup
	stop = func() {
		end()
		running.Wait()
	}
	for range watches {
		w, err := c.CoreV1().ConfigMaps(ns).Watch(load, metav1.ListOptions{})
		if err != nil {
			stop()
			return nil, err
		}
		running.Go(func() {
			for range w.ResultChan() {
			}
		})
	}
	for i := range clients {
		running.Go(func() {
			for n := 0; load.Err() == nil; n++ {
				name := fmt.Sprintf("load-%d-%d", i, n)
				_, _ = c.CoreV1().ConfigMaps(ns).Create(load, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
				_, _ = c.CoreV1().Pods("").List(load, metav1.ListOptions{})
				_ = c.CoreV1().ConfigMaps(ns).Delete(load, name, metav1.DeleteOptions{})
			}
		})
	}
	return stop, nil
}
