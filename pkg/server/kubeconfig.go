package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/mockernetes/mockernetes/pkg/pki"
)

// ContextName names the cluster, user and context in the written kubeconfig.
const ContextName = "mockernetes"

// writeKubeconfig writes an admin kubeconfig with the CA and client
// certificate inline, so it works wherever it is copied.
func (s State) writeKubeconfig(server string, caPEM []byte, admin pki.KeyPair) error {
	cfg := kubeconfig(server, caPEM, admin)
	if err := os.MkdirAll(filepath.Dir(s.Kubeconfig), 0o700); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := clientcmd.WriteToFile(cfg, s.Kubeconfig); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// kubeconfig is a kubeconfig of one context, ContextName, for the user of
// the client certificate pair, namespace default.
func kubeconfig(server string, caPEM []byte, pair pki.KeyPair) clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[ContextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[ContextName] = &clientcmdapi.AuthInfo{ClientCertificateData: pair.CertPEM, ClientKeyData: pair.KeyPEM}
	cfg.Contexts[ContextName] = &clientcmdapi.Context{Cluster: ContextName, AuthInfo: ContextName, Namespace: "default"}
	cfg.CurrentContext = ContextName
	return *cfg
}
