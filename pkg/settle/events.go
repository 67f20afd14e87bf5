package settle

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// EventGrace bounds how long an event recorded but not written keeps the
// cluster busy: client-go's correlator drops some events on purpose (its
// spam filter), and those never reach the sink.
const EventGrace = time.Second

// Events follows one component's events through client-go's broadcaster,
// which writes them on goroutines of its own: from the recorder's call until
// the sink has written them. Wrap the component's recorders with Recorder and
// its sink with Sink. A nil *Events wraps nothing.
type Events struct {
	name              string
	grace             time.Duration
	recorded, written atomic.Int64
	// last is when an event was last recorded (Unix ns).
	last atomic.Int64
}

// Events returns the event tracking of a component named name (nil if t is
// nil).
func (t *Tracker) Events(name string) *Events { return t.EventsWithGrace(name, EventGrace) }

// SeriesGrace is the grace of events recorded through the events.k8s.io
// broadcaster (k8s.io/client-go/tools/events): it writes the first two of a
// series and then only counts the rest, so an event that is never written
// is the rule there, not the exception. Writing one that is due starts
// within microseconds of recording it.
const SeriesGrace = 50 * time.Millisecond * raceSlowdown

// EventsWithGrace is Events with another bound on how long a recorded event
// that was never written keeps the cluster busy.
func (t *Tracker) EventsWithGrace(name string, grace time.Duration) *Events {
	if t == nil {
		return nil
	}
	e := &Events{name: name, grace: grace}
	t.mu.Lock()
	t.events = append(t.events, e)
	t.mu.Unlock()
	return e
}

// busy says how many events are recorded and not yet written, "" if none
// (or if the last was recorded more than its grace ago: it was dropped).
func (e *Events) busy(now time.Time) string {
	recorded, written := e.recorded.Load(), e.written.Load()
	if written >= recorded {
		return ""
	}
	if now.Sub(time.Unix(0, e.last.Load())) >= e.grace {
		e.written.CompareAndSwap(written, recorded) // dropped: forgiven
		return ""
	}
	return fmt.Sprintf("%d event(s) of %s not yet written", recorded-written, e.name)
}

func (e *Events) recordedOne() {
	e.last.Store(time.Now().UnixNano())
	e.recorded.Add(1)
}

// wroteOne counts a sink write (a retry may write one event twice: never
// more than recorded).
func (e *Events) wroteOne() {
	for {
		w := e.written.Load()
		if w >= e.recorded.Load() || e.written.CompareAndSwap(w, w+1) {
			return
		}
	}
}

// Recorder wraps r so that its events are counted as recorded.
func (e *Events) Recorder(r record.EventRecorder) record.EventRecorder {
	if e == nil {
		return r
	}
	return &trackedRecorder{EventRecorder: r, events: e}
}

// Sink wraps s so that its writes are counted.
func (e *Events) Sink(s record.EventSink) record.EventSink {
	if e == nil {
		return s
	}
	return &trackedSink{EventSink: s, events: e}
}

type trackedRecorder struct {
	record.EventRecorder
	events *Events
}

func (r *trackedRecorder) Event(object runtime.Object, eventtype, reason, message string) {
	r.events.recordedOne()
	r.EventRecorder.Event(object, eventtype, reason, message)
}

func (r *trackedRecorder) Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	r.events.recordedOne()
	r.EventRecorder.Eventf(object, eventtype, reason, messageFmt, args...)
}

func (r *trackedRecorder) AnnotatedEventf(object runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...any) {
	r.events.recordedOne()
	r.EventRecorder.AnnotatedEventf(object, annotations, eventtype, reason, messageFmt, args...)
}

type trackedSink struct {
	record.EventSink
	events *Events
}

func (s *trackedSink) Create(event *corev1.Event) (*corev1.Event, error) {
	defer s.events.wroteOne()
	return s.EventSink.Create(event)
}

func (s *trackedSink) Update(event *corev1.Event) (*corev1.Event, error) {
	defer s.events.wroteOne()
	return s.EventSink.Update(event)
}

func (s *trackedSink) Patch(event *corev1.Event, data []byte) (*corev1.Event, error) {
	defer s.events.wroteOne()
	return s.EventSink.Patch(event, data)
}

// EventsRecorder wraps an events.k8s.io recorder (kube-scheduler's kind) so
// that its events are counted as recorded.
func (e *Events) EventsRecorder(r events.EventRecorderLogger) events.EventRecorderLogger {
	if e == nil {
		return r
	}
	return &trackedEventsRecorder{EventRecorderLogger: r, events: e}
}

// EventsSink wraps an events.k8s.io sink so that its writes are counted.
func (e *Events) EventsSink(s events.EventSink) events.EventSink {
	if e == nil {
		return s
	}
	return &trackedEventsSink{EventSink: s, events: e}
}

type trackedEventsRecorder struct {
	events.EventRecorderLogger
	events *Events
}

func (r *trackedEventsRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.events.recordedOne()
	r.EventRecorderLogger.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

func (r *trackedEventsRecorder) WithLogger(logger klog.Logger) events.EventRecorderLogger {
	return &trackedEventsRecorder{EventRecorderLogger: r.EventRecorderLogger.WithLogger(logger), events: r.events}
}

type trackedEventsSink struct {
	events.EventSink
	events *Events
}

func (s *trackedEventsSink) Create(ctx context.Context, event *eventsv1.Event) (*eventsv1.Event, error) {
	defer s.events.wroteOne()
	return s.EventSink.Create(ctx, event)
}

func (s *trackedEventsSink) Update(ctx context.Context, event *eventsv1.Event) (*eventsv1.Event, error) {
	defer s.events.wroteOne()
	return s.EventSink.Update(ctx, event)
}

func (s *trackedEventsSink) Patch(ctx context.Context, old *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	defer s.events.wroteOne()
	return s.EventSink.Patch(ctx, old, data)
}
