// Package testcontrol is the client of a Mockernetes server's test-control
// API (/mockernetes/v1/...), and the shapes that API speaks: settle,
// reset, faults, request history, pod behaviours and settings. The Go
// library, the CLI and the tests use it; any HTTP client can speak the same
// JSON.
package testcontrol

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/mockernetes/mockernetes/pkg/clusterconfig"
	"github.com/mockernetes/mockernetes/pkg/faults"
	"github.com/mockernetes/mockernetes/pkg/history"
)

// The endpoints, under the server's address.
const (
	Prefix            = "/mockernetes/"
	PodBehavioursPath = "/mockernetes/v1/podbehaviours"
	SettlePath        = "/mockernetes/v1/settle"
	SettingsPath      = "/mockernetes/v1/settings"
	ResetPath         = "/mockernetes/v1/reset"
	FaultsPath        = "/mockernetes/v1/faults"
	RequestsPath      = "/mockernetes/v1/requests"
	SnapshotPath      = "/mockernetes/v1/snapshot"
	BaselinePath      = "/mockernetes/v1/baseline"
	KubeconfigPath    = "/mockernetes/v1/kubeconfig"
)

// Settings are the test-control switches; fields left out of a PUT keep
// their value.
type Settings struct {
	SettleOnWrite        *bool            `json:"settleOnWrite,omitempty"`
	SettleOnWriteTimeout *metav1.Duration `json:"settleOnWriteTimeout,omitempty"`
	RequestHistory       *history.Config  `json:"requestHistory,omitempty"`
	// TimeScale multiplies every simulated duration of the kubelets from
	// now on (0.01: a `sleep 2` takes 20 ms); pods take it at their next
	// step.
	TimeScale *float64 `json:"timeScale,omitempty"`
}

// FaultList is the body of the faults endpoint.
type FaultList struct {
	Faults []faults.Rule `json:"faults"`
}

// RequestList is the answer of the requests endpoint.
type RequestList struct {
	Requests []history.Entry `json:"requests"`
}

// ResetRequest is the optional body of a reset: simulated nodes and pod
// behaviour rules to use from now on instead of the cluster config's (the
// shape of --cluster-config; a later reset without them returns to those
// the server started with), and manifests (YAML or JSON, several
// documents) to apply after the reset, as --load does.
type ResetRequest struct {
	Nodes         []clusterconfig.NodeSpec `json:"nodes,omitempty"`
	PodBehaviours *[]clusterconfig.Rule    `json:"podBehaviours,omitempty"`
	Manifests     string                   `json:"manifests,omitempty"`
}

// KubeconfigRequest asks for a kubeconfig of a user in groups (a client
// certificate of the cluster CA), for tests of what that user may do.
type KubeconfigRequest struct {
	User   string   `json:"user"`
	Groups []string `json:"groups,omitempty"`
}

// Client talks to one server's test-control API.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the server config points at (its kubeconfig's
// credentials are used).
func New(config *rest.Config) (*Client, error) {
	c, err := rest.HTTPClientFor(config)
	if err != nil {
		return nil, err
	}
	base := config.Host
	if u, err := url.Parse(base); err == nil && u.Scheme == "" {
		base = "https://" + base
	}
	return &Client{base: base, http: c}, nil
}

// Settle returns once the cluster is quiet, or an error (a Timeout Status
// naming what is busy) after timeout.
func (c *Client) Settle(ctx context.Context, timeout time.Duration) error {
	return c.do(ctx, http.MethodPost, SettlePath, url.Values{"timeout": {timeout.String()}}, nil, nil)
}

// Reset brings the cluster back to its state right after the server was
// ready; req may carry new pod behaviour rules.
func (c *Client) Reset(ctx context.Context, req ResetRequest) error {
	return c.do(ctx, http.MethodPost, ResetPath, nil, req, nil)
}

// TakeBaseline makes the cluster as it is now, once settled, what later
// resets return to: for a suite that installs its CRDs, webhooks or
// shared objects once, after the server was ready.
func (c *Client) TakeBaseline(ctx context.Context, timeout time.Duration) error {
	return c.do(ctx, http.MethodPost, BaselinePath, url.Values{"timeout": {timeout.String()}}, nil, nil)
}

