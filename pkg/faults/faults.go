// Package faults holds the failures a test asks the API server to inject:
// rules that match requests (verb, group, resource, subresource,
// namespace, name, user agent) and answer them with an error status as
// kube-apiserver words it, add latency, drop the connection, or end a watch
// after some events; for the first N matches, or with a seeded probability.
package faults

import (
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Rule is one fault, as the admin API takes it. Match fields left empty
// match anything.
type Rule struct {
	Verb        string `json:"verb,omitempty"`
	APIGroup    string `json:"apiGroup,omitempty"`
	Resource    string `json:"resource,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name,omitempty"`
	// UserAgent matches user agents that contain it.
	UserAgent string `json:"userAgent,omitempty"`
	// Internal extends the rule to the server's own components (controllers,
	// scheduler, kubelet); by default it applies to requests from outside.
	Internal bool `json:"internal,omitempty"`

	// Code answers with this HTTP status and the Status body kube-apiserver
	// sends with it (409 Conflict naming the object, 429 with Retry-After,
	// 500, 503, 504, ...).
	Code int `json:"code,omitempty"`
	// Reason overrides the Status reason where a code has two (409:
	// Conflict or AlreadyExists; 410: Expired or Gone).
	Reason string `json:"reason,omitempty"`
	// Message replaces the default message.
	Message string `json:"message,omitempty"`
	// RetryAfterSeconds is sent as Retry-After (default 1 with 429).
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
	// Latency delays the request ("250ms") before it is answered.
	Latency string `json:"latency,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
	// EndWatchAfter ends a watch after this many events, as when an API
	// server restarts: clients resume it.
	EndWatchAfter *int `json:"endWatchAfter,omitempty"`

	// Times limits the rule to its first N matches (0: no limit).
	Times int `json:"times,omitempty"`
	// Probability applies the rule to this fraction of matches (0 to 1;
	// unset: all), drawn from Seed.
	Probability *float64 `json:"probability,omitempty"`
	Seed        int64    `json:"seed,omitempty"`

	// Hits is how often the rule was applied (read only).
	Hits int `json:"hits"`
}

// Request is what a rule is matched against.
type Request struct {
	Verb, APIGroup, Resource, Subresource, Namespace, Name, UserAgent string
	Internal                                                          bool
}

// Action is what happens to a matched request; the zero value lets it pass.
type Action struct {
	Latency       time.Duration
	Err           *apierrors.StatusError
	Drop          bool
	EndWatchAfter int // 0: no limit
}

var verbs = map[string]bool{"get": true, "list": true, "watch": true, "create": true, "update": true, "patch": true,
	"delete": true, "deletecollection": true, "proxy": true, "connect": true}

// Validate checks a rule as the admin API receives it.
func (r Rule) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r.Verb != "" && !verbs[r.Verb] {
		errs = append(errs, field.NotSupported(path.Child("verb"), r.Verb, []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy", "connect"}))
	}
	actions := 0
	if r.Code != 0 {
		actions++
		if r.Code < 400 || r.Code > 599 || http.StatusText(r.Code) == "" {
			errs = append(errs, field.Invalid(path.Child("code"), r.Code, "must be an HTTP error status (400 to 599)"))
		}
	}
	if r.Drop {
		actions++
	}
	if r.EndWatchAfter != nil {
		actions++
		if *r.EndWatchAfter < 0 {
			errs = append(errs, field.Invalid(path.Child("endWatchAfter"), *r.EndWatchAfter, "must not be negative"))
		}
		if r.Verb != "" && r.Verb != "watch" {
			errs = append(errs, field.Invalid(path.Child("endWatchAfter"), *r.EndWatchAfter, "applies to watches only"))
		}
	}
	if actions > 1 {
		errs = append(errs, field.Invalid(path, "", "code, drop and endWatchAfter exclude each other"))
	}
	if r.Latency != "" {
		if d, err := time.ParseDuration(r.Latency); err != nil || d < 0 || d > 10*time.Minute {
			errs = append(errs, field.Invalid(path.Child("latency"), r.Latency, "must be a duration between 0s and 10m"))
		}
	} else if actions == 0 {
		errs = append(errs, field.Required(path, "one of code, latency, drop, endWatchAfter"))
	}
	switch {
	case r.Reason == "":
	case r.Code == http.StatusConflict && (r.Reason == string(metav1.StatusReasonConflict) || r.Reason == string(metav1.StatusReasonAlreadyExists)):
	case r.Code == http.StatusGone && (r.Reason == string(metav1.StatusReasonExpired) || r.Reason == string(metav1.StatusReasonGone)):
	default:
		errs = append(errs, field.Invalid(path.Child("reason"), r.Reason, "only 409 (Conflict, AlreadyExists) and 410 (Expired, Gone) take a reason"))
	}
	if r.RetryAfterSeconds < 0 {
		errs = append(errs, field.Invalid(path.Child("retryAfterSeconds"), r.RetryAfterSeconds, "must not be negative"))
	}
	if r.Times < 0 {
		errs = append(errs, field.Invalid(path.Child("times"), r.Times, "must not be negative"))
	}
	if r.Probability != nil && (*r.Probability < 0 || *r.Probability > 1) {
		errs = append(errs, field.Invalid(path.Child("probability"), *r.Probability, "must be between 0 and 1"))
	}
	return errs
}

type rule struct {
	Rule
	latency time.Duration
	rand    *rand.Rand
}

// Set is the rules in force. Safe for concurrent use.
type Set struct {
	mu    sync.Mutex
	rules []*rule
	// active is whether rules is non-empty: every API request asks, and
	// most clusters have no rules.
	active atomic.Bool
}

// Replace puts rules in force in place of the current ones, or changes
// nothing and says what is wrong with them.
func (s *Set) Replace(rules []Rule) error {
	var errs field.ErrorList
	next := make([]*rule, 0, len(rules))
	for i, r := range rules {
		errs = append(errs, r.Validate(field.NewPath("faults").Index(i))...)
		d, _ := time.ParseDuration(r.Latency)
		r.Hits = 0
		next = append(next, &rule{Rule: r, latency: d, rand: rand.New(rand.NewSource(r.Seed))})
	}
	if len(errs) > 0 {
		return errs.ToAggregate()
	}
	s.mu.Lock()
	s.rules = next
	s.active.Store(len(next) > 0)
	s.mu.Unlock()
	return nil
}

// Rules returns the rules in force with their hit counts.
func (s *Set) Rules() []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Rule, 0, len(s.rules))
	for _, r := range s.rules {
		out = append(out, r.Rule)
	}
	return out
}

// Clear removes every rule.
func (s *Set) Clear() {
	s.mu.Lock()
	s.rules = nil
	s.active.Store(false)
	s.mu.Unlock()
}

func (r *rule) matches(req Request) bool {
	eq := func(want, got string) bool { return want == "" || want == got }
	return (r.Internal || !req.Internal) && eq(r.Verb, req.Verb) && (eq(r.APIGroup, req.APIGroup) || (r.APIGroup == "core" && req.APIGroup == "")) &&
		eq(r.Resource, req.Resource) && eq(r.Subresource, req.Subresource) && eq(r.Namespace, req.Namespace) &&
		eq(r.Name, req.Name) && strings.Contains(req.UserAgent, r.UserAgent)
}

// Match returns what the first applicable rule does to req and counts the
// hit; false if no rule applies.
func (s *Set) Match(req Request) (Action, bool) {
	if !s.active.Load() {
		return Action{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if !r.matches(req) || (r.Times > 0 && r.Hits >= r.Times) {
			continue
		}
		if r.Probability != nil && r.rand.Float64() >= *r.Probability {
			continue
		}
		r.Hits++
		a := Action{Latency: r.latency, Drop: r.Drop}
		if r.EndWatchAfter != nil {
			a.EndWatchAfter = *r.EndWatchAfter
			if a.EndWatchAfter == 0 {
				a.Drop = true // ended before any event
			}
		}
		if r.Code != 0 {
			a.Err = statusFor(r.Rule, req)
		}
		return a, true
	}
	return Action{}, false
}

// statusFor is the error kube-apiserver answers with that code, for req.
func statusFor(r Rule, req Request) *apierrors.StatusError {
	gr := schema.GroupResource{Group: req.APIGroup, Resource: req.Resource}
	msg := func(def string) string {
		if r.Message != "" {
			return r.Message
		}
		return def
	}
	retry := r.RetryAfterSeconds
	var err *apierrors.StatusError
	switch r.Code {
	case http.StatusBadRequest:
		err = apierrors.NewBadRequest(msg("the server rejected our request for an unknown reason"))
	case http.StatusUnauthorized:
		err = apierrors.NewUnauthorized(msg("Unauthorized"))
	case http.StatusForbidden:
		err = apierrors.NewForbidden(gr, req.Name, errors.New(msg(fmt.Sprintf("cannot %s resource %q in API group %q", req.Verb, req.Resource, req.APIGroup))))
	case http.StatusNotFound:
		err = apierrors.NewNotFound(gr, req.Name)
	case http.StatusMethodNotAllowed:
		err = apierrors.NewMethodNotSupported(gr, req.Verb)
	case http.StatusConflict:
		if r.Reason == string(metav1.StatusReasonAlreadyExists) {
			err = apierrors.NewAlreadyExists(gr, req.Name)
		} else {
			// registry.OptimisticLockErrorMsg, as a failed precondition says it.
			err = apierrors.NewConflict(gr, req.Name, errors.New(msg("the object has been modified; please apply your changes to the latest version and try again")))
		}
	case http.StatusGone:
		if r.Reason == string(metav1.StatusReasonGone) {
			err = apierrors.NewGone(msg("the resource is gone"))
		} else {
			err = apierrors.NewResourceExpired(msg("The resourceVersion for the provided list is too old."))
		}
	case http.StatusRequestEntityTooLarge:
		err = apierrors.NewRequestEntityTooLargeError(msg("limit is 3145728"))
	case http.StatusUnprocessableEntity:
		err = apierrors.NewInvalid(schema.GroupKind{Group: req.APIGroup, Kind: req.Resource}, req.Name,
			field.ErrorList{field.Invalid(field.NewPath("metadata"), req.Name, msg("rejected by a fault rule"))})
	case http.StatusTooManyRequests:
		if retry == 0 {
			retry = 1
		}
		// What API priority and fairness answers.
		err = apierrors.NewTooManyRequests(msg("Too many requests, please try again later."), retry)
	case http.StatusInternalServerError:
		err = apierrors.NewInternalError(errors.New(msg("an error on the server (\"\") has prevented the request from succeeding")))
	case http.StatusServiceUnavailable:
		err = apierrors.NewServiceUnavailable(msg("the server is currently unable to handle the request"))
	case http.StatusGatewayTimeout:
		// What the request timeout filter answers.
		err = apierrors.NewTimeoutError(msg("request did not complete within requested timeout - context deadline exceeded"), retry)
	default:
		err = apierrors.NewGenericServerResponse(r.Code, req.Verb, gr, req.Name, msg(http.StatusText(r.Code)), retry, true)
	}
	if retry > 0 {
		if err.ErrStatus.Details == nil {
			err.ErrStatus.Details = &metav1.StatusDetails{}
		}
		err.ErrStatus.Details.RetryAfterSeconds = int32(retry)
	}
	return err
}
