// Package cli is the `mockernetes` command line: flag parsing, logging, the
// ready line and signal handling around pkg/server.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mockernetes/mockernetes/pkg/logging"
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
			opts.Complete()
			if errs := opts.Validate(); len(errs) > 0 {
				return usageError{errs[0]}
			}
			logging.Setup(stderr, verbosity)
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
	restoreGC := startupGC()
	srv, err := opts.NewServer()
	if err != nil {
		return err
	}
	done, err := srv.Start(ctx, time.Minute)
	if err != nil && ctx.Err() == nil {
		// The server stops as the process exits: what its components say
		// about being stopped halfway would bury this error.
		logging.Discard()
		return err
	}
	if ctx.Err() == nil {
		fmt.Fprintf(stderr, "mockernetes: Kubernetes %s ready at %s in %.3fs\n", server.KubernetesVersion(), srv.URL(), time.Since(start).Seconds())
		fmt.Fprintf(stdout, "export KUBECONFIG=%s\n", srv.State().Kubeconfig)
		go releaseStartupMemory(ctx, restoreGC)
	} else {
		restoreGC()
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

// releaseStartupMemory returns the start-up's garbage to the OS once the
// work that follows readiness (OpenAPI v3's merge, the first syncs) is
// done: building the API peaks the heap, and Go's collector would keep
// those pages, a fifth to a quarter of a fresh server's RSS. Only the
// binary does this: in the Go library the process is the user's.
func releaseStartupMemory(ctx context.Context, restoreGC func()) {
	select {
	case <-ctx.Done():
	case <-time.After(startupSettleDelay):
	}
	restoreGC()
	if ctx.Err() == nil {
		debug.FreeOSMemory()
	}
}

// startupGCPercent is the collector's setting while the server starts.
// Building the API is a burst of short-lived garbage over a small live
// heap, which the default (100) collects many times over: at 400 a start
// takes 10-20 % less (alternating runs of the same binary, docs/
// benchmarks.md). The start-up's garbage goes back to the OS after ready
// either way (releaseStartupMemory).
const startupGCPercent = 400

// startupGC sets the collector for the start-up and returns what puts the
// setting back; a GOGC the user set is left alone. Only the binary does
// this: in the Go library the process is the user's.
func startupGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	prev := debug.SetGCPercent(startupGCPercent)
	return func() { debug.SetGCPercent(prev) }
}

// startupSettleDelay is how long after ready the start-up's work goes on.
const startupSettleDelay = time.Second

// shutdownGrace bounds the wait for a graceful HTTP shutdown on a signal.
const shutdownGrace = 500 * time.Millisecond

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