// Kubeconfig returns a kubeconfig (YAML) that reaches the server as user,
// member of groups.
func (c *Client) Kubeconfig(ctx context.Context, user string, groups ...string) ([]byte, error) {
	var raw rawBody
	err := c.do(ctx, http.MethodPost, KubeconfigPath, nil, KubeconfigRequest{User: user, Groups: groups}, &raw)
	return raw, err
}

// Snapshot returns every object of the cluster as multi-document YAML.
func (c *Client) Snapshot(ctx context.Context) ([]byte, error) {
	var raw rawBody
	err := c.do(ctx, http.MethodGet, SnapshotPath, nil, nil, &raw)
	return raw, err
}

// Restore makes the cluster what snapshot (multi-document YAML or JSON)
// describes, object for object.
func (c *Client) Restore(ctx context.Context, snapshot []byte) error {
	return c.do(ctx, http.MethodPut, SnapshotPath, nil, rawBody(snapshot), nil)
}

// rawBody is a body sent and received as it is, not as JSON.
type rawBody []byte

// Faults returns the fault rules in force, with their hit counts.
func (c *Client) Faults(ctx context.Context) ([]faults.Rule, error) {
	var l FaultList
	err := c.do(ctx, http.MethodGet, FaultsPath, nil, nil, &l)
	return l.Faults, err
}

// SetFaults replaces the fault rules.
func (c *Client) SetFaults(ctx context.Context, rules ...faults.Rule) error {
	if rules == nil {
		rules = []faults.Rule{}
	}
	return c.do(ctx, http.MethodPut, FaultsPath, nil, FaultList{Faults: rules}, nil)
}

// ClearFaults removes every fault rule.
func (c *Client) ClearFaults(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, FaultsPath, nil, nil, nil)
}

// Requests returns the recorded requests the query selects (verb,
// apiGroup, resource, subresource, namespace, name, userAgent, user, since,
// internal).
func (c *Client) Requests(ctx context.Context, query url.Values) ([]history.Entry, error) {
	var l RequestList
	err := c.do(ctx, http.MethodGet, RequestsPath, query, nil, &l)
	return l.Requests, err
}

// ClearRequests empties the request history.
func (c *Client) ClearRequests(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, RequestsPath, nil, nil, nil)
}

// Settings returns the test-control switches.
func (c *Client) Settings(ctx context.Context) (Settings, error) {
	var s Settings
	err := c.do(ctx, http.MethodGet, SettingsPath, nil, nil, &s)
	return s, err
}

// SetSettings changes the switches s sets and returns them all.
func (c *Client) SetSettings(ctx context.Context, s Settings) (Settings, error) {
	var out Settings
	err := c.do(ctx, http.MethodPut, SettingsPath, nil, s, &out)
	return out, err
}

// PodBehaviours returns the pod behaviour rules in force.
func (c *Client) PodBehaviours(ctx context.Context) ([]clusterconfig.Rule, error) {
	var f clusterconfig.File
	err := c.do(ctx, http.MethodGet, PodBehavioursPath, nil, nil, &f)
	return f.PodBehaviours, err
}

// SetPodBehaviours replaces the pod behaviour rules.
func (c *Client) SetPodBehaviours(ctx context.Context, rules []clusterconfig.Rule) error {
	return c.do(ctx, http.MethodPut, PodBehavioursPath, nil, clusterconfig.File{PodBehaviours: rules}, nil)
}

// do sends one request; an answer other than 2xx is returned as the
// *apierrors.StatusError its Status body describes.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if raw, ok := in.(rawBody); ok {
		body = bytes.NewReader(raw)
	} else if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		var status metav1.Status
		if json.Unmarshal(data, &status) == nil && status.Kind == "Status" {
			return &apierrors.StatusError{ErrStatus: status}
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, res.Status, bytes.TrimSpace(data))
	}
	if raw, ok := out.(*rawBody); ok {
		*raw = data
		return nil
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
