package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Fuzz targets for what clients send: request bodies of every content
// type, every patch type, selectors and continue tokens, and the admin API.
// Whatever the input, the answer is never a 5xx (a panic in a handler is
// recovered into a 500, so it fails too), an error is a Status, and the
// server keeps serving. `go test` runs the seeds (and testdata/fuzz); `make
// fuzz` fuzzes each target for a while.
//
// The server is called in process, through its whole handler chain
// (authentication with the loopback token, admission, the store), without
// the network, so that a fuzzer gets many inputs a second.

// fuzzServer runs a server (no controllers, no nodes: the API alone) for
// one fuzz target.
type fuzzServer struct {
	handler http.Handler
	token   string
}

func newFuzzServer(f testing.TB) *fuzzServer {
	f.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	srv, cfg, _ := runServer(f, ctx, func(o *Options) {
		o.Controllers = []string{"none"}
		o.Nodes = 0
		o.GatewayAPI = false
	})
	if err := srv.WaitReady(ctx); err != nil {
		f.Fatal(err)
	}
	return &fuzzServer{handler: srv.GenericAPIServer.Handler, token: cfg.Generic.LoopbackClientConfig.BearerToken}
}

// do sends one request and checks the answer: below 500, a Status when an
// error. It returns the status code.
func (s *fuzzServer) do(t *testing.T, method, target, contentType string, body []byte) int {
	t.Helper()
	rec, panicked := s.raw(method, target, contentType, body)
	if panicked != "" {
		// net/http recovers a panic that escapes the handler chain (after
		// upstream's panic recovery answered 500), so the server keeps
		// serving; one that starts in upstream code (kube-apiserver
		// 1.37.2 panics alike) is its answer, one that starts in ours is
		// a bug.
		origin := panicOrigin(panicked)
		if strings.HasPrefix(origin, "github.com/mockernetes/") || origin == "" {
			t.Fatalf("%s %s (%s, %d bytes): panic in %q: %s", method, target, contentType, len(body), origin, truncate(panicked))
		}
		t.Logf("%s %s: upstream panic in %s, as kube-apiserver's", method, target, origin)
		return http.StatusInternalServerError
	}
	if rec.Code >= 500 && !upstream500(contentType, rec.Body.Bytes()) {
		t.Fatalf("%s %s (%s, %d bytes): %d %s", method, target, contentType, len(body), rec.Code, truncate(rec.Body.String()))
	}
	if rec.Code >= 400 {
		var st metav1.Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Kind != "Status" || int(st.Code) != rec.Code {
			t.Fatalf("%s %s: %d with a body that is not its Status: %s", method, target, rec.Code, truncate(rec.Body.String()))
		}
	}
	return rec.Code
}

// upstream500s are the 500s kube-apiserver 1.37.2 answers the same input
// with, which the server keeps: errors upstream's patch and apply code
// returns as plain errors, which the handler turns into a 500.
var upstream500s = []string{
	// structuredmerge.go: an apply patch with a field its schema lacks.
	"failed to create typed patch object (",
}

// strategicMergeErrors are the messages of k8s.io/apimachinery's
// strategicpatch and mergepatch errors that the patch handler does not
// map to a 400 (interpretStrategicMergePatchError knows a few of them).
var strategicMergeErrors = []string{
	"unknown patch type: ", "merging an object in json but data type is not struct", "unable to find api field",
	"invalid value for special key", "cannot merge lists", "merging lists cannot", "value for key ", "list element types",
	"no elements in", "unknown type: ", "invalid element type", "cannot find merge key", "unexpected patch strategy",
	"expected kind", "expected slice", "expected visit", "map: ", "expected a ", "The order in patch list",
}

func upstream500(contentType string, body []byte) bool {
	var st metav1.Status
	if json.Unmarshal(body, &st) != nil || st.Code != http.StatusInternalServerError {
		return false
	}
	known := upstream500s
	if contentType == "application/strategic-merge-patch+json" {
		known = append(known, strategicMergeErrors...)
	}
	for _, prefix := range known {
		if strings.HasPrefix(st.Message, prefix) {
			return true
		}
	}
	return false
}

