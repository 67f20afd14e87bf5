package history

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

// The ring keeps the latest entries in order; filters select.
func TestRing(t *testing.T) {
	r := New(3, false)
	start := time.Now()
	for i := range 5 {
		e := &Entry{Time: start.Add(time.Duration(i) * time.Second), Verb: "get", Resource: "pods", Name: fmt.Sprint(i), Internal: i%2 == 0}
		r.Add(e)
		r.Finish(e, 200, time.Millisecond, "", false)
	}
	var got []string
	for _, e := range r.List(Filter{}) {
		got = append(got, e.Name)
	}
	if fmt.Sprint(got) != "[2 3 4]" {
		t.Errorf("kept %v, want the last three in order", got)
	}
	for q, want := range map[string]int{
		"internal=false": 1, "internal=true": 2, "name=3": 1, "resource=pods": 3, "verb=list": 0,
		"since=" + url.QueryEscape(start.Add(3*time.Second).Format(time.RFC3339Nano)): 2,
	} {
		v, _ := url.ParseQuery(q)
		f, err := ParseFilter(v)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n := len(r.List(f)); n != want {
			t.Errorf("%s: %d entries, want %d", q, n, want)
		}
	}
	for _, q := range []string{"internal=maybe", "since=yesterday", "colour=red", "resource=deployments.apps&apiGroup=batch"} {
		v, _ := url.ParseQuery(q)
		if _, err := ParseFilter(v); err == nil {
			t.Errorf("%s: accepted", q)
		}
	}
	if err := r.Configure(Config{Size: 0}); err == nil {
		t.Error("size 0 accepted")
	}
	r.Clear()
	if n := len(r.List(Filter{})); n != 0 {
		t.Errorf("%d entries after Clear", n)
	}
}
