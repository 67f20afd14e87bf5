// Package logging sets up klog, the log of every upstream component, for
// a Mockernetes process: quiet unless asked. klog is process-wide, so this
// is done once per process (the CLI at start, the Go library on its first
// Environment).
package logging

import (
	"bytes"
	"flag"
	"fmt"
	"io"

	"k8s.io/klog/v2"
)

// Setup sends the upstream components' logs to w: at verbosity >= 0 every
// line up to that klog -v level; below 0 only their error lines, without
// the benign ones.
func Setup(w io.Writer, verbosity int) {
	flags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(flags)
	if verbosity >= 0 {
		_ = flags.Set("v", fmt.Sprint(verbosity))
		klog.SetOutput(w)
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
	klog.SetOutputBySeverity("ERROR", dropLines{w, benignErrors})
	klog.SetOutputBySeverity("FATAL", io.Discard)
}

// benignErrors are upstream error lines that are not errors here (a line
// containing every string of one entry is dropped); -v 0 and above show
// them:
//   - the ReplicaSet and other controllers requeue an object until their
//     informer has seen their own last write, and say so at error level.
//     Against an in-memory store a controller's next sync often comes
//     before its watch event, so this line would print on most writes;
//   - a stopping server's components report what its stop cancelled:
//     watches, requests, waits for caches (the garbage collector's
//     included: its informers read the in-process store, so they fail to
//     sync only when the server stops);
//   - the controllers of a second server in the process find their
//     metrics registered (Prometheus' registry is process-wide).
var benignErrors = [][]string{
	{"is not as new as written version"},
	{"context canceled"},
	{"Unable to sync caches"},
	{"timed out waiting for dependency graph builder sync during GC sync"},
	{"unable to register metrics", "duplicate metrics collector registration attempted"},
}

// dropLines writes every log line except those matching one of drop.
type dropLines struct {
	w    io.Writer
	drop [][]string
}

func (d dropLines) Write(p []byte) (int, error) {
	for _, all := range d.drop {
		matched := true
		for _, s := range all {
			if !bytes.Contains(p, []byte(s)) {
				matched = false
				break
			}
		}
		if matched {
			return len(p), nil
		}
	}
	return d.w.Write(p)
}

// Discard drops every further log line: for a process that is about to
// exit with an error of its own (the components' reports of being stopped
// halfway through their start would only bury it).
func Discard() {
	for _, severity := range []string{"INFO", "WARNING", "ERROR", "FATAL"} {
		klog.SetOutputBySeverity(severity, io.Discard)
	}
}