// panicOrigin is the function a panic's stack trace (as upstream's
// finisher and debug.Stack print it) starts in: the one after the first
// runtime panic frame (upstream's filters re-panic with the original
// trace in the value, which comes first).
func panicOrigin(trace string) string {
	lines := strings.Split(trace, "\n")
	origin := ""
	for i, l := range lines { // the first: re-panics come after it
		if strings.HasPrefix(strings.TrimSpace(l), "panic(") && i+2 < len(lines) {
			origin = strings.TrimSpace(lines[i+2])
			break
		}
	}
	if i := strings.LastIndexByte(origin, '('); i > 0 && !strings.HasSuffix(origin[:i], ")") {
		origin = origin[:i]
	}
	return origin
}

// raw sends one request as the loopback user; panicked is a panic that
// escaped the handler chain, with its stack.
func (s *fuzzServer) raw(method, target, contentType string, body []byte) (rec *httptest.ResponseRecorder, panicked string) {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	ctx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
	defer cancel()
	rec = httptest.NewRecorder()
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprint(r) + "\n" + string(debug.Stack())
		}
	}()
	s.handler.ServeHTTP(rec, req.WithContext(ctx))
	return rec, ""
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// alive checks that the server still answers a plain request.
func (s *fuzzServer) alive(t *testing.T) {
	t.Helper()
	if code := s.do(t, http.MethodGet, "/api/v1/namespaces/default", "", nil); code != http.StatusOK {
		t.Fatalf("the server stopped answering: %d", code)
	}
}

var contentTypes = []string{
	"application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "application/cbor",
	"text/plain", "application/json; charset=utf-8", "", "application/apply-patch+yaml",
}

// seedBodies are malformed and well-formed documents the targets start
// from; inputs a fuzzer finds failing go to testdata/fuzz, where `go test`
// replays them.
var seedBodies = []string{
	`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"seed"},"data":{"a":"b"}}`,
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: seed-yaml\ndata: {a: b}\n",
	`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"`,
	`not json at all`,
	"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"utf\"},\"data\":{\"k\":\"\xff\xfe\"}}",
	`{"apiVersion":"v9","kind":"ConfigMap","metadata":{"name":"v9"}}`,
	`{"apiVersion":"v1","kind":"Widget","metadata":{"name":"w"}}`,
	`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}`,
	`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n","labels":{"a":{"b":{"c":[1,2,{"d":null}]}}}}}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("{\"a\":", 5000) + "1" + strings.Repeat("}", 5000),
	"k8s\x00\n\x02v1\x12\tConfigMap\x1a\x00",
	"\xd9\xd9\xf7\xa1dkinddPod",
	"",
}

func FuzzCreate(f *testing.F) {
	s := newFuzzServer(f)
	for i, b := range seedBodies {
		f.Add(uint8(i), []byte(b))
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) { fuzzCreate(t, s, kind, body) })
}

// fuzzCreate POSTs body as a ConfigMap and as a Deployment, in the
// content type kind picks.
func fuzzCreate(t *testing.T, s *fuzzServer, kind uint8, body []byte) {
	contentType := contentTypes[int(kind)%len(contentTypes)]
	for _, path := range []string{"/api/v1/namespaces/default/configmaps", "/apis/apps/v1/namespaces/default/deployments"} {
		s.do(t, http.MethodPost, path+"?fieldValidation=Strict", contentType, body)
	}
	s.alive(t)
}

var patchTypes = []string{
	"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
	"application/apply-patch+yaml", "application/apply-patch+cbor", "application/json",
}

var patchSeeds = []string{
	`[{"op":"test","path":"/data/k","value":"v"},{"op":"replace","path":"/data/k","value":"w"}]`,
	`[{"op":"remove","path":"/metadata/name"}]`,
	`[{"op":"move","from":"/data","path":"/data/k"}]`,
	`{"data":{"k":null,"n":"1"}}`,
	`{"metadata":{"$patch":"delete"}}`,
	`{"data":{"$setElementOrder/k":[1]}}`,
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: target}\ndata: {k: applied}\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
	`{"data":`,
	`[]`,
	`null`,
}

// newPatchTarget creates the ConfigMap fuzzPatch patches.
func newPatchTarget(tb testing.TB, s *fuzzServer) {
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"target","labels":{"a":"b"}},"data":{"k":"v"}}`
	if rec, _ := s.raw(http.MethodPost, "/api/v1/namespaces/default/configmaps", "application/json", []byte(cm)); rec.Code != http.StatusCreated {
		tb.Fatalf("create the target: %d %s", rec.Code, rec.Body.String())
	}
}

func FuzzPatch(f *testing.F) {
	s := newFuzzServer(f)
	newPatchTarget(f, s)
	for i, b := range patchSeeds {
		f.Add(uint8(i), []byte(b))
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) { fuzzPatch(t, s, kind, body) })
}

