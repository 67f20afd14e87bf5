package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/history"
	"github.com/mockernetes/mockernetes/pkg/kubelet"
	"github.com/mockernetes/mockernetes/pkg/settle"
	"github.com/mockernetes/mockernetes/pkg/testcontrol"
)

// The test-control API (paths and shapes in pkg/testcontrol), under
// AdminPrefix, behind the server's authentication and authorization like
// any non-resource path. Every error is a Status, as the API answers errors.
type (
	Settings     = testcontrol.Settings
	FaultList    = testcontrol.FaultList
	RequestList  = testcontrol.RequestList
	ResetRequest = testcontrol.ResetRequest
)

const (
	PodBehavioursPath = testcontrol.PodBehavioursPath
	SettlePath        = testcontrol.SettlePath
	SettingsPath      = testcontrol.SettingsPath
	ResetPath         = testcontrol.ResetPath
	FaultsPath        = testcontrol.FaultsPath
	RequestsPath      = testcontrol.RequestsPath
	SnapshotPath      = testcontrol.SnapshotPath
	BaselinePath      = testcontrol.BaselinePath
	KubeconfigPath    = testcontrol.KubeconfigPath
)

// maxAdminBody bounds what the admin API reads of a body; a snapshot may
// be larger.
const (
	maxAdminBody = 3 << 20
	maxSnapshot  = 256 << 20
)

type adminHandler func(w http.ResponseWriter, r *http.Request) error

