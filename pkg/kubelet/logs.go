package kubelet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Logs holds what the simulated containers print, per pod, container and
// run (restart count), and hands it out as the kubelet's containerLogs
// endpoint does.
type Logs struct {
	mu      sync.Mutex
	entries map[logKey]*logStream
}

type logKey struct {
	pod       types.UID
	container string
	run       int32
}

type logStream struct {
	lines   []logLine
	started bool
	ended   bool
	// changed is closed and replaced whenever a line is added or the
	// stream ends, waking followers.
	changed chan struct{}
}

type logLine struct {
	at   time.Time
	text string
}

// NewLogs returns an empty log store.
func NewLogs() *Logs { return &Logs{entries: map[logKey]*logStream{}} }

func (l *Logs) stream(k logKey) *logStream {
	s := l.entries[k]
	if s == nil {
		s = &logStream{changed: make(chan struct{})}
		l.entries[k] = s
	}
	return s
}

// Start records the lines a container run prints, the run having started
// at start: each is there from start plus its after (a program prints its
// lines between its sleeps). A run that already started keeps its lines:
// the kubelet starts it again when writing the status that says so failed
// and is retried.
func (l *Logs) Start(pod types.UID, container string, run int32, start time.Time, lines ...printed) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stream(logKey{pod, container, run})
	if s.started {
		return
	}
	s.started = true
	for _, line := range lines {
		s.lines = append(s.lines, logLine{start.Add(line.after), line.text})
	}
	s.wake()
}

// Append adds a line a running container printed now (in a session a
// client attached to).
func (l *Logs) Append(pod types.UID, container string, run int32, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stream(logKey{pod, container, run})
	if s.ended {
		return
	}
	now := time.Now()
	// After every line printed by now, before those still to come.
	i, _ := slices.BinarySearchFunc(s.lines, now, func(line logLine, t time.Time) int {
		if line.at.After(t) {
			return 1
		}
		return -1
	})
	s.lines = slices.Insert(s.lines, i, logLine{now, text})
	s.wake()
}

// End marks a container run's log complete (the container exited, or was
// stopped): what it had not printed yet it never prints.
func (l *Logs) End(pod types.UID, container string, run int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stream(logKey{pod, container, run})
	if !s.ended {
		s.ended = true
		s.lines = s.lines[:s.printed(time.Now())]
		s.wake()
	}
}

// printed is how many of s's lines have been printed at now (they are in
// time order).
func (s *logStream) printed(now time.Time) int {
	n := len(s.lines)
	for n > 0 && s.lines[n-1].at.After(now) {
		n--
	}
	return n
}

// wake tells followers that s changed.
func (s *logStream) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Forget drops a pod's logs (it was deleted).
func (l *Logs) Forget(pod types.UID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.entries {
		if k.pod == pod {
			delete(l.entries, k)
		}
	}
}

// LogOptions are the pods/log query parameters the kubelet applies.
type LogOptions struct {
	Follow       bool
	Timestamps   bool
	TailLines    *int64
	LimitBytes   *int64
	SinceSeconds *int64
	SinceTime    *time.Time
}

// Log is what pods/log reads (see the registry's ContainerLogs): the run
// of container the options ask for, or the kubelet's error.
func (l *Logs) Log(pod *corev1.Pod, container string, o *corev1.PodLogOptions) (func(context.Context) io.ReadCloser, error) {
	run, err := logRun(pod, container, o.Previous)
	if err != nil {
		return nil, err
	}
	options := logOptions(o)
	return func(ctx context.Context) io.ReadCloser { return l.Open(ctx, pod.UID, container, run, options) }, nil
}

// Open returns a container run's log as the kubelet serves it: filtered by
// since, cut to the last tailLines, prefixed with RFC3339Nano timestamps if
// asked, stopped after limitBytes, and, when following, open until the run
// ends or ctx is done.
func (l *Logs) Open(ctx context.Context, pod types.UID, container string, run int32, o LogOptions) io.ReadCloser {
	r, w := io.Pipe()
	go func() {
		err := l.copy(ctx, w, logKey{pod, container, run}, o)
		_ = w.CloseWithError(err)
	}()
	return r
}

func (l *Logs) copy(ctx context.Context, w io.Writer, k logKey, o LogOptions) error {
	var since time.Time
	switch {
	case o.SinceTime != nil:
		since = *o.SinceTime
	case o.SinceSeconds != nil:
		since = time.Now().Add(-time.Duration(*o.SinceSeconds) * time.Second)
	}
	limit := int64(-1)
	if o.LimitBytes != nil {
		limit = *o.LimitBytes
	}
	next := 0
	first := true
	for {
		l.mu.Lock()
		s := l.stream(k)
		now := time.Now()
		printed := s.printed(now)
		// Lines already printed are never changed (Append inserts after
		// them, End cuts after them): read them outside the lock.
		lines := s.lines[next:printed]
		next = printed
		ended, changed := s.ended, s.changed
		var coming time.Time // when the next line is printed, if one is to come
		if printed < len(s.lines) {
			coming = s.lines[printed].at
		}
		l.mu.Unlock()

		var selected []logLine
		for _, line := range lines {
			if !line.at.Before(since) {
				selected = append(selected, line)
			}
		}
		if first && o.TailLines != nil && int64(len(selected)) > *o.TailLines {
			selected = selected[len(selected)-int(*o.TailLines):]
		}
		first = false
		var buf bytes.Buffer
		for _, line := range selected {
			if o.Timestamps {
				buf.WriteString(line.at.UTC().Format(time.RFC3339Nano) + " ")
			}
			buf.WriteString(line.text + "\n")
		}
		out := buf.Bytes()
		if limit >= 0 && int64(len(out)) > limit {
			out = out[:limit]
		}
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return err
			}
		}
		if limit >= 0 {
			limit -= int64(len(out))
			if limit == 0 {
				return nil
			}
		}
		if !o.Follow || ended && coming.IsZero() {
			return nil
		}
		if err := waitLog(ctx, changed, coming); err != nil {
			return nil
		}
	}
}

// waitLog waits until the log changed, its next line is printed (at
// coming, unless zero), or ctx ends (the error).
func waitLog(ctx context.Context, changed <-chan struct{}, coming time.Time) error {
	var printed <-chan time.Time
	if !coming.IsZero() {
		timer := time.NewTimer(time.Until(coming))
		defer timer.Stop()
		printed = timer.C
	}
	select {
	case <-changed:
	case <-printed:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// defaultLines are what a container prints when a test does not say.
func defaultLines(pod *corev1.Pod, c corev1.Container) []string {
	lines := []string{
		fmt.Sprintf("Starting %s (image %s)", c.Name, c.Image),
	}
	for _, p := range c.Ports {
		lines = append(lines, fmt.Sprintf("Listening on %s port %d", strings.ToLower(string(protocol(p.Protocol))), p.ContainerPort))
	}
	lines = append(lines, fmt.Sprintf("%s is ready", c.Name))
	return lines
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}
