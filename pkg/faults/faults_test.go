package faults

import (
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
)

// Rules match, count, stop after Times, draw reproducibly with a seed, and
// answer in kube-apiserver's words.
func TestSet(t *testing.T) {
	var s Set
	get := Request{Verb: "get", APIGroup: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UserAgent: "app/1.0"}
	if err := s.Replace([]Rule{
		{Verb: "get", APIGroup: "apps", Resource: "deployments", Name: "web", Code: 409, Times: 2},
		{Verb: "get", UserAgent: "app/", Code: 429},
	}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{409, 409, 429} {
		a, ok := s.Match(get)
		if !ok || a.Err == nil || int(a.Err.ErrStatus.Code) != want {
			t.Fatalf("request %d: %v %+v, want %d", i, ok, a, want)
		}
	}
	a, _ := s.Match(Request{Verb: "get", Resource: "deployments", APIGroup: "apps", Name: "web", UserAgent: "app/1.0"})
	if !apierrors.IsTooManyRequests(a.Err) || a.Err.ErrStatus.Details.RetryAfterSeconds != 1 {
		t.Errorf("429: %+v", a.Err)
	}
	if _, ok := s.Match(Request{Verb: "get", UserAgent: "app/1.0", Internal: true}); ok {
		t.Error("a rule without internal matched an in-process request")
	}
	if r := s.Rules(); r[0].Hits != 2 || r[1].Hits != 2 {
		t.Errorf("hits %+v", r)
	}

	// 409 names the object as a failed precondition does.
	if err := s.Replace([]Rule{{Code: http.StatusConflict}}); err != nil {
		t.Fatal(err)
	}
	a, _ = s.Match(get)
	if want := `Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again`; a.Err.Error() != want {
		t.Errorf("409: %q", a.Err.Error())
	}

	// The same seed draws the same requests.
	draw := func() string {
		var s Set
		if err := s.Replace([]Rule{{Code: 500, Probability: ptr.To(0.5), Seed: 7}}); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for range 32 {
			_, ok := s.Match(get)
			b.WriteString(map[bool]string{true: "x", false: "."}[ok])
		}
		return b.String()
	}
	first := draw()
	if first != draw() || !strings.Contains(first, "x") || !strings.Contains(first, ".") {
		t.Errorf("seeded draws %q and %q", first, draw())
	}

	// Bad rules change nothing.
	if err := s.Replace([]Rule{{Code: 200}, {Verb: "fetch", Code: 500}, {}, {Latency: "soon"}, {Code: 500, Drop: true}}); err == nil {
		t.Error("bad rules accepted")
	} else {
		for _, field := range []string{"faults[0].code", "faults[1].verb", "faults[2]", "faults[3].latency", "faults[4]"} {
			if !strings.Contains(err.Error(), field) {
				t.Errorf("error does not name %s: %v", field, err)
			}
		}
	}
	if r := s.Rules(); len(r) != 1 || r[0].Code != http.StatusConflict {
		t.Errorf("rules changed by a bad replace: %+v", r)
	}
}
