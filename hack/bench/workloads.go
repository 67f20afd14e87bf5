package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// workload is what runs on each server.
type workload struct {
	objects, large, clients, watchers, watchEvents int
}

// lists is how many times each LIST runs; the median counts.
const lists = 7

func (w workload) run(s *server, f figures) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	clients, err := newClients(s.config, w.clients)
	if err != nil {
		return err
	}
	c := clients[0]
	for _, ns := range []string{"bench", "bench-large", "bench-watch"} {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	name := func(i int) string { return fmt.Sprintf("cm-%05d", i) }
	configMap := func(i int) *corev1.ConfigMap {
		return &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name(i), Labels: map[string]string{"group": "g" + strconv.Itoa(i%10)}},
			Data:       map[string]string{"key": "value-" + strconv.Itoa(i), "other": "some configuration text of a typical size"},
		}
	}
	verbs := []struct {
		verb string
		do   func(c kubernetes.Interface, i int) error
	}{
		{"create", func(c kubernetes.Interface, i int) error {
			_, err := c.CoreV1().ConfigMaps("bench").Create(ctx, configMap(i), metav1.CreateOptions{})
			return err
		}},
		{"get", func(c kubernetes.Interface, i int) error {
			_, err := c.CoreV1().ConfigMaps("bench").Get(ctx, name(i), metav1.GetOptions{})
			return err
		}},
		{"update", func(c kubernetes.Interface, i int) error {
			_, err := c.CoreV1().ConfigMaps("bench").Patch(ctx, name(i), types.MergePatchType, []byte(`{"data":{"key":"updated"}}`), metav1.PatchOptions{})
			return err
		}},
	}
	for _, v := range verbs {
		if err := timed(f, v.verb, clients, w.objects, v.do); err != nil {
			return fmt.Errorf("%s: %w", v.verb, err)
		}
	}
	// LISTs of the 2,000, then of 10,000 in a namespace of their own.
	if err := w.lists(ctx, c, "bench", w.objects, f); err != nil {
		return err
	}
	if err := parallel(clients, w.large, func(c kubernetes.Interface, i int) error {
		_, err := c.CoreV1().ConfigMaps("bench-large").Create(ctx, configMap(i), metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := w.lists(ctx, c, "bench-large", w.large, f); err != nil {
		return err
	}
	if err := timed(f, "delete", clients, w.objects, func(c kubernetes.Interface, i int) error {
		return c.CoreV1().ConfigMaps("bench").Delete(ctx, name(i), metav1.DeleteOptions{})
	}); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return w.watch(ctx, clients, f)
}

// lists times LISTs of namespace ns holding n ConfigMaps: all of them,
// the tenth with one label value, and all as the table kubectl asks for.
// The bodies are read, not decoded: the client's decoding is the same
// whichever server answers.
func (w workload) lists(ctx context.Context, c kubernetes.Interface, ns string, n int, f figures) error {
	path := "/api/v1/namespaces/" + ns + "/configmaps"
	kinds := []struct {
		kind   string
		label  string
		accept string
	}{
		{kind: "all"},
		{kind: "by label", label: "group=g3"},
		{kind: "as table", accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
	}
	for _, k := range kinds {
		var times []float64
		for range lists {
			req := c.CoreV1().RESTClient().Get().AbsPath(path)
			if k.label != "" {
				req = req.Param("labelSelector", k.label)
			}
			if k.accept != "" {
				req = req.SetHeader("Accept", k.accept)
			}
			start := time.Now()
			if _, err := req.DoRaw(ctx); err != nil {
				return fmt.Errorf("LIST %s %s: %w", ns, k.kind, err)
			}
			times = append(times, ms(time.Since(start)))
		}
		slices.Sort(times)
		f[listRow(n, k.kind)] = times[len(times)/2]
	}
	return nil
}

// watch opens the watchers on an empty namespace, creates watchEvents
// ConfigMaps there, and times until every watcher has seen all of them.
func (w workload) watch(ctx context.Context, clients []kubernetes.Interface, f figures) error {
	list, err := clients[0].CoreV1().ConfigMaps("bench-watch").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var watches []watch.Interface
	defer func() {
		for _, wi := range watches {
			wi.Stop()
		}
	}()
	for i := range w.watchers {
		wi, err := clients[i%len(clients)].CoreV1().ConfigMaps("bench-watch").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			return err
		}
		watches = append(watches, wi)
	}
	var done sync.WaitGroup
	failed := make(chan error, len(watches))
	for _, wi := range watches {
		done.Go(func() {
			seen := 0
			for seen < w.watchEvents {
				select {
				case ev, ok := <-wi.ResultChan():
					if !ok {
						failed <- errors.New("a watch ended early")
						return
					}
					if ev.Type == watch.Added {
						seen++
					}
				case <-ctx.Done():
					failed <- ctx.Err()
					return
				}
			}
		})
	}
	start := time.Now()
	if err := parallel(clients, w.watchEvents, func(c kubernetes.Interface, i int) error {
		_, err := c.CoreV1().ConfigMaps("bench-watch").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w-%05d", i)}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	done.Wait()
	select {
	case err := <-failed:
		return err
	default:
	}
	f[watchRow(w)] = ms(time.Since(start))
	return nil
}

// newClients returns n clients, each with a connection of its own (a
// custom dialer keeps client-go from sharing one transport).
func newClients(config *rest.Config, n int) ([]kubernetes.Interface, error) {
	var out []kubernetes.Interface
	for range n {
		c := rest.CopyConfig(config)
		c.QPS, c.Burst = -1, 0
		c.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		client, err := kubernetes.NewForConfig(c)
		if err != nil {
			return nil, err
		}
		out = append(out, client)
	}
	return out, nil
}

// timed runs do for 0..n-1 spread over the clients and records the
// throughput and the latencies' p50 and p99 under verb.
func timed(f figures, verb string, clients []kubernetes.Interface, n int, do func(kubernetes.Interface, int) error) error {
	latencies := make([]float64, n)
	start := time.Now()
	err := parallel(clients, n, func(c kubernetes.Interface, i int) error {
		t := time.Now()
		err := do(c, i)
		latencies[i] = ms(time.Since(t))
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	slices.Sort(latencies)
	f[verb+" throughput"] = float64(n) / elapsed.Seconds()
	f[verb+" p50"] = latencies[n/2]
	f[verb+" p99"] = latencies[n*99/100]
	return nil
}

// parallel runs do for 0..n-1, client k taking k, k+len(clients), ...
func parallel(clients []kubernetes.Interface, n int, do func(kubernetes.Interface, int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for k, c := range clients {
		wg.Go(func() {
			for i := k; i < n; i += len(clients) {
				if err := do(c, i); err != nil {
					errs[k] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
