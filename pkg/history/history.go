// Package history keeps the API requests a server answered in a bounded
// ring, so that a test can assert on what its code asked for: who, which
// verb on which object, with what query and body, and how it was answered.
// Requests of the server's own components are marked, so that a test can
// leave them out.
package history

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultSize is how many requests are kept unless configured otherwise.
const DefaultSize = 10000

// MaxBody is how much of a request body is kept.
const MaxBody = 64 << 10

// Entry is one request. Code and Duration are zero while it runs.
type Entry struct {
	// Seq numbers requests in arrival order, from 1.
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	User      string    `json:"user"`
	UserAgent string    `json:"userAgent,omitempty"`
	// Internal marks requests of the server's own components (controllers,
	// scheduler, kubelet).
	Internal bool `json:"internal"`
	// Verb is the API verb (get, list, watch, create, update, patch,
	// delete, deletecollection, ...), or the lower-case HTTP method for
	// paths that are not API resources.
	Verb        string `json:"verb"`
	APIGroup    string `json:"apiGroup,omitempty"`
	APIVersion  string `json:"apiVersion,omitempty"`
	Resource    string `json:"resource,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name,omitempty"`
	Path        string `json:"path"`
	Query       string `json:"query,omitempty"`
	Code        int    `json:"code"`
	// Duration is how long the answer took ("1.5ms"), empty while running.
	Duration string `json:"duration,omitempty"`
	// Body is the request body (at most MaxBody bytes) when bodies are kept.
	Body          string `json:"body,omitempty"`
	BodyTruncated bool   `json:"bodyTruncated,omitempty"`
}

// Ring keeps the latest requests.
type Ring struct {
	mu      sync.Mutex
	entries []*Entry // circular, oldest at next when full
	next    int
	full    bool
	seq     int64
	bodies  bool
}

// New returns a ring of size entries (DefaultSize if not positive), keeping
// request bodies if bodies is set.
func New(size int, bodies bool) *Ring {
	if size <= 0 {
		size = DefaultSize
	}
	return &Ring{entries: make([]*Entry, size), bodies: bodies}
}

// Config is the ring's settings, as the admin API shows and takes them.
type Config struct {
	Size   int  `json:"size"`
	Bodies bool `json:"bodies"`
}

// Config returns the ring's settings.
func (r *Ring) Config() Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Config{Size: len(r.entries), Bodies: r.bodies}
}

// Configure changes the settings; a new size drops what is kept.
func (r *Ring) Configure(c Config) error {
	if c.Size < 1 || c.Size > 1000000 {
		return fmt.Errorf("size: %d is not between 1 and 1000000", c.Size)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = c.Bodies
	if c.Size != len(r.entries) {
		r.entries, r.next, r.full = make([]*Entry, c.Size), 0, false
	}
	return nil
}

// KeepsBodies says whether request bodies are recorded.
func (r *Ring) KeepsBodies() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies
}

// Add records a request as it starts; Finish completes the entry.
func (r *Ring) Add(e *Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	e.Seq = r.seq
	r.entries[r.next] = e
	r.next++
	if r.next == len(r.entries) {
		r.next, r.full = 0, true
	}
}

// Finish records how the request was answered.
func (r *Ring) Finish(e *Entry, code int, took time.Duration, body string, truncated bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Code, e.Duration, e.Body, e.BodyTruncated = code, took.String(), body, truncated
}

// Clear forgets every request.
func (r *Ring) Clear() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.entries)
	r.next, r.full = 0, false
}

// Filter selects entries; empty fields select everything.
type Filter struct {
	Verb        string
	APIGroup    string
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	// UserAgent selects entries whose user agent contains it.
	UserAgent string
	User      string
	Since     time.Time
	// Internal: nil selects all, false leaves the server's own components'
	// requests out, true keeps only those.
	Internal *bool
}

// ParseFilter reads a filter from query parameters (verb, apiGroup,
// resource, subresource, namespace, name, userAgent, user, since as RFC 3339,
// internal as a boolean). A resource may carry its group ("deployments.apps").
func ParseFilter(q map[string][]string) (Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	known := map[string]bool{"verb": true, "apiGroup": true, "resource": true, "subresource": true, "namespace": true,
		"name": true, "userAgent": true, "user": true, "since": true, "internal": true}
	for k := range q {
		if !known[k] {
			return Filter{}, fmt.Errorf("unknown query parameter %q (known: verb, apiGroup, resource, subresource, namespace, name, userAgent, user, since, internal)", k)
		}
	}
	f := Filter{Verb: get("verb"), APIGroup: get("apiGroup"), Resource: get("resource"), Subresource: get("subresource"),
		Namespace: get("namespace"), Name: get("name"), UserAgent: get("userAgent"), User: get("user")}
	if res, group, ok := strings.Cut(f.Resource, "."); ok {
		f.Resource = res
		if f.APIGroup != "" && f.APIGroup != group {
			return Filter{}, fmt.Errorf("resource %q and apiGroup %q disagree", get("resource"), f.APIGroup)
		}
		f.APIGroup = group
	}
	if s := get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Filter{}, fmt.Errorf("since: %q is not an RFC 3339 time", s)
		}
		f.Since = t
	}
	if s := get("internal"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return Filter{}, fmt.Errorf("internal: %q is not a boolean", s)
		}
		f.Internal = &b
	}
	return f, nil
}

func (f Filter) match(e *Entry) bool {
	eq := func(want, got string) bool { return want == "" || want == got }
	return eq(f.Verb, e.Verb) && (f.APIGroup == "" || f.APIGroup == e.APIGroup || (f.APIGroup == "core" && e.APIGroup == "")) &&
		eq(f.Resource, e.Resource) && eq(f.Subresource, e.Subresource) && eq(f.Namespace, e.Namespace) &&
		eq(f.Name, e.Name) && eq(f.User, e.User) && strings.Contains(e.UserAgent, f.UserAgent) &&
		!e.Time.Before(f.Since) && (f.Internal == nil || *f.Internal == e.Internal)
}

// List returns copies of the selected entries, oldest first.
func (r *Ring) List(f Filter) []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []Entry{}
	visit := func(e *Entry) {
		if e != nil && f.match(e) {
			out = append(out, *e)
		}
	}
	if r.full {
		for _, e := range r.entries[r.next:] {
			visit(e)
		}
	}
	for _, e := range r.entries[:r.next] {
		visit(e)
	}
	return out
}
