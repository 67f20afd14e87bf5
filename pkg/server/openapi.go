package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/mux"
	"k8s.io/apiserver/pkg/server/routes"
	"k8s.io/apiserver/pkg/util/responsewriter"
	"k8s.io/klog/v2"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// openAPI is the built-in server's OpenAPI documents, built in the
// background, and how far the aggregator, which serves them merged with the
// other servers', has taken them in.
type openAPI struct {
	// built is closed once the built-in server's documents exist (the
	// OpenAPI*VersionedService fields of the built-in server are set).
	built chan struct{}
	// preparing is set while the aggregator prepares to run: it asks for
	// the v3 index then, and must not wait for the build (start-up would).
	preparing atomic.Bool
	// v3Merged is closed once the aggregator's v3 index lists the built-in
	// groups; requests for /openapi/v3 wait for it (the control filter).
	v3Merged chan struct{}
}

// installOpenAPI serves /openapi/v2 and /openapi/v3 of the built-in server
// (with the apiextensions group; the CRD OpenAPI controllers add the CRDs)
// with the generic server's own installers (what PrepareRun does), but
// builds the documents in the background: they are the largest cost of
// start-up (~230 ms of CPU on two cores) and readiness need not wait for
// them. Requests that arrive earlier, the aggregator's downloads among
// them, wait for the build.
func installOpenAPI(c *completedConfig, g, apiext *genericapiserver.GenericAPIServer) *openAPI {
	o := &openAPI{built: make(chan struct{}), v3Merged: make(chan struct{})}
	specRoutes := openAPIRoutes(g, apiext)
	built := mux.NewPathRecorderMux("openapi")
	go func() {
		defer close(o.built)
		g.OpenAPIVersionedService, g.StaticOpenAPISpec = routes.OpenAPI{Config: c.generic.OpenAPIConfig}.InstallV2(specRoutes, built)
		g.OpenAPIV3VersionedService = routes.OpenAPI{V3Config: c.generic.OpenAPIV3Config}.InstallV3(specRoutes, built)
	}()
	wait := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-o.built:
			built.ServeHTTP(w, r)
			return
		default:
		}
		if o.preparing.Load() {
			// The aggregator's first look: it looks again a second later.
			http.Error(w, "the OpenAPI documents are being built", http.StatusServiceUnavailable)
			return
		}
		select {
		case <-o.built:
			built.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
	g.Handler.NonGoRestfulMux.Handle("/openapi/v2", wait)
	g.Handler.NonGoRestfulMux.Handle("/openapi/v3", wait)
	g.Handler.NonGoRestfulMux.HandlePrefix("/openapi/v3/", wait)
	return o
}

// awaitV3Merged closes v3Merged once the aggregator's v3 index (served by
// h) lists the built-in groups, which its controller takes in a second
// after it started and then every second; or once ctx ends (a stopping
// server holds no request back).
func (o *openAPI) awaitV3Merged(ctx context.Context, h http.Handler) {
	defer close(o.v3Merged)
	select {
	case <-o.built:
	case <-ctx.Done():
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(time.Minute)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/openapi/v3", nil)
		if err != nil {
			return
		}
		rec := responsewriter.NewInMemoryResponseWriter()
		h.ServeHTTP(rec, req)
		var index struct {
			Paths map[string]json.RawMessage `json:"paths"`
		}
		if rec.RespCode() == http.StatusOK && json.Unmarshal(rec.Data(), &index) == nil && index.Paths["api/v1"] != nil {
			return
		}
		if time.Now().After(deadline) {
			klog.InfoS("The aggregated OpenAPI v3 index still lacks the built-in groups; serving it as it is", "status", rec.RespCode())
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// waitV3 holds a request for the v3 documents until the aggregator serves
// the built-in groups in them.
func (o *openAPI) waitV3(r *http.Request) {
	if o == nil || (r.URL.Path != "/openapi/v3" && !strings.HasPrefix(r.URL.Path, "/openapi/v3/")) {
		return
	}
	select {
	case <-o.v3Merged:
	case <-r.Context().Done():
	}
}

// definitionNames remembers the namer's answer for each type. kube-openapi
// asks for a type's name at every reference to it, and the namer builds
// the type's x-kubernetes-group-version-kind list anew each time: about 60
// entries for DeleteOptions and WatchEvent, which every route references.
// The lists are shared between answers; the builders copy them into their
// schemas and replace them there rather than change them in place.
func definitionNames(namer func(string) (string, spec.Extensions)) func(string) (string, spec.Extensions) {
	type answer struct {
		name string
		ext  spec.Extensions
	}
	var mu sync.Mutex
	known := map[string]answer{}
	return func(typ string) (string, spec.Extensions) {
		mu.Lock()
		a, ok := known[typ]
		if !ok {
			a.name, a.ext = namer(typ)
			known[typ] = a
		}
		mu.Unlock()
		if a.ext == nil {
			return a.name, nil
		}
		ext := make(spec.Extensions, len(a.ext))
		for k, v := range a.ext {
			ext[k] = v
		}
		return a.name, ext
	}
}
