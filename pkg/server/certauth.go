package server

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// certAuthTTL bounds how long a client certificate's verification is
// reused; maxCertAuthEntries bounds how many are kept.
const (
	certAuthTTL        = time.Minute
	maxCertAuthEntries = 1024
)

// certAuthCache remembers whom a client certificate authenticates.
// kube-apiserver's x509 authenticator verifies the certificate's chain on
// every request (an ECDSA signature check with this server's CA, about a
// sixth of the CPU of a CRUD load), although a client presents the same
// certificate on every request of its connections. The answer depends on
// the certificate, the client CA bundle and the time only, so it is reused
// while the bundle is unchanged and the certificate valid, for at most
// certAuthTTL. Only requests that give no other authenticator anything to
// read (no bearer token, no front-proxy headers) use it: for them the
// chain's answer is the client certificate's. Failures are not kept.
type certAuthCache struct {
	next authenticator.Request
	ca   dynamiccertificates.CAContentProvider
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]certAuthEntry // by the certificate's DER bytes
}

type certAuthEntry struct {
	resp  *authenticator.Response
	ca    []byte // the client CA bundle it was verified with
	until time.Time
}

func newCertAuthCache(next authenticator.Request, ca dynamiccertificates.CAContentProvider) *certAuthCache {
	return &certAuthCache{next: next, ca: ca, now: time.Now, entries: map[string]certAuthEntry{}}
}

// AuthenticateRequest answers from the cache when it may, and otherwise
// asks the authenticators behind it.
func (c *certAuthCache) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if !c.certOnly(req) {
		return c.next.AuthenticateRequest(req)
	}
	leaf := req.TLS.PeerCertificates[0]
	ca := c.ca.CurrentCABundleContent()
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[string(leaf.Raw)]
	c.mu.Unlock()
	if ok && now.Before(e.until) && bytes.Equal(e.ca, ca) {
		return &authenticator.Response{User: e.resp.User, Audiences: e.resp.Audiences}, true, nil
	}
	resp, ok, err := c.next.AuthenticateRequest(req)
	if err != nil || !ok || resp == nil || resp.User == nil || resp.User.GetName() == user.Anonymous {
		return resp, ok, err
	}
	until := now.Add(certAuthTTL)
	if leaf.NotAfter.Before(until) {
		until = leaf.NotAfter
	}
	c.mu.Lock()
	if len(c.entries) >= maxCertAuthEntries {
		clear(c.entries)
	}
	c.entries[string(leaf.Raw)] = certAuthEntry{resp: &authenticator.Response{User: resp.User, Audiences: resp.Audiences}, ca: ca, until: until}
	c.mu.Unlock()
	return resp, true, nil
}

// certOnly tells whether a request authenticates by its client certificate
// alone: one is presented and nothing a token or front-proxy authenticator
// reads is there.
func (c *certAuthCache) certOnly(req *http.Request) bool {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return false
	}
	for name := range req.Header {
		switch {
		case name == "Authorization", name == "Sec-Websocket-Protocol",
			strings.HasPrefix(name, "X-Remote-"):
			return false
		}
	}
	return true
}
