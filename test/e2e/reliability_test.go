package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
)

// Lost updates: concurrent clients increment one counter in a ConfigMap,
// each increment a read followed by a conditional write that the server
// refuses with 409 when another write came in between; the losers read
// again. Whatever the interleaving, the counter ends equal to the number of
// writes the server accepted: none was lost, none applied twice.
func TestNoLostUpdates(t *testing.T) {
	const clients, increments = 16, 2000
	c := shared.client(t)
	ns := newNamespace(t, c)
	for _, tc := range []struct {
		name string
		// increment reads the counter and writes it plus one, conditionally;
		// it returns the server's answer to the write.
		increment func(ctx context.Context, c kubernetes.Interface, cm, manager string) error
		// refused says whether the server refused the write because the
		// counter changed since the read.
		refused func(error) bool
	}{
		{"get and put", func(ctx context.Context, c kubernetes.Interface, name, _ string) error {
			got, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(got.Data["count"])
			got.Data["count"] = strconv.Itoa(n + 1)
			_, err = c.CoreV1().ConfigMaps(ns).Update(ctx, got, metav1.UpdateOptions{})
			return err
		}, apierrors.IsConflict},
		{"json patch test", func(ctx context.Context, c kubernetes.Interface, name, _ string) error {
			got, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(got.Data["count"])
			patch := fmt.Sprintf(`[{"op":"test","path":"/data/count","value":"%d"},{"op":"replace","path":"/data/count","value":"%d"}]`, n, n+1)
			_, err = c.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{})
			return err
		}, apierrors.IsInvalid}, // a failed test operation: 422 without details, as kube-apiserver answers it
		{"server-side apply", func(ctx context.Context, c kubernetes.Interface, name, manager string) error {
			got, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(got.Data["count"])
			// Each client its own field manager, taking the field over
			// (force) only from the state it read (the resourceVersion
			// precondition).
			cm := corev1apply.ConfigMap(name, ns).WithResourceVersion(got.ResourceVersion).WithData(map[string]string{"count": strconv.Itoa(n + 1)})
			_, err = c.CoreV1().ConfigMaps(ns).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: manager, Force: true})
			return err
		}, apierrors.IsConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			name := "counter-" + strings.ReplaceAll(tc.name, " ", "-")
			if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"count": "0"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var accepted, conflicts, remaining atomic.Int64
			remaining.Store(increments)
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for i := range clients {
				client := shared.client(t)
				manager := "client-" + strconv.Itoa(i)
				wg.Go(func() {
					for remaining.Add(-1) >= 0 {
						for {
							err := tc.increment(ctx, client, name, manager)
							if err == nil {
								accepted.Add(1)
								break
							}
							if !tc.refused(err) {
								errs <- err // neither accepted nor refused as stale
								return
							}
							conflicts.Add(1)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("a write failed otherwise than as stale: %v", err)
			}
			got, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			final, _ := strconv.Atoi(got.Data["count"])
			t.Logf("%d clients: %d writes accepted, %d refused, counter %d", clients, accepted.Load(), conflicts.Load(), final)
			if int64(final) != accepted.Load() || final != increments {
				t.Errorf("counter %d, accepted writes %d, increments %d", final, accepted.Load(), increments)
			}
			if conflicts.Load() == 0 {
				t.Errorf("no write was refused: the clients never raced, the test proved nothing")
			}
		})
	}
}