// installAdmin serves the test-control API. k is nil when no nodes are
// simulated.
func (s *Server) installAdmin(k *kubelet.Kubelet) {
	routes := map[string]map[string]adminHandler{
		SettlePath: {http.MethodPost: s.serveSettle},
		SettingsPath: {
			http.MethodGet: func(w http.ResponseWriter, _ *http.Request) error { return writeJSON(w, http.StatusOK, s.settings(k)) },
			http.MethodPut: func(w http.ResponseWriter, r *http.Request) error { return s.putSettings(w, r, k) },
		},
		ResetPath: {http.MethodPost: s.serveReset},
		KubeconfigPath: {http.MethodPost: func(w http.ResponseWriter, r *http.Request) error {
			var req testcontrol.KubeconfigRequest
			if err := decodeBody(r, &req); err != nil {
				return err
			}
			data, err := s.Kubeconfig(req.User, req.Groups)
			if err != nil {
				return apierrors.NewBadRequest(err.Error())
			}
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(data)
			return nil
		}},
		BaselinePath: {http.MethodPost: func(w http.ResponseWriter, r *http.Request) error {
			timeout, err := timeoutParam(r, 10*time.Second)
			if err != nil {
				return err
			}
			if err := s.TakeBaseline(r.Context(), timeout); err != nil {
				return err
			}
			return writeJSON(w, http.StatusOK, success("baseline taken"))
		}},
		SnapshotPath: {
			http.MethodGet: func(w http.ResponseWriter, r *http.Request) error {
				data, err := s.Snapshot(r.Context())
				if err != nil {
					return err
				}
				w.Header().Set("Content-Type", "application/yaml")
				_, _ = w.Write(data)
				return nil
			},
			http.MethodPut: func(w http.ResponseWriter, r *http.Request) error {
				timeout, err := timeoutParam(r, 10*time.Second)
				if err != nil {
					return err
				}
				data, err := io.ReadAll(io.LimitReader(r.Body, maxSnapshot+1))
				if err != nil {
					return apierrors.NewBadRequest("reading the body: " + err.Error())
				}
				if len(data) > maxSnapshot {
					return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxSnapshot))
				}
				start := time.Now()
				if err := s.RestoreSnapshot(r.Context(), data, timeout); err != nil {
					return err
				}
				return writeJSON(w, http.StatusOK, success(fmt.Sprintf("restored in %v", time.Since(start).Round(time.Microsecond))))
			},
		},
		FaultsPath: {
			http.MethodGet: s.getFaults,
			http.MethodPut: func(w http.ResponseWriter, r *http.Request) error {
				var l FaultList
				if err := decodeBody(r, &l); err != nil {
					return err
				}
				if err := s.config.control.faults.Replace(l.Faults); err != nil {
					return apierrors.NewBadRequest(err.Error())
				}
				return s.getFaults(w, r)
			},
			http.MethodDelete: func(w http.ResponseWriter, r *http.Request) error {
				s.config.control.faults.Clear()
				return s.getFaults(w, r)
			},
		},
		RequestsPath: {
			http.MethodGet: func(w http.ResponseWriter, r *http.Request) error {
				f, err := history.ParseFilter(r.URL.Query())
				if err != nil {
					return apierrors.NewBadRequest(err.Error())
				}
				return writeJSON(w, http.StatusOK, RequestList{Requests: s.config.control.history.List(f)})
			},
			http.MethodDelete: func(w http.ResponseWriter, _ *http.Request) error {
				s.config.control.history.Clear()
				return writeJSON(w, http.StatusOK, RequestList{Requests: []history.Entry{}})
			},
		},
		PodBehavioursPath: {
			http.MethodGet: func(w http.ResponseWriter, _ *http.Request) error {
				return writeJSON(w, http.StatusOK, clusterconfig.File{PodBehaviours: rulesOf(k)})
			},
			http.MethodPut: func(w http.ResponseWriter, r *http.Request) error {
				var f clusterconfig.File
				if err := decodeBody(r, &f); err != nil {
					return err
				}
				if err := setRules(k, f); err != nil {
					return err
				}
				return writeJSON(w, http.StatusOK, clusterconfig.File{PodBehaviours: k.Rules()})
			},
		},
	}
	mux := s.GenericAPIServer.Handler.NonGoRestfulMux
	mux.HandlePrefix(AdminPrefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimSuffix(r.URL.Path, "/")
		methods, ok := routes[path]
		if !ok {
			writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Group: "mockernetes.io"}, strings.TrimPrefix(r.URL.Path, AdminPrefix)))
			return
		}
		handle, ok := methods[r.Method]
		if !ok {
			writeStatus(w, apierrors.NewMethodNotSupported(schema.GroupResource{Group: "mockernetes.io", Resource: path[strings.LastIndex(path, "/")+1:]}, r.Method))
			return
		}
		if err := handle(w, r); err != nil {
			var status *apierrors.StatusError
			if !errors.As(err, &status) {
				status = apierrors.NewInternalError(err)
			}
			writeStatus(w, status)
		}
	}))
}

func rulesOf(k *kubelet.Kubelet) []clusterconfig.Rule {
	if k == nil {
		return []clusterconfig.Rule{}
	}
	return k.Rules()
}

func setRules(k *kubelet.Kubelet, f clusterconfig.File) error {
	switch {
	case len(f.Nodes) > 0:
		return apierrors.NewBadRequest("pod behaviours: nodes cannot be changed at run time")
	case k == nil:
		return apierrors.NewBadRequest("pod behaviours: no nodes are simulated (--nodes 0 or --controllers none)")
	}
	if err := k.SetRules(f.PodBehaviours); err != nil {
		return apierrors.NewBadRequest("pod behaviours: " + err.Error())
	}
	return nil
}

func (s *Server) getFaults(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, FaultList{Faults: s.config.control.faults.Rules()})
}

// serveSettle answers once the cluster is quiet (?timeout=, default 5s):
// 200 with a Success Status, or 504 naming what is still busy.
func (s *Server) serveSettle(w http.ResponseWriter, r *http.Request) error {
	timeout, err := timeoutParam(r, 5*time.Second)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.Settle(r.Context(), timeout); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, success(fmt.Sprintf("settled in %v", time.Since(start).Round(time.Microsecond))))
}

