package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/mockernetes/mockernetes/pkg/kubelet"
	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// controlCommands are the verbs that drive a running server's test-control
// API: settle, reset, faults, requests, snapshot, restore.
func controlCommands(stdout io.Writer) []*cobra.Command {
	var kubeconfig string
	var timeout time.Duration
	client := func() (*testcontrol.Client, error) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = kubeconfig
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
		if err != nil {
			return nil, err
		}
		return testcontrol.New(cfg)
	}
	flags := func(cmd *cobra.Command, withTimeout bool) *cobra.Command {
		cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "Kubeconfig of the server (default: $KUBECONFIG, then ~/.kube/config).")
		if withTimeout {
			cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "How long to wait for the cluster to settle.")
		}
		cmd.Args = cobra.NoArgs
		cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
		return cmd
	}
	ctx := context.Background()

	settle := flags(&cobra.Command{
		Use:   "settle",
		Short: "Wait until the cluster is quiet: controllers, scheduler and kubelet done",
		RunE: func(*cobra.Command, []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			return c.Settle(ctx, timeout)
		},
	}, true)

	var clusterConfig, manifests string
	reset := flags(&cobra.Command{
		Use:   "reset",
		Short: "Bring the cluster back to its state right after it was ready",
		RunE: func(*cobra.Command, []string) error {
			var req testcontrol.ResetRequest
			if clusterConfig != "" {
				f, err := kubelet.ReadFile(clusterConfig)
				if err != nil {
					return err
				}
				req.Nodes = f.Nodes
				if f.PodBehaviours != nil {
					req.PodBehaviours = &f.PodBehaviours
				}
			}
			if manifests != "" {
				data, err := os.ReadFile(manifests)
				if err != nil {
					return err
				}
				req.Manifests = string(data)
			}
			c, err := client()
			if err != nil {
				return err
			}
			return c.Reset(ctx, req)
		},
	}, false)
	reset.Flags().StringVar(&clusterConfig, "cluster-config", "", "YAML file with nodes and podBehaviours (the shape of serve --cluster-config) to use from now on.")
	reset.Flags().StringVar(&manifests, "manifests", "", "File of manifests (YAML or JSON, several documents) to apply after the reset, as serve --load does.")

	var set string
	var clear bool
	faultsCmd := flags(&cobra.Command{
		Use:   "faults",
		Short: "Show, replace (--set FILE) or clear (--clear) the fault rules",
		RunE: func(*cobra.Command, []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			switch {
			case clear:
				err = c.ClearFaults(ctx)
			case set != "":
				l, rerr := readYAML[testcontrol.FaultList](set)
				if rerr != nil {
					return rerr
				}
				err = c.SetFaults(ctx, l.Faults...)
			}
			if err != nil {
				return err
			}
			rules, err := c.Faults(ctx)
			if err != nil {
				return err
			}
			return printYAML(stdout, testcontrol.FaultList{Faults: rules})
		},
	}, false)
	faultsCmd.Flags().StringVar(&set, "set", "", "YAML or JSON file with the rules ({faults: [...]}) to put in force.")
	faultsCmd.Flags().BoolVar(&clear, "clear", false, "Remove every fault rule.")

	query := map[string]*string{}
	requests := flags(&cobra.Command{
		Use:   "requests",
		Short: "Print the recorded API requests (filters: --verb, --resource, --namespace, ...)",
		RunE: func(*cobra.Command, []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range query {
				if *v != "" {
					q.Set(k, *v)
				}
			}
			entries, err := c.Requests(ctx, q)
			if err != nil {
				return err
			}
			return printYAML(stdout, testcontrol.RequestList{Requests: entries})
		},
	}, false)
	for _, k := range []string{"verb", "apiGroup", "resource", "subresource", "namespace", "name", "userAgent", "user", "since", "internal"} {
		query[k] = requests.Flags().String(k, "", "Only requests with this "+k+".")
	}
	snapshot := flags(&cobra.Command{
		Use:   "snapshot",
		Short: "Print every object of the cluster as multi-document YAML (for restore, --load, kubectl apply -f)",
		RunE: func(*cobra.Command, []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			data, err := c.Snapshot(ctx)
			if err != nil {
				return err
			}
			_, err = stdout.Write(data)
			return err
		},
	}, false)
	restore := flags(&cobra.Command{
		Use:   "restore FILE",
		Short: "Make the cluster what a snapshot describes, object for object",
		RunE: func(_ *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			c, err := client()
			if err != nil {
				return err
			}
			return c.Restore(ctx, data)
		},
	}, false)
	restore.Args = func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError{fmt.Errorf("restore takes one file, got %d arguments", len(args))}
		}
		return nil
	}
	return []*cobra.Command{settle, reset, faultsCmd, requests, snapshot, restore}
}

// readYAML reads a YAML or JSON file strictly (unknown fields are errors).
func readYAML[T any](path string) (T, error) {
	var v T
	data, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func printYAML(w io.Writer, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
