package server

import (
	"net/http"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/mux"
	"k8s.io/apiserver/pkg/server/routes"
)

// installOpenAPI serves /openapi/v2 and /openapi/v3 with the generic
// server's own installers (what PrepareRun does), but builds the documents in
// the background: they are the largest cost of start-up (~230 ms of CPU on
// two cores) and readiness need not wait for them. Requests that arrive
// earlier wait for the build. The routes are final when this runs.
func (s *Server) installOpenAPI(c *completedConfig, apiext *genericapiserver.GenericAPIServer) {
	g := s.GenericAPIServer
	specRoutes := openAPIRoutes(g, apiext)
	built := mux.NewPathRecorderMux("openapi")
	done := make(chan struct{})
	s.openAPIBuilt = done
	go func() {
		defer close(done)
		g.OpenAPIVersionedService, g.StaticOpenAPISpec = routes.OpenAPI{Config: c.generic.OpenAPIConfig}.InstallV2(specRoutes, built)
		g.OpenAPIV3VersionedService = routes.OpenAPI{V3Config: c.generic.OpenAPIV3Config}.InstallV3(specRoutes, built)
	}()
	wait := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
			built.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
	g.Handler.NonGoRestfulMux.Handle("/openapi/v2", wait)
	g.Handler.NonGoRestfulMux.Handle("/openapi/v3", wait)
	g.Handler.NonGoRestfulMux.HandlePrefix("/openapi/v3/", wait)
}
