package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mockernetes/mockernetes/pkg/kubelet"
)

// PodBehavioursPath is the admin endpoint of the pod behaviour rules: GET
// returns them, PUT replaces them ({"podBehaviours": [...]}, the shape of
// --cluster-config). It sits behind the server's authentication and
// authorization like any non-resource path.
const PodBehavioursPath = "/mockernetes/v1/podbehaviours"

func (s *Server) installAdmin(k *kubelet.Kubelet) {
	s.GenericAPIServer.Handler.NonGoRestfulMux.HandleFunc(PodBehavioursPath, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, kubelet.File{PodBehaviours: k.Rules()})
		case http.MethodPut:
			var f kubelet.File
			dec := json.NewDecoder(io.LimitReader(r.Body, 3<<20))
			dec.DisallowUnknownFields()
			err := dec.Decode(&f)
			if err == nil && len(f.Nodes) > 0 {
				err = fmt.Errorf("nodes cannot be changed at run time")
			}
			if err == nil {
				err = k.SetRules(f.PodBehaviours)
			}
			if err != nil {
				writeStatus(w, apierrors.NewBadRequest("pod behaviours: "+err.Error()))
				return
			}
			writeJSON(w, http.StatusOK, kubelet.File{PodBehaviours: k.Rules()})
		default:
			writeStatus(w, apierrors.NewMethodNotSupported(metav1.SchemeGroupVersion.WithResource("podbehaviours").GroupResource(), r.Method))
		}
	})
}

// writeStatus answers with err's Status, as the API answers errors.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.Kind, st.APIVersion = "Status", "v1"
	writeJSON(w, int(st.Code), st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
