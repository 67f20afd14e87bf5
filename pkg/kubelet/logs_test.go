package kubelet

import (
	"context"
	"io"
	"testing"
)

// TestLogsStartOnce checks that a container run started again (its status
// write failed and is retried) keeps the lines of its first start.
func TestLogsStartOnce(t *testing.T) {
	l := NewLogs()
	l.Start("uid", "app", 0, "one", "two")
	l.Start("uid", "app", 0, "one", "two")
	l.End("uid", "app", 0)
	l.Start("uid", "app", 1, "three")
	for run, want := range map[int32]string{0: "one\ntwo\n", 1: "three\n"} {
		got, err := io.ReadAll(l.Open(context.Background(), "uid", "app", run, LogOptions{}))
		if err != nil || string(got) != want {
			t.Errorf("run %d: %q, %v; want %q", run, got, err, want)
		}
	}
}
