// Package cli is the `mockernetes` command line: flag parsing, logging, the
// ready line and signal handling around pkg/server.
package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/mockernetes/mockernetes/pkg/server"
)

// Exit codes: usage errors as flag parsing reports them, failures to start.
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors in the command line itself.
type usageError struct{ error }

// Main runs the command with os.Args and returns the process exit code.
func Main() int {
	return Run(os.Args[1:], os.Stdout, os.Stderr)
}

// Run runs the command with args and returns the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	cmd := NewCommand(stdout, stderr)
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "mockernetes: "+oneLine(err))
	var usage usageError
	// cobra reports an unknown subcommand before any of our code runs.
	if errors.As(err, &usage) || strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitFailure
}

// NewCommand is the root command with its `serve` subcommand.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "mockernetes",
		Short:         "A Kubernetes 1.37 API server for tests",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q (try: mockernetes serve)", args[0])}
			}
			return cmd.Help()
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCommand(stdout, stderr))
	root.AddCommand(controlCommands(stdout)...)
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the Kubernetes version served",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(stdout, server.KubernetesVersion())
		},
	})
	return root
}

func newServeCommand(stdout, stderr io.Writer) *cobra.Command {
	opts := server.NewOptions()
	opts.Port = 6443
	verbosity := -1
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a Kubernetes API on HTTPS until interrupted",
		Long: `Serve every built-in Kubernetes API group on HTTPS, write an admin
kubeconfig and print the line that exports it. Stops on SIGINT or SIGTERM.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("serve takes no arguments, got %q", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if errs := opts.Validate(); len(errs) > 0 {
				return usageError{errs[0]}
			}
			setupLogging(stderr, verbosity)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, opts, stdout, stderr)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	fs := cmd.Flags()
	opts.AddFlags(fs)
	fs.IntVarP(&verbosity, "v", "v", verbosity, "Log verbosity of the upstream components (klog -v); -1 logs only errors.")
	return cmd
}

// serve starts the server, prints the ready line once /readyz succeeds, and
// runs until ctx ends.
func serve(ctx context.Context, opts *server.Options, stdout, stderr io.Writer) error {
	start := time.Now()
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	srv, err := cfg.Complete().New()
	if err != nil {
		cfg.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- srv.WaitReady(readyCtx) }()
	select {
	case err := <-done:
		if err == nil {
			err = errors.New("server stopped before it was ready")
		}
		return err
	case err := <-ready:
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	if ctx.Err() == nil {
		fmt.Fprintf(stderr, "mockernetes: Kubernetes %s ready at %s in %.3fs\n", server.KubernetesVersion(), srv.URL(), time.Since(start).Seconds())
		fmt.Fprintf(stdout, "export KUBECONFIG=%s\n", srv.State().Kubeconfig)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Shutting down: watches end and in-flight requests drain within
	// milliseconds; what is left is the HTTP/2 server's courtesy wait of one
	// second for each client to close its connection after GOAWAY
	// (golang.org/x/net/http2 goAwayTimeout). A process about to exit need
	// not wait for that.
	select {
	case err := <-done:
		return err
	case <-time.After(shutdownGrace):
		srv.Close()
		return nil
	}
}

// shutdownGrace bounds the wait for a graceful HTTP shutdown on a signal.
const shutdownGrace = 500 * time.Millisecond

// setupLogging keeps the upstream components quiet by default: only their
// errors reach stderr. Loopback clients' API warnings are
// dropped as kube-apiserver drops them.
func setupLogging(stderr io.Writer, verbosity int) {
	restclient.SetDefaultWarningHandler(restclient.NoWarnings{})
	flags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(flags)
	if verbosity >= 0 {
		_ = flags.Set("v", fmt.Sprint(verbosity))
		klog.SetOutput(stderr)
		return
	}
	_ = flags.Set("logtostderr", "false")
	_ = flags.Set("alsologtostderr", "false")
	_ = flags.Set("stderrthreshold", "FATAL")
	// klog writes a line to its own severity's writer and every lower one:
	// only the ERROR writer is kept, so errors print once and the upstream
	// start-up warnings (API versions skipped, ...) stay out of the way.
	klog.SetOutputBySeverity("INFO", io.Discard)
	klog.SetOutputBySeverity("WARNING", io.Discard)
	klog.SetOutputBySeverity("ERROR", dropLines{stderr, benignErrors})
	klog.SetOutputBySeverity("FATAL", io.Discard)
}

// benignErrors are upstream error lines that are not errors here: the
// ReplicaSet and other controllers requeue an object until their informer
// has seen their own last write, and say so at error level. Against an
// in-memory store a controller's next sync often comes before its watch
// event, so this line would print on most writes. -v 0 and above show it.
var benignErrors = []string{"is not as new as written version"}

// dropLines writes every log line except those containing one of drop.
type dropLines struct {
	w    io.Writer
	drop []string
}

func (d dropLines) Write(p []byte) (int, error) {
	for _, s := range d.drop {
		if bytes.Contains(p, []byte(s)) {
			return len(p), nil
		}
	}
	return d.w.Write(p)
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
