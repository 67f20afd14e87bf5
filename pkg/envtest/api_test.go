package envtest

import (
	"context"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The fields that configure binaries and etcd are accepted and change
// nothing: nothing is downloaded or looked for. The API server's address
// is honoured, and kubectl through ControlPlane reaches the server.
func TestEnvtestFieldsAcceptedAndIgnored(t *testing.T) {
	noLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	te := &Environment{
		DownloadBinaryAssets:         true,
		DownloadBinaryAssetsVersion:  "v1.99.0",
		DownloadBinaryAssetsIndexURL: "https://nowhere.invalid/index.yaml",
		BinaryAssetsDirectory:        "/nonexistent",
		ControlPlane: ControlPlane{
			Etcd: &Etcd{Path: "/nonexistent/etcd"},
			APIServer: &APIServer{
				Path:          "/nonexistent/kube-apiserver",
				Args:          []string{"--v=9"},
				SecureServing: SecureServing{ListenAddr: ListenAddr{Address: "127.0.0.1", Port: strconv.Itoa(port)}},
			},
		},
	}
	te.ControlPlane.GetAPIServer().Configure().Set("feature-gates", "Foo=true")
	start(t, te)
	if want := "https://127.0.0.1:" + strconv.Itoa(port); te.Config.Host != want || te.ControlPlane.APIURL().String() != want {
		t.Errorf("the server is at %s (config) / %v (control plane), asked for %s", te.Config.Host, te.ControlPlane.APIURL(), want)
	}
	if _, err := kubernetes.NewForConfigOrDie(te.Config).CoreV1().Namespaces().Get(context.Background(), "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl on PATH")
	}
	te.ControlPlane.KubectlPath = kubectl
	stdout, stderr, err := te.ControlPlane.KubeCtl().Run("get", "namespace", "kube-system", "-o", "name")
	out, _ := io.ReadAll(stdout)
	errOut, _ := io.ReadAll(stderr)
	if err != nil || strings.TrimSpace(string(out)) != "namespace/kube-system" {
		t.Errorf("kubectl: %v: %s %s", err, out, errOut)
	}
}
