package server

import (
	"errors"
	"fmt"
	"strings"

	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mockernetes/mockernetes/pkg/pki"
)

// UserConfig returns a copy of base (nil: an empty config) that reaches
// this server as user, member of groups, by a client certificate the
// cluster CA signs: the identities envtest's AddUser provisions. What the
// user may do is up to the authorization modes (under RBAC, its bindings).
func (s *Server) UserConfig(user string, groups []string, base *restclient.Config) (*restclient.Config, error) {
	pair, err := s.userCert(user, groups)
	if err != nil {
		return nil, err
	}
	cfg := &restclient.Config{}
	if base != nil {
		cfg = restclient.CopyConfig(base)
	}
	cfg.Host = s.config.URL
	cfg.APIPath = ""
	cfg.BearerToken, cfg.BearerTokenFile, cfg.Username, cfg.Password = "", "", "", ""
	cfg.TLSClientConfig = restclient.TLSClientConfig{CAData: s.config.ca.CertPEM, CertData: pair.CertPEM, KeyData: pair.KeyPEM}
	return cfg, nil
}

// Kubeconfig is a kubeconfig file (YAML) for user in groups, with the CA
// and the client certificate inline.
func (s *Server) Kubeconfig(user string, groups []string) ([]byte, error) {
	pair, err := s.userCert(user, groups)
	if err != nil {
		return nil, err
	}
	return clientcmd.Write(kubeconfig(s.config.URL, s.config.ca.CertPEM, pair))
}

func (s *Server) userCert(user string, groups []string) (pki.KeyPair, error) {
	if strings.TrimSpace(user) == "" {
		return pki.KeyPair{}, errors.New("user: a name is required")
	}
	for i, g := range groups {
		if strings.TrimSpace(g) == "" {
			return pki.KeyPair{}, fmt.Errorf("groups[%d]: a group needs a name", i)
		}
	}
	return s.config.ca.ClientCert(user, groups...)
}
