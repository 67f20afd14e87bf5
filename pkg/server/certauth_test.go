package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	certutil "k8s.io/client-go/util/cert"

	"github.com/mockernetes/mockernetes/pkg/pki"
)

// swappableCA is a client CA bundle that a test can change, as a CA file
// rewritten under a running server changes (upstream's dynamic CA content).
type swappableCA struct {
	dynamiccertificates.CAContentProvider
	cur atomic.Pointer[dynamiccertificates.CAContentProvider]
}

func (s *swappableCA) set(t *testing.T, pem []byte) {
	ca, err := dynamiccertificates.NewStaticCAContent("client-ca", pem)
	if err != nil {
		t.Fatal(err)
	}
	s.cur.Store(&ca)
}
func (s *swappableCA) CurrentCABundleContent() []byte {
	return (*s.cur.Load()).CurrentCABundleContent()
}
func (s *swappableCA) VerifyOptions() (x509.VerifyOptions, bool) {
	return (*s.cur.Load()).VerifyOptions()
}

// countingAuth counts the requests an authenticator is asked about.
type countingAuth struct {
	authenticator.Request
	calls atomic.Int64
}

func (c *countingAuth) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	c.calls.Add(1)
	return c.Request.AuthenticateRequest(req)
}

// The cache answers as upstream's x509 authenticator (in a union with a
// token authenticator, as the server has them) does, and asks it again
// when the CA bundle changes, the entry is old, or anything but the
// certificate could decide.
func TestCertAuthCache(t *testing.T) {
	ca, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewNamedCA("other")
	if err != nil {
		t.Fatal(err)
	}
	clientCA := &swappableCA{}
	clientCA.set(t, ca.CertPEM)
	x509Auth := &countingAuth{Request: x509request.NewDynamic(clientCA.VerifyOptions, x509request.CommonNameUserConversion)}
	tokens := tokenfile.New(map[string]*user.DefaultInfo{"secret-token": {Name: "token-user"}})
	cache := newCertAuthCache(group.NewAuthenticatedGroupAdder(union.New(x509Auth, bearertoken.New(tokens))), clientCA)
	now := time.Now()
	cache.now = func() time.Time { return now }

	cert := func(ca *pki.CA, name string, groups ...string) *x509.Certificate {
		kp, err := ca.ClientCert(name, groups...)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := certutil.ParseCertsPEM(kp.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		return certs[0]
	}
	alice, bob, mallory := cert(ca, "alice", "devs"), cert(ca, "bob"), cert(other, "mallory", "system:masters")
	request := func(c *x509.Certificate, headers ...string) *http.Request {
		req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/api", nil)
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return req
	}
	step := 0
	expect := func(req *http.Request, wantUser string, wantGroups []string, wantVerified int64) {
		t.Helper()
		step++
		before := x509Auth.calls.Load()
		resp, ok, err := cache.AuthenticateRequest(req)
		if wantUser == "" {
			if err == nil && ok {
				t.Errorf("step %d: authenticated as %v, want an error", step, resp.User)
			}
		} else if err != nil || !ok || resp.User.GetName() != wantUser || !slices.Equal(resp.User.GetGroups(), wantGroups) {
			t.Errorf("step %d: %v %v %v, want %s %v", step, resp, ok, err, wantUser, wantGroups)
		}
		if got := x509Auth.calls.Load() - before; got != wantVerified {
			t.Errorf("step %d: the x509 authenticator asked %d times, want %d", step, got, wantVerified)
		}
	}
	aliceGroups := []string{"devs", user.AllAuthenticated}
	expect(request(alice), "alice", aliceGroups, 1)
	expect(request(alice), "alice", aliceGroups, 0)
	expect(request(bob), "bob", []string{user.AllAuthenticated}, 1)
	expect(request(alice), "alice", aliceGroups, 0)
	// A token too: the chain decides (the certificate wins, as in kube-apiserver).
	expect(request(alice, "Authorization", "Bearer secret-token"), "alice", aliceGroups, 1)
	// Front-proxy headers: the chain decides.
	expect(request(alice, "X-Remote-User", "someone"), "alice", aliceGroups, 1)
	// An untrusted CA's certificate fails, every time.
	expect(request(mallory), "", nil, 1)
	expect(request(mallory), "", nil, 1)
	// After certAuthTTL the certificate is verified again.
	now = now.Add(certAuthTTL + time.Second)
	expect(request(alice), "alice", aliceGroups, 1)
	expect(request(alice), "alice", aliceGroups, 0)
	// A new CA bundle: alice's certificate is no longer trusted; mallory's is.
	clientCA.set(t, other.CertPEM)
	expect(request(alice), "", nil, 1)
	expect(request(mallory), "mallory", []string{"system:masters", user.AllAuthenticated}, 1)
	expect(request(mallory), "mallory", []string{"system:masters", user.AllAuthenticated}, 0)
	// An entry lasts no longer than its certificate: bob's, verified 10 s
	// before it expires (by this clock; x509 checks the real time), is kept
	// until then and not after.
	clientCA.set(t, ca.CertPEM)
	bobGroups := []string{user.AllAuthenticated}
	now = bob.NotAfter.Add(-10 * time.Second)
	expect(request(bob), "bob", bobGroups, 1)
	now = bob.NotAfter.Add(-time.Second)
	expect(request(bob), "bob", bobGroups, 0)
	now = bob.NotAfter.Add(time.Second)
	expect(request(bob), "bob", bobGroups, 1)
}
