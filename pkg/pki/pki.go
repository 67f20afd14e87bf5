// Package pki makes the certificates and keys one Mockernetes server needs:
// a cluster CA, a serving certificate for the API server, an admin client
// certificate in group system:masters, and a service-account signing key.
// Everything is ECDSA P-256, which is generated in microseconds where RSA
// takes tens of milliseconds: start-up time matters more here than key type.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// validity is long enough for any test run and short enough to be obviously
// not a production credential.
const validity = 365 * 24 * time.Hour

// KeyPair is a PEM-encoded certificate and its private key.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// CA signs the server and client certificates of one cluster.
type CA struct {
	KeyPair
	cert *x509.Certificate
	key  crypto.Signer
}

// NewCA creates a self-signed cluster CA named like kubeadm's ("kubernetes").
func NewCA() (*CA, error) { return NewNamedCA("kubernetes") }

// NewNamedCA creates a self-signed CA with the given common name (kubeadm
// names the front proxy's "front-proxy-ca").
func NewNamedCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: commonName}, key)
	if err != nil {
		return nil, fmt.Errorf("self-signed CA: %w", err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, err
	}
	return &CA{
		KeyPair: KeyPair{CertPEM: encodeCert(cert.Raw), KeyPEM: keyPEM},
		cert:    cert,
		key:     key,
	}, nil
}

// ServingCert returns a TLS serving certificate for the given host names and
// IP addresses, signed by the CA.
func (ca *CA) ServingCert(dnsNames []string, ips []net.IP) (KeyPair, error) {
	return ca.sign(x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    dnsNames,
		IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// ClientCert returns a client certificate for user (the common name) in the
// given groups (the organizations), as the x509 authenticator reads them.
func (ca *CA) ClientCert(user string, groups ...string) (KeyPair, error) {
	return ca.sign(x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) sign(tmpl x509.Certificate) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return KeyPair{}, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Minute).UTC()
	tmpl.NotAfter = now.Add(validity).UTC()
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("sign %q: %w", tmpl.Subject.CommonName, err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// NewSigningKey returns a PEM private key for signing service-account tokens
// (ES256, which the upstream JWT token generator and authenticator accept).
func NewSigningKey() ([]byte, error) {
	return keyutil.MakeEllipticPrivateKeyPEM()
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: der})
}

// LoadCA reads a CA written earlier (KeyPair PEMs), so that a state
// directory keeps one cluster CA across runs and old kubeconfigs stay valid.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || !certs[0].IsCA {
		return nil, fmt.Errorf("not a CA certificate and signing key")
	}
	return &CA{KeyPair: KeyPair{CertPEM: certPEM, KeyPEM: keyPEM}, cert: certs[0], key: signer}, nil
}
