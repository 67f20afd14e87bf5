package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/endpoints/responsewriter"
	"k8s.io/kubernetes/pkg/api/legacyscheme"

	"github.com/mockernetes/mockernetes/pkg/faults"
	"github.com/mockernetes/mockernetes/pkg/history"
	"github.com/mockernetes/mockernetes/pkg/settle"
	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// AdminPrefix is where the test-control API lives. Its own requests are
// neither recorded, nor faulted, nor settled.
const AdminPrefix = testcontrol.Prefix

// DefaultSettleOnWriteTimeout bounds how long a write waits for the
// cluster to settle before it is answered anyway.
const DefaultSettleOnWriteTimeout = 5 * time.Second

// control is one server's test control around its API handler: the request
// history, the faults in force, the settle tracker and settle-on-write.
type control struct {
	history       *history.Ring
	faults        faults.Set
	tracker       *settle.Tracker
	settleOnWrite atomic.Bool
	// openAPI holds requests for the v3 documents until they are complete.
	openAPI      atomic.Pointer[openAPI]
	writeTimeout atomic.Int64 // time.Duration
	longRunning  request.LongRunningRequestCheck
}

// controlUserAgent marks the requests the test-control API makes itself.
const controlUserAgent = "mockernetes-test-control"

var mutatingVerbs = map[string]bool{"create": true, "update": true, "patch": true, "delete": true, "deletecollection": true}

// filter wraps the API handler, inside the generic filters (authentication,
// request info, priority and fairness): it records the request, applies
// the faults, tracks the in-process components' requests for settle, and
// with settle-on-write holds a write's answer until the cluster settled.
func (c *control) filter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, AdminPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		c.openAPI.Load().waitV3(r)
		ctx := r.Context()
		info, _ := request.RequestInfoFrom(ctx)
		if info == nil {
			info = &request.RequestInfo{Verb: strings.ToLower(r.Method), Path: r.URL.Path}
		}
		e := &history.Entry{Time: time.Now(), UserAgent: r.UserAgent(), Verb: info.Verb, Path: r.URL.Path, Query: r.URL.RawQuery,
			Internal: settle.Internal(ctx)} // the loopback client of every in-process component
		if u, ok := request.UserFrom(ctx); ok {
			e.User = u.GetName()
		}
		if info.IsResourceRequest {
			e.APIGroup, e.APIVersion, e.Resource, e.Subresource, e.Namespace, e.Name = info.APIGroup, info.APIVersion, info.Resource, info.Subresource, info.Namespace, info.Name
		}
		c.history.Add(e)
		rec := &recorder{ResponseWriter: w}
		// As upstream's filters wrap: flushing, close notification and
		// hijacking reach the original writer.
		out := responsewriter.WrapForHTTP1Or2(rec)
		var body *bodyCapture
		if c.history.KeepsBodies() && r.Body != nil {
			body = &bodyCapture{ReadCloser: r.Body}
			r.Body = body
		}
		defer func() {
			text, truncated := "", false
			if body != nil {
				text, truncated = body.buf.String(), body.truncated
			}
			c.history.Finish(e, rec.status(), time.Since(e.Time), text, truncated)
		}()
		// A component's work is resource requests; its health and
		// discovery polls are not.
		if e.Internal && info.IsResourceRequest && !c.longRunning(r, info) && e.UserAgent != controlUserAgent {
			defer c.tracker.RequestStarted(e.Verb + " " + e.Path + " by " + e.UserAgent)()
			if mutatingVerbs[e.Verb] {
				// Counted before the request stops being in flight.
				defer func() {
					if code := rec.status(); code >= 200 && code < 300 {
						c.tracker.Wrote()
					}
				}()
			}
		}

		if a, ok := c.faults.Match(faults.Request{Verb: e.Verb, APIGroup: e.APIGroup, Resource: e.Resource, Subresource: e.Subresource,
			Namespace: e.Namespace, Name: e.Name, UserAgent: e.UserAgent, Internal: e.Internal}); ok {
			if a.Latency > 0 {
				t := time.NewTimer(a.Latency)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
			switch {
			case a.Drop:
				panic(http.ErrAbortHandler) // the server closes the connection
			case a.Err != nil:
				responsewriters.ErrorNegotiated(a.Err, legacyscheme.Codecs, schema.GroupVersion{Version: "v1"}, out, r)
				return
			case a.EndWatchAfter > 0 && e.Verb == "watch":
				// Events are counted on the wire: uncompressed, whatever
				// the client accepts.
				r.Header.Del("Accept-Encoding")
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				r = r.WithContext(ctx)
				rec.endAfter, rec.end = a.EndWatchAfter, cancel
			}
		}

		// Sessions (exec, attach, port-forward, proxy) are not writes.
		if c.settleOnWrite.Load() && !e.Internal && mutatingVerbs[e.Verb] && !isDryRun(r) && !c.longRunning(r, info) {
			held := &heldResponse{header: http.Header{}}
			next.ServeHTTP(held, r)
			if err := c.tracker.Settle(ctx, time.Duration(c.writeTimeout.Load())); err != nil {
				var timeout *settle.TimeoutError
				if errors.As(err, &timeout) {
					held.header.Add("Warning", fmt.Sprintf("299 - %q", "mockernetes: "+err.Error()))
				}
			}
			held.writeTo(out)
			return
		}
		next.ServeHTTP(out, r)
	})
}

