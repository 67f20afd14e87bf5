package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// status sends a raw request and decodes the Status body it must get back.
func status(t *testing.T, client *http.Client, method, url, contentType string, body []byte) (int, metav1.Status) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var s metav1.Status
	if err := json.Unmarshal(raw, &s); err != nil || s.Kind != "Status" {
		t.Errorf("%s %s: %d with a body that is not a Status: %q", method, url, res.StatusCode, raw)
	}
	return res.StatusCode, s
}

func TestBadInput(t *testing.T) {
	cfg := shared.restConfig(t)
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := shared.client(t)
	ns := newNamespace(t, c)
	base := cfg.Host

	// Unknown resources and objects: 404 with a Status body.
	for _, path := range []string{"/api/v1/namespaces/" + ns + "/widgets", "/apis/apps/v1/widgets", "/apis/apps/v1/namespaces/" + ns + "/deployments/missing"} {
		code, s := status(t, client, http.MethodGet, base+path, "", nil)
		if code != http.StatusNotFound || s.Code != http.StatusNotFound || s.Status != metav1.StatusFailure {
			t.Errorf("GET %s: %d %+v", path, code, s)
		}
	}
	// An unknown group ends at the chain's not-found handler, which answers
	// a plain 404 exactly as kube-apiserver's (k8s.io/apiserver/pkg/util/
	// notfoundhandler: http.NotFound once all paths are installed).
	res, err := client.Get(base + "/apis/example.com/v1/widgets")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || string(body) != "404 page not found\n" {
		t.Errorf("unknown group: %d %q", res.StatusCode, body)
	}

	// Malformed bodies: 400 with a Status body.
	configmaps := base + "/api/v1/namespaces/" + ns + "/configmaps"
	for _, tc := range []struct{ contentType, body string }{
		{"application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"`},
		{"application/json", `not json at all`},
		{"application/yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"},
	} {
		code, s := status(t, client, http.MethodPost, configmaps, tc.contentType, []byte(tc.body))
		if code != http.StatusBadRequest || s.Code != http.StatusBadRequest || s.Reason != metav1.StatusReasonBadRequest {
			t.Errorf("POST %s %q: %d %+v", tc.contentType, tc.body, code, s)
		}
	}
	// A malformed patch is refused too.
	if _, err := c.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "p"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, s := status(t, client, http.MethodPatch, configmaps+"/p", "application/merge-patch+json", []byte(`{"data":`))
	if code != http.StatusBadRequest {
		t.Errorf("malformed merge patch: %d %+v", code, s)
	}

	// Over 3 MiB: refused before decoding, as kube-apiserver refuses it.
	big := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":"` + strings.Repeat("x", 3*1024*1024) + `"}}`
	code, s = status(t, client, http.MethodPost, configmaps, "application/json", []byte(big))
	if code != http.StatusRequestEntityTooLarge || s.Message != "Request entity too large: limit is 3145728" {
		t.Errorf("3 MiB body: %d %+v", code, s)
	}
	// Under the request limit but over a ConfigMap's 1 MiB: 422 from validation.
	_, err = c.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "toolarge"},
		Data:       map[string]string{"k": strings.Repeat("x", 1024*1024+1)},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "Too long: may not be more than 1048576 bytes") {
		t.Errorf("1 MiB configmap: %v", err)
	}

	// No credentials: 401 (anonymous requests are off, as under AlwaysAllow).
	anonymous, err := rest.HTTPClientFor(&rest.Config{Host: base, TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData}})
	if err != nil {
		t.Fatal(err)
	}
	if code, s := status(t, anonymous, http.MethodGet, base+"/api/v1/namespaces", "", nil); code != http.StatusUnauthorized || s.Reason != metav1.StatusReasonUnauthorized {
		t.Errorf("anonymous: %d %+v", code, s)
	}

	// None of that wedged the server.
	if _, err := c.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("after bad input: %v", err)
	}
	if _, err := c.Discovery().ServerVersion(); err != nil {
		t.Errorf("version after bad input: %v", err)
	}
}

// whoami asks the server who the bearer of token is (SelfSubjectReview).
func whoami(t *testing.T, host string, caData []byte, token string) string {
	t.Helper()
	client, err := rest.HTTPClientFor(&rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: caData}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Post(host+"/apis/authentication.k8s.io/v1/selfsubjectreviews", "application/json",
		strings.NewReader(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var review authenticationv1.SelfSubjectReview
	if err := json.NewDecoder(res.Body).Decode(&review); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("self subject review: %d %v", res.StatusCode, err)
	}
	return review.Status.UserInfo.Username + " " + strings.Join(review.Status.UserInfo.Groups, ",")
}

// Bearer tokens: the admin token in the state directory, and service-account
// tokens from the TokenRequest API, signed and verified as upstream does.
func TestTokenAuthentication(t *testing.T) {
	cfg := shared.restConfig(t)
	raw, err := readStateFile(shared, "tokens.csv") // token,user,uid,"groups"
	if err != nil {
		t.Fatal(err)
	}
	admin := whoami(t, cfg.Host, cfg.CAData, strings.SplitN(raw, ",", 2)[0])
	if admin != "kubernetes-admin system:masters,system:authenticated" {
		t.Errorf("admin token authenticates as %q", admin)
	}

	c := shared.client(t)
	ns := newNamespace(t, c)
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := c.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), "robot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "system:serviceaccount:" + ns + ":robot system:serviceaccounts,system:serviceaccounts:" + ns + ",system:authenticated"
	if got := whoami(t, cfg.Host, cfg.CAData, tr.Status.Token); got != want {
		t.Errorf("service account token authenticates as %q, want %q", got, want)
	}
	// Deleting the service account invalidates its tokens (lookup is on).
	// A token already used stays valid for the authenticator's 10 s success
	// cache, as in kube-apiserver; an unused one fails at once.
	unused, err := c.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), "robot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().ServiceAccounts(ns).Delete(t.Context(), "robot", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	client, _ := rest.HTTPClientFor(&rest.Config{Host: cfg.Host, BearerToken: unused.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData}})
	// The authenticator looks the account up in an informer first, so the
	// deletion takes effect once the informer has seen it (milliseconds).
	eventually(t, "token of a deleted service account refused", func(context.Context) (bool, error) {
		code, _ := get(t, client, cfg.Host+"/api", "")
		return code == http.StatusUnauthorized, nil
	})
}
