package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkStartToReady measures exec of `mockernetes serve` to the moment
// it prints its KUBECONFIG line, which it does once /readyz succeeds (every
// API group installed, bootstrap objects and policy created). Also reported:
// resident memory right after ready, and the time from SIGTERM to exit.
// By default the server installs the Gateway API CRDs before it is ready.
func BenchmarkStartToReady(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchmarkStart(b) })
	b.Run("gateway-api=false", func(b *testing.B) { benchmarkStart(b, "--gateway-api=false") })
}

func benchmarkStart(b *testing.B, args ...string) {
	dir := b.TempDir()
	var rss, shutdown float64
	for i := 0; b.Loop(); i++ {
		s, err := startServer(filepath.Join(dir, strconv.Itoa(i)), args...)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rss += rssMiB(b, s.cmd.Process.Pid)
		start := time.Now()
		if err := s.stop(); err != nil {
			b.Fatal(err)
		}
		shutdown += time.Since(start).Seconds()
		b.StartTimer()
	}
	b.ReportMetric(rss/float64(b.N), "MiB-rss")
	b.ReportMetric(shutdown/float64(b.N)*1000, "ms-shutdown")
}

func rssMiB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
