package server

import (
	"errors"

	restclient "k8s.io/client-go/rest"
)

// UserConfig returns a copy of base (nil: an empty config) that reaches
// this server as user, member of groups, by a client certificate the
// cluster CA signs: the identities envtest's AddUser provisions. What the
// user may do is up to the authorization modes (under RBAC, its bindings).
func (s *Server) UserConfig(user string, groups []string, base *restclient.Config) (*restclient.Config, error) {
	if user == "" {
		return nil, errors.New("a user needs a name")
	}
	pair, err := s.config.ca.ClientCert(user, groups...)
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
