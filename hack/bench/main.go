// Command bench measures Mockernetes side by side with what envtest runs
// today, kube-apiserver with etcd, on the same machine in one run. It
// builds kube-apiserver from the repository's own module (so the same
// Kubernetes 1.37.2 code) and etcd from this module's go.mod, starts them as
// envtest does (etcd on tmpfs without fsync, then kube-apiserver with RBAC
// and a client CA), then Mockernetes in each mode, in alternating rounds,
// and runs the same workloads on each: start to ready, RSS after ready and
// after the workloads, create / get / merge-patch / delete throughput and
// latency with keep-alive clients, LISTs of 2,000 and 10,000 objects (all,
// by label, as a table) and watch delivery to 100 watchers. It prints one
// table: the medians of the rounds, each server's figure, how many times
// better Mockernetes is, and whether that meets the target.
//
//	make build && cd hack/bench && go run . -rounds 3
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	repo := flag.String("repo", "../..", "the repository's root (kube-apiserver is built from its module)")
	bin := flag.String("mockernetes", "", "the mockernetes binary (default: <repo>/bin/mockernetes)")
	rounds := flag.Int("rounds", 3, "rounds; each starts every server once")
	objects := flag.Int("objects", 2000, "ConfigMaps for create, get, update, delete and the small LIST")
	large := flag.Int("large", 10000, "ConfigMaps for the large LIST")
	clients := flag.Int("clients", 8, "concurrent keep-alive clients")
	watchers := flag.Int("watchers", 100, "watchers for watch delivery")
	watchEvents := flag.Int("watch-events", 500, "events each watcher receives")
	work := flag.String("work", "", "where the servers keep their data (default: a directory on tmpfs when there is one)")
	flag.Parse()
	if *bin == "" {
		*bin = filepath.Join(*repo, "bin", "mockernetes")
	}
	if err := run(*repo, *bin, *work, *rounds, workload{objects: *objects, large: *large, clients: *clients, watchers: *watchers, watchEvents: *watchEvents}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// mode is one server under test.
type mode struct {
	name  string
	start func(dir string) (*server, error)
}

func run(repo, bin, work string, rounds int, w workload) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%v (run make build first)", err)
	}
	if work == "" {
		work = os.TempDir()
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			work = "/dev/shm"
		}
	}
	dir, err := os.MkdirTemp(work, "mockernetes-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Println("building kube-apiserver and etcd ...")
	ref, err := buildReference(repo, dir)
	if err != nil {
		return err
	}
	modes := []mode{
		{name: "kube-apiserver + etcd", start: ref.start},
		{name: "mockernetes, envtest mode", start: mockernetes(bin, "--controllers=none", "--gateway-api=false")},
		{name: "mockernetes, default", start: mockernetes(bin)},
	}
	results := make([][]figures, len(modes))
	for r := range rounds {
		for i, m := range modes {
			fmt.Printf("round %d/%d: %s\n", r+1, rounds, m.name)
			f, err := measure(m, filepath.Join(dir, fmt.Sprintf("r%d-m%d", r, i)), w)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			results[i] = append(results[i], f)
		}
	}
	fmt.Println()
	printTable(modes, results, w)
	return nil
}

// measure starts m's server, runs the workloads and stops it.
func measure(m mode, dir string, w workload) (figures, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s, err := m.start(dir)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	f := figures{}
	f[rowReady] = s.ready.Seconds()
	// Both servers go on working for a moment after /readyz (OpenAPI
	// merges, first syncs): their RSS is read once they are idle.
	time.Sleep(rssSettle)
	f[rowRSSReady] = s.rss()
	if err := w.run(s, f); err != nil {
		return nil, err
	}
	f[rowRSSAfter] = s.rss()
	return f, nil
}

// figures are one round's measurements by row.
type figures map[string]float64

// A row: its name, its unit, whether more is better, and the target of
// each Mockernetes mode as a factor better than the reference (0: none).
type row struct {
	name          string
	unit          string
	higherBetter  bool
	envtestTarget float64
	defaultTarget float64
}

const (
	rowReady    = "start to /readyz"
	rowRSSReady = "RSS 3 s after ready"
	rowRSSAfter = "RSS after the workloads"
)

// rssSettle is how long after ready the RSS is read.
const rssSettle = 3 * time.Second

func rows(w workload) []row {
	rs := []row{
		{name: rowReady, unit: "s", envtestTarget: 10, defaultTarget: 5},
		{name: rowRSSReady, unit: "MiB", envtestTarget: 2, defaultTarget: 1.5},
	}
	for _, verb := range []string{"create", "get", "update", "delete"} {
		rs = append(rs,
			row{name: verb + " throughput", unit: "/s", higherBetter: true, envtestTarget: 3, defaultTarget: 3},
			row{name: verb + " p50", unit: "ms"},
			row{name: verb + " p99", unit: "ms"})
	}
	for _, n := range []int{w.objects, w.large} {
		for _, kind := range []string{"all", "by label", "as table"} {
			rs = append(rs, row{name: listRow(n, kind), unit: "ms", envtestTarget: 2, defaultTarget: 2})
		}
	}
	rs = append(rs,
		row{name: watchRow(w), unit: "ms"},
		row{name: rowRSSAfter, unit: "MiB"})
	return rs
}

func listRow(n int, kind string) string { return fmt.Sprintf("LIST %d, %s", n, kind) }
func watchRow(w workload) string {
	return fmt.Sprintf("watch: %d events to each of %d watchers", w.watchEvents, w.watchers)
}

func median(fs []figures, name string) float64 {
	var v []float64
	for _, f := range fs {
		v = append(v, f[name])
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}

func printTable(modes []mode, results [][]figures, w workload) {
	var b strings.Builder
	b.WriteString("| | " + modes[0].name)
	for _, m := range modes[1:] {
		b.WriteString(" | " + m.name + " | better by | target")
	}
	b.WriteString(" |\n|---|---")
	for range modes[1:] {
		b.WriteString("|---|---|---")
	}
	b.WriteString("|\n")
	for _, r := range rows(w) {
		ref := median(results[0], r.name)
		fmt.Fprintf(&b, "| %s (%s) | %s", r.name, r.unit, format(ref))
		for i := range modes[1:] {
			v := median(results[i+1], r.name)
			factor := 0.0
			switch {
			case r.higherBetter && ref > 0:
				factor = v / ref
			case !r.higherBetter && v > 0:
				factor = ref / v
			}
			target := r.envtestTarget
			if i == 1 {
				target = r.defaultTarget
			}
			verdict := ""
			if target > 0 {
				verdict = fmt.Sprintf("≥ %g×: ", target)
				if factor >= target {
					verdict += "met"
				} else {
					verdict += "not met"
				}
			}
			fmt.Fprintf(&b, " | %s | %.2f× | %s", format(v), factor, verdict)
		}
		b.WriteString(" |\n")
	}
	fmt.Print(b.String())
	fmt.Printf("\nMedians of %d rounds, %s; %d clients, %d ConfigMaps.\n", len(results[0]), time.Now().UTC().Format("2006-01-02"), w.clients, w.objects)
}

func format(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