// fuzzPatch sends body as a patch of the type kind picks, to the
// ConfigMap and to its status.
func fuzzPatch(t *testing.T, s *fuzzServer, kind uint8, body []byte) {
	patchType := patchTypes[int(kind)%len(patchTypes)]
	s.do(t, http.MethodPatch, "/api/v1/namespaces/default/configmaps/target?fieldManager=fuzz", patchType, body)
	s.do(t, http.MethodPatch, "/api/v1/namespaces/default/configmaps/target/status?fieldManager=fuzz&force=true", patchType, body)
	s.alive(t)
}

// listSeeds are label selector, field selector, continue token, limit.
var listSeeds = [][4]string{
	{"a=b,c!=d", "metadata.name=x", "", "10"},
	{"a in (b,c),!d", "spec.nodeName=", "", ""},
	{"=", "metadata.namespace!=default,status.phase=Running", "", "-1"},
	{"a=b", "", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiJ4In0", "1"},
	{"", "", "not base64!", "5"},
	{"x", "unknown.field=1", "e30", "abc"},
	{strings.Repeat("a", 300) + "=b", strings.Repeat(",", 50), "", "9999999999999999999999"},
}

func FuzzList(f *testing.F) {
	s := newFuzzServer(f)
	for _, seed := range listSeeds {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	f.Fuzz(func(t *testing.T, labels, fields, continueToken, limit string) {
		fuzzList(t, s, labels, fields, continueToken, limit)
	})
}

// fuzzList LISTs pods, ConfigMaps and Deployments with these parameters.
func fuzzList(t *testing.T, s *fuzzServer, labels, fields, continueToken, limit string) {
	q := url.Values{"labelSelector": {labels}, "fieldSelector": {fields}, "continue": {continueToken}, "limit": {limit}}
	for _, path := range []string{"/api/v1/pods", "/api/v1/namespaces/default/configmaps", "/apis/apps/v1/deployments"} {
		s.do(t, http.MethodGet, path+"?"+q.Encode(), "", nil)
	}
	s.alive(t)
}

var adminSeeds = []string{
	`{"rules":[{"match":{"verb":"create","resource":"configmaps"},"status":409,"times":1}]}`,
	`{"rules":[{"match":{"verb":"frobnicate"},"status":999}]}`,
	`{"rules":[{"match":{"labels":"a in ("},"latency":"-1s"}]}`,
	`{"settleOnWrite":true,"settleOnWriteTimeout":"1ms"}`,
	`{"settleOnWrite":"yes"}`,
	`{"user":"alice","groups":["dev"]}`,
	`{"user":""}`,
	`{"unknown":1}`,
	`[]`,
	`{`,
}

var adminTargets = []struct{ method, path string }{
	{http.MethodPut, FaultsPath},
	{http.MethodPut, SettingsPath},
	{http.MethodPost, KubeconfigPath},
	{http.MethodPost, SettlePath + "?timeout=1s"},
	{http.MethodPut, PodBehavioursPath},
	{http.MethodGet, RequestsPath + "?verb=get&since=yesterday"},
}

func FuzzAdmin(f *testing.F) {
	s := newFuzzServer(f)
	for i, b := range adminSeeds {
		f.Add(uint8(i), []byte(b))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) { fuzzAdmin(t, s, which, body) })
}

// fuzzAdmin sends body to the admin endpoint which picks.
func fuzzAdmin(t *testing.T, s *fuzzServer, which uint8, body []byte) {
	target := adminTargets[int(which)%len(adminTargets)]
	s.do(t, target.method, target.path, "application/json", body)
	// Injected faults answer 5xx on purpose: clear them, and the
	// settings, before the server's health is judged.
	s.do(t, http.MethodDelete, FaultsPath, "", nil)
	s.do(t, http.MethodPut, SettingsPath, "application/json", []byte(`{"settleOnWrite":false}`))
	s.alive(t)
}
