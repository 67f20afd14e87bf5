package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// server is a running server under test: its client config, its
// processes, and how long it took to be ready.
type server struct {
	config *rest.Config
	procs  []*exec.Cmd
	ready  time.Duration
}

// rss is the resident memory of the server's processes together, in MiB.
func (s *server) rss() float64 {
	total := 0.0
	for _, p := range s.procs {
		raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.Process.Pid), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				total += kb / 1024
			}
		}
	}
	return total
}

// stop ends the processes, the last started first.
func (s *server) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
}

// mockernetes starts `mockernetes serve` with args; it is ready when it
// prints its KUBECONFIG line, which it does once /readyz passes.
func mockernetes(bin string, args ...string) func(dir string) (*server, error) {
	return func(dir string) (*server, error) {
		start := time.Now()
		cmd := exec.Command(bin, append([]string{"serve", "--port", "0", "--state-dir", filepath.Join(dir, "state")}, args...)...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		cmd.Stderr = nil
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		s := &server{procs: []*exec.Cmd{cmd}}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			path, ok := strings.CutPrefix(sc.Text(), "export KUBECONFIG=")
			if !ok {
				continue
			}
			s.ready = time.Since(start)
			go func() { // keep draining
				for sc.Scan() {
				}
			}()
			if s.config, err = clientcmd.BuildConfigFromFlags("", path); err != nil {
				s.stop()
				return nil, err
			}
			return s, nil
		}
		s.stop()
		return nil, errors.New("mockernetes exited before it was ready")
	}
}

// reference is kube-apiserver and etcd, built.
type reference struct {
	apiserver, etcd string
}

// buildReference builds kube-apiserver from the repository's module (the
// Kubernetes version the product serves) and etcd from this module.
func buildReference(repo, dir string) (*reference, error) {
	r := &reference{apiserver: filepath.Join(dir, "kube-apiserver"), etcd: filepath.Join(dir, "etcd")}
	build := func(wd, out, pkg string) error {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = wd, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", pkg, err)
		}
		return nil
	}
	if err := build(repo, r.apiserver, "k8s.io/kubernetes/cmd/kube-apiserver"); err != nil {
		return nil, err
	}
	if err := build(".", r.etcd, "./etcd"); err != nil {
		return nil, err
	}
	return r, nil
}

// start runs etcd and then kube-apiserver as envtest does (etcd without
// fsync; kube-apiserver with RBAC, a client CA, the ServiceAccount
// admission plugin off), and returns once /readyz passes.
func (r *reference) start(dir string) (*server, error) {
	start := time.Now()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd := exec.Command(r.etcd, "--data-dir", filepath.Join(dir, "etcd"), "--name", "default",
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL, "--unsafe-no-fsync", "--log-level", "error")
	if err := etcd.Start(); err != nil {
		return nil, err
	}
	s := &server{procs: []*exec.Cmd{etcd}}
	if err := poll(func() bool {
		resp, err := http.Get(clientURL + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		s.stop()
		return nil, fmt.Errorf("etcd: %w", err)
	}
	creds, err := writeCredentials(dir)
	if err != nil {
		s.stop()
		return nil, err
	}
	port := strconv.Itoa(ports[2])
	apiserver := exec.Command(r.apiserver,
		"--etcd-servers", clientURL,
		"--cert-dir", filepath.Join(dir, "certs"),
		"--secure-port", port, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--allow-privileged=true",
		"--endpoint-reconciler-type", "none", // a loopback address may not be the kubernetes Service's endpoint
		"--authorization-mode", "RBAC",
		"--disable-admission-plugins", "ServiceAccount",
		"--client-ca-file", creds.caFile,
		"--service-account-issuer", "https://127.0.0.1:"+port+"/",
		"--service-account-key-file", creds.saKeyFile,
		"--service-account-signing-key-file", creds.saKeyFile)
	logFile, err := os.Create(filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		s.stop()
		return nil, err
	}
	defer logFile.Close()
	apiserver.Stderr = logFile
	if err := apiserver.Start(); err != nil {
		s.stop()
		return nil, err
	}
	s.procs = append(s.procs, apiserver)
	s.config = &rest.Config{
		Host:            "https://127.0.0.1:" + port,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true, CertData: creds.adminCert, KeyData: creds.adminKey},
	}
	client, err := rest.HTTPClientFor(s.config)
	if err != nil {
		s.stop()
		return nil, err
	}
	last := ""
	if err := poll(func() bool {
		resp, err := client.Get(s.config.Host + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		s.stop()
		log, _ := os.ReadFile(logFile.Name())
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		return nil, fmt.Errorf("kube-apiserver: %w (last /readyz: %s); its log ends:\n%s", err, last, strings.Join(lines[max(0, len(lines)-5):], "\n"))
	}
	s.ready = time.Since(start)
	return s, nil
}

// poll checks ok every 10 ms for up to a minute.
func poll(ok func() bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			return errors.New("not ready after a minute")
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// credentials are envtest's: a client CA, an admin client certificate in
// system:masters, and the service-account signing key.
type credentials struct {
	caFile, saKeyFile   string
	adminCert, adminKey []byte
}

func writeCredentials(dir string) (*credentials, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	adminKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	adminDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "bench-admin", Organization: []string{"system:masters"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, &adminKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	adminKeyDER, err := x509.MarshalECPrivateKey(adminKey)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saKeyDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	c := &credentials{
		caFile:    filepath.Join(dir, "ca.crt"),
		saKeyFile: filepath.Join(dir, "sa.key"),
		adminCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: adminDER}),
		adminKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: adminKeyDER}),
	}
	if err := os.WriteFile(c.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.saKeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saKeyDER}), 0o600); err != nil {
		return nil, err
	}
	return c, nil
}