// serveReset brings the cluster back to its baseline.
func (s *Server) serveReset(w http.ResponseWriter, r *http.Request) error {
	var req ResetRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	timeout, err := timeoutParam(r, 10*time.Second)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.Reset(r.Context(), req, timeout); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, success(fmt.Sprintf("reset in %v", time.Since(start).Round(time.Microsecond))))
}

func timeoutParam(r *http.Request, def time.Duration) (time.Duration, error) {
	for k := range r.URL.Query() {
		if k != "timeout" {
			return 0, apierrors.NewBadRequest(fmt.Sprintf("unknown query parameter %q (known: timeout)", k))
		}
	}
	v := r.URL.Query().Get("timeout")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > 10*time.Minute {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("timeout: %q is not a duration between 0s and 10m", v))
	}
	return d, nil
}

// settleError is the Status of a settle that timed out: 504, naming what
// is busy.
func settleError(err error) error {
	var timeout *settle.TimeoutError
	if errors.As(err, &timeout) {
		return apierrors.NewTimeoutError(timeout.Error(), 0)
	}
	return err
}

// settings are the settings in force (timeScale only where nodes are
// simulated: k is nil otherwise).
func (s *Server) settings(k *kubelet.Kubelet) Settings {
	c := s.config.control
	on := c.settleOnWrite.Load()
	hc := c.history.Config()
	out := Settings{SettleOnWrite: &on, SettleOnWriteTimeout: &metav1.Duration{Duration: time.Duration(c.writeTimeout.Load())}, RequestHistory: &hc}
	if k != nil {
		scale := k.TimeScale()
		out.TimeScale = &scale
	}
	return out
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request, k *kubelet.Kubelet) error {
	var in Settings
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	c := s.config.control
	if in.SettleOnWriteTimeout != nil && (in.SettleOnWriteTimeout.Duration <= 0 || in.SettleOnWriteTimeout.Duration > 10*time.Minute) {
		return apierrors.NewBadRequest(fmt.Sprintf("settleOnWriteTimeout: %v is not between 0s and 10m", in.SettleOnWriteTimeout.Duration))
	}
	if in.TimeScale != nil {
		switch {
		case k == nil:
			return apierrors.NewBadRequest("timeScale: no nodes are simulated (--nodes 0 or --controllers none)")
		case *in.TimeScale <= 0 || *in.TimeScale > clusterconfig.MaxTimeScale:
			return apierrors.NewBadRequest(fmt.Sprintf("timeScale: %v is not above 0 and at most %v", *in.TimeScale, clusterconfig.MaxTimeScale))
		}
	}
	if in.RequestHistory != nil {
		if err := c.history.Configure(*in.RequestHistory); err != nil {
			return apierrors.NewBadRequest("requestHistory." + err.Error())
		}
	}
	if in.SettleOnWriteTimeout != nil {
		c.writeTimeout.Store(int64(in.SettleOnWriteTimeout.Duration))
	}
	if in.SettleOnWrite != nil {
		c.settleOnWrite.Store(*in.SettleOnWrite)
	}
	if in.TimeScale != nil {
		k.SetTimeScale(*in.TimeScale)
	}
	return writeJSON(w, http.StatusOK, s.settings(k))
}

// decodeBody reads a JSON body strictly: an unknown field or a wrong type
// is a 400 naming the field. An empty body leaves v as it is.
func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return apierrors.NewBadRequest("reading the body: " + err.Error())
	}
	if len(data) > maxAdminBody {
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxAdminBody))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apierrors.NewBadRequest("body: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return apierrors.NewBadRequest("body: more than one JSON value")
	}
	return nil
}

func success(msg string) metav1.Status {
	return metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusOK, Message: msg}
}

// writeStatus answers with err's Status, as the API answers errors.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.Kind, st.APIVersion = "Status", "v1"
	_ = writeJSON(w, int(st.Code), st)
}

// writeJSON answers v; it returns nil, as nothing can be answered once
// the status is out.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}
