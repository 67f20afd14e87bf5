package kubelet

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestLogsStartOnce checks that a container run started again (its status
// write failed and is retried) keeps the lines of its first start.
func TestLogsStartOnce(t *testing.T) {
	l := NewLogs()
	now := time.Now()
	l.Start("uid", "app", 0, now, printedAtStart([]string{"one", "two"})...)
	l.Start("uid", "app", 0, now, printedAtStart([]string{"one", "two"})...)
	l.End("uid", "app", 0)
	l.Start("uid", "app", 1, now, printedAtStart([]string{"three"})...)
	for run, want := range map[int32]string{0: "one\ntwo\n", 1: "three\n"} {
		got, err := io.ReadAll(l.Open(context.Background(), "uid", "app", run, LogOptions{}))
		if err != nil || string(got) != want {
			t.Errorf("run %d: %q, %v; want %q", run, got, err, want)
		}
	}
}

// A line a program prints after a sleep is in the log only from then on:
// a read before it does not have it, a follower gets it when it is
// printed, and a run stopped before it never prints it.
func TestLogsPrintedInTime(t *testing.T) {
	l := NewLogs()
	start := time.Now()
	lines := []printed{{0, "a"}, {200 * time.Millisecond, "b"}, {time.Hour, "never"}}
	l.Start("uid", "app", 0, start, lines...)
	read := func(o LogOptions) string {
		t.Helper()
		got, err := io.ReadAll(l.Open(t.Context(), "uid", "app", 0, o))
		if err != nil {
			t.Fatal(err)
		}
		return string(got)
	}
	if got := read(LogOptions{}); got != "a\n" {
		t.Errorf("log before the sleep ended: %q, want only a", got)
	}
	// A follower has a at once and b when it is printed.
	r := l.Open(t.Context(), "uid", "app", 0, LogOptions{Follow: true})
	defer r.Close()
	buf := make([]byte, 10)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "a\n" {
		t.Fatalf("follower's first read: %q, %v", buf[:n], err)
	}
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "b\n" {
		t.Fatalf("follower's second read: %q, %v", buf[:n], err)
	}
	if since := time.Since(start); since < 200*time.Millisecond {
		t.Errorf("b came %v after the start, before it was printed", since)
	}
	l.End("uid", "app", 0)
	if n, err := r.Read(buf); err != io.EOF {
		t.Errorf("follower after the end: %q, %v; want EOF", buf[:n], err)
	}
	if got := read(LogOptions{Timestamps: true}); got != start.UTC().Format(time.RFC3339Nano)+" a\n"+start.Add(200*time.Millisecond).UTC().Format(time.RFC3339Nano)+" b\n" {
		t.Errorf("log after the end: %q, want a and b at their times, never nothing", got)
	}
	// A line appended by an attached session goes before lines to come.
	l.Start("uid", "app", 1, time.Now(), printed{time.Hour, "later"})
	l.Append("uid", "app", 1, "typed")
	if got, err := io.ReadAll(l.Open(t.Context(), "uid", "app", 1, LogOptions{})); err != nil || string(got) != "typed\n" {
		t.Errorf("run 1: %q, %v; want the typed line only", got, err)
	}
}