func isDryRun(r *http.Request) bool { return len(r.URL.Query()["dryRun"]) > 0 }

// recorder notes the status code, and ends a watch after endAfter events:
// it counts the frames written (newline-delimited JSON, or
// length-prefixed protobuf) and, once the last allowed one is complete,
// ends the request, as an API server restarting would.
type recorder struct {
	http.ResponseWriter
	code     int
	wrote    bool
	endAfter int
	end      func()
	frames   frameCounter
}

func (w *recorder) status() int {
	if w.code == 0 && w.wrote {
		return http.StatusOK
	}
	return w.code
}

func (w *recorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	w.wrote = true
	if w.endAfter == 0 {
		return w.ResponseWriter.Write(b)
	}
	if w.frames.done >= w.endAfter {
		return 0, io.ErrClosedPipe
	}
	w.frames.protobuf = strings.Contains(w.Header().Get("Content-Type"), "protobuf")
	n, err := w.ResponseWriter.Write(b)
	if w.frames.count(b[:n]); w.frames.done >= w.endAfter {
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		w.end()
	}
	return n, err
}

// frameCounter counts the complete watch events in a response stream.
type frameCounter struct {
	protobuf bool
	done     int
	header   []byte // a length prefix being read
	left     int    // bytes of the current protobuf frame still to come
}

func (f *frameCounter) count(b []byte) {
	if !f.protobuf {
		f.done += bytes.Count(b, []byte("\n"))
		return
	}
	for len(b) > 0 {
		if f.left == 0 {
			need := 4 - len(f.header)
			take := min(need, len(b))
			f.header = append(f.header, b[:take]...)
			b = b[take:]
			if len(f.header) < 4 {
				return
			}
			f.left = int(f.header[0])<<24 | int(f.header[1])<<16 | int(f.header[2])<<8 | int(f.header[3])
			f.header = f.header[:0]
			if f.left == 0 {
				f.done++
			}
			continue
		}
		take := min(f.left, len(b))
		f.left -= take
		b = b[take:]
		if f.left == 0 {
			f.done++
		}
	}
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// heldResponse keeps a write's answer until the cluster has settled.
type heldResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }
func (h *heldResponse) WriteHeader(code int) {
	if h.code == 0 {
		h.code = code
	}
}
func (h *heldResponse) Write(b []byte) (int, error) {
	if h.code == 0 {
		h.code = http.StatusOK
	}
	return h.body.Write(b)
}

func (h *heldResponse) writeTo(w http.ResponseWriter) {
	for k, v := range h.header {
		w.Header()[k] = v
	}
	if h.code == 0 {
		h.code = http.StatusOK
	}
	w.WriteHeader(h.code)
	_, _ = w.Write(h.body.Bytes())
}

// bodyCapture keeps the first history.MaxBody bytes read from a request body.
type bodyCapture struct {
	io.ReadCloser
	buf       bytes.Buffer
	truncated bool
}

func (b *bodyCapture) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if room := history.MaxBody - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(n, room)])
		if n > room {
			b.truncated = true
		}
	} else if n > 0 {
		b.truncated = true
	}
	return n, err
}
