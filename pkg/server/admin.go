package server

import (
	"bytes"
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
			body, err := io.ReadAll(io.LimitReader(r.Body, 3<<20))
			if err == nil {
				dec := json.NewDecoder(bytes.NewReader(body))
				dec.DisallowUnknownFields()
				err = dec.Decode(&f)
			}
			if err == nil && len(f.Nodes) > 0 {
				err = fmt.Errorf("nodes cannot be changed at run time")
			}
			if err == nil {
				err = k.SetRules(f.PodBehaviours)
			}
			if err != nil {
				writeJSON(w, http.StatusBadRequest, apierrors.NewBadRequest("pod behaviours: "+err.Error()).ErrStatus)
				return
			}
			writeJSON(w, http.StatusOK, kubelet.File{PodBehaviours: k.Rules()})
		default:
			st := apierrors.NewMethodNotSupported(metav1.SchemeGroupVersion.WithResource("podbehaviours").GroupResource(), r.Method).ErrStatus
			writeJSON(w, http.StatusMethodNotAllowed, st)
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	if st, ok := v.(metav1.Status); ok {
		st.Kind, st.APIVersion = "Status", "v1"
		v = st
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
