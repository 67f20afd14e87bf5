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

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// controlCommands are the verbs that drive a running server's test-control
// API: settle, reset, faults, requests, snapshot, restore, kubeconfig.
func controlCommands(stdout io.Writer) []*cobra.Command {
	var kubeconfig string
	var timeout time.Duration
	ctx := context.Background()
	// command is one verb: its flags, and run called with a client of the
	// server the kubeconfig names.
	command := func(use, short string, args cobra.PositionalArgs, run func(c *testcontrol.Client, args []string) error) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: short, Args: args,
			RunE: func(_ *cobra.Command, args []string) error {
				rules := clientcmd.NewDefaultClientConfigLoadingRules()
				rules.ExplicitPath = kubeconfig
				cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
				if err != nil {
					return err
				}
				c, err := testcontrol.New(cfg)
				if err != nil {
					return err
				}
				return run(c, args)
			}}
		cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "Kubeconfig of the server (default: $KUBECONFIG, then ~/.kube/config).")
		cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
		return cmd
	}
	noArgs := func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("no arguments expected, got %q", args)}
		}
		return nil
	}

	settle := command("settle", "Wait until the cluster is quiet: controllers, scheduler and kubelet done", noArgs,
		func(c *testcontrol.Client, _ []string) error { return c.Settle(ctx, timeout) })
	settle.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "How long to wait for the cluster to settle.")

	var clusterConfig, manifests string
	reset := command("reset", "Bring the cluster back to its state right after it was ready", noArgs,
		func(c *testcontrol.Client, _ []string) error {
			var req testcontrol.ResetRequest
			if clusterConfig != "" {
				f, err := clusterconfig.ReadFile(clusterConfig)
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
			return c.Reset(ctx, req)
		})
	reset.Flags().StringVar(&clusterConfig, "cluster-config", "", "YAML file with nodes and podBehaviours (the shape of serve --cluster-config) to use from now on.")
	reset.Flags().StringVar(&manifests, "manifests", "", "File of manifests (YAML or JSON, several documents) to apply after the reset, as serve --load does.")

	var set string
	var clear bool
	faults := command("faults", "Show, replace (--set FILE) or clear (--clear) the fault rules", noArgs,
		func(c *testcontrol.Client, _ []string) error {
			var err error
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
		})
	faults.Flags().StringVar(&set, "set", "", "YAML or JSON file with the rules ({faults: [...]}) to put in force.")
	faults.Flags().BoolVar(&clear, "clear", false, "Remove every fault rule.")

	query := map[string]*string{}
	requests := command("requests", "Print the recorded API requests (filters: --verb, --resource, --namespace, ...)", noArgs,
		func(c *testcontrol.Client, _ []string) error {
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
		})
	for _, k := range []string{"verb", "apiGroup", "resource", "subresource", "namespace", "name", "userAgent", "user", "since", "internal"} {
		query[k] = requests.Flags().String(k, "", "Only requests with this "+k+".")
	}

	snapshot := command("snapshot", "Print every object of the cluster as multi-document YAML (for restore, --load, kubectl apply -f)", noArgs,
		func(c *testcontrol.Client, _ []string) error {
			data, err := c.Snapshot(ctx)
			if err != nil {
				return err
			}
			_, err = stdout.Write(data)
			return err
		})
	restore := command("restore FILE", "Make the cluster what a snapshot describes, object for object",
		func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("restore takes one file, got %d arguments", len(args))}
			}
			return nil
		},
		func(c *testcontrol.Client, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			return c.Restore(ctx, data)
		})
	var user string
	var groups []string
	kubeconfigCmd := command("kubeconfig --user NAME [--group GROUP]...", "Print a kubeconfig for any user and groups (a client certificate of the cluster's CA)", noArgs,
		func(c *testcontrol.Client, _ []string) error {
			if user == "" {
				return usageError{fmt.Errorf("--user is required")}
			}
			data, err := c.Kubeconfig(ctx, user, groups...)
			if err != nil {
				return err
			}
			_, err = stdout.Write(data)
			return err
		})
	kubeconfigCmd.Flags().StringVar(&user, "user", "", "The user's name.")
	kubeconfigCmd.Flags().StringArrayVar(&groups, "group", nil, "A group of the user; repeatable.")
	return []*cobra.Command{settle, reset, faults, requests, snapshot, restore, kubeconfigCmd}
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
