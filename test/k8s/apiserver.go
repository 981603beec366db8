// Package k8s runs a real Kubernetes control plane for sluice's tests: etcd,
// kube-apiserver (RBAC and Node authorization, token authentication,
// ServiceAccount tokens) and kube-controller-manager's deployment,
// replicaset, garbage-collector, root-CA-publisher and namespace controllers, all on
// loopback, plus a test node agent that runs the pods bound to it as local
// processes of the sluice binary under test (tools/sluice-test-node).
//
// The binaries are built from Go modules by build.sh, once, and cached under
// ~/.cache/sluice-test (see README.md). When they cannot be built the test
// fails: there is no skip.
//
// Typical use, one control plane per test binary:
//
//	func TestMain(m *testing.M) { code := m.Run(); k8s.StopShared(); os.Exit(code) }
//
//	api := k8s.Shared(t)
//	ns := api.Namespace(t, "session")      // with its default ServiceAccount
//	api.Node(t, sluiceBin)                 // the node agent, started once
//	kubeconfig := api.AdminKubeconfig
package k8s

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// AdminUser is the user of AdminToken; it is in system:masters.
const AdminUser = "sluice-test-admin"

// APIServer is a running control plane.
type APIServer struct {
	// URL is the API server's https URL on loopback.
	URL string
	// CAFile is the PEM CA that signed the API server's serving certificate.
	CAFile string
	// AdminToken authenticates AdminUser (system:masters).
	AdminToken string
	// AdminKubeconfig is a kubeconfig file for AdminUser.
	AdminKubeconfig string
	// Dir holds the control plane's data, certificates and logs.
	Dir string
	// Client is a clientset for AdminUser.
	Client kubernetes.Interface
	// Config is the REST config of Client.
	Config *rest.Config

	bins    string
	agent   string
	etcdURL string
	procs   []*process

	nodeMu sync.Mutex
	node   *Node
}

var (
	sharedMu  sync.Mutex
	shared    *APIServer
	sharedErr error
)

// Shared returns the control plane of this test binary, starting it on first
// use. StopShared, from TestMain, stops it.
func Shared(t testing.TB) *APIServer {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = start()
	}
	if sharedErr != nil {
		t.Fatalf("kubernetes control plane: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared control plane, if one was started, and
// removes its directory.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

// Start starts a control plane of the test's own, stopped at cleanup.
func Start(t testing.TB) *APIServer {
	t.Helper()
	a, err := start()
	if err != nil {
		t.Fatalf("kubernetes control plane: %v", err)
	}
	t.Cleanup(a.Stop)
	return a
}

// Stop stops the node agent and the control plane and removes Dir.
func (a *APIServer) Stop() {
	a.nodeMu.Lock()
	if a.node != nil {
		a.node.stop()
		a.node = nil
	}
	a.nodeMu.Unlock()
	for i := len(a.procs) - 1; i >= 0; i-- {
		a.procs[i].stop()
	}
	a.procs = nil
	_ = os.RemoveAll(a.Dir)
}

// Binaries builds (once, cached) etcd, kube-apiserver,
// kube-controller-manager and the node agent and returns the directory of
// the first three and the agent's path.
func Binaries() (bin, agent string, err error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", "", fmt.Errorf("cannot locate test/k8s/build.sh")
	}
	script := filepath.Join(filepath.Dir(file), "build.sh")
	cmd := exec.Command(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("%s: %w\n%s", script, err, tail(stderr.String(), 4000))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		return "", "", fmt.Errorf("%s printed %q: want two paths", script, out)
	}
	return lines[0], lines[1], nil
}

func start() (a *APIServer, err error) {
	bins, agent, err := Binaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-k8s-")
	if err != nil {
		return nil, err
	}
	a = &APIServer{Dir: dir, bins: bins, agent: agent}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w (logs in %s)", err, dir)
			for i := len(a.procs) - 1; i >= 0; i-- {
				a.procs[i].stop()
			}
		}
	}()
	if err := a.writeCredentials(); err != nil {
		return nil, err
	}
	if err := a.startEtcd(); err != nil {
		return nil, err
	}
	if err := a.startAPIServer(); err != nil {
		return nil, err
	}
	if err := a.startControllerManager(); err != nil {
		return nil, err
	}
	return a, nil
}

// writeCredentials makes the serving CA and certificate, the ServiceAccount
// signing key, the token file and the admin kubeconfig.
func (a *APIServer) writeCredentials() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice-test-kubernetes-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.ParseIP(serviceIP)},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	a.AdminToken = randomHex(24)
	a.CAFile = a.path("ca.crt")
	files := map[string][]byte{
		"ca.crt":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"server.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER}),
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
		// token,user,uid,"group,..."
		"tokens.csv": fmt.Appendf(nil, "%s,%s,%s,\"system:masters\"\n", a.AdminToken, AdminUser, AdminUser),
	}
	for name, b := range files {
		if err := os.WriteFile(a.path(name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// serviceIP is the kubernetes Service's address in the service range.
const serviceIP = "10.96.0.1"

func (a *APIServer) path(name string) string { return filepath.Join(a.Dir, name) }

func (a *APIServer) startEtcd() error {
	client, peer := freePort(), freePort()
	if client == 0 || peer == 0 {
		return fmt.Errorf("no free loopback port for etcd")
	}
	cu := "http://127.0.0.1:" + strconv.Itoa(client)
	pu := "http://127.0.0.1:" + strconv.Itoa(peer)
	p, err := a.run("etcd",
		"--name", "sluice-test",
		"--data-dir", a.path("etcd"),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "sluice-test="+pu,
		"--unsafe-no-fsync", "--log-level", "warn",
	)
	if err != nil {
		return err
	}
	a.etcdURL = cu
	return waitFor(p, 30*time.Second, "etcd /health", func() error {
		resp, err := http.Get(cu + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
}

func (a *APIServer) startAPIServer() error {
	port := freePort()
	if port == 0 {
		return fmt.Errorf("no free loopback port for kube-apiserver")
	}
	a.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	p, err := a.run("kube-apiserver",
		"--etcd-servers", a.etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port),
		"--cert-dir", a.path("certs"),
		"--tls-cert-file", a.path("server.crt"), "--tls-private-key-file", a.path("server.key"),
		"--authorization-mode", "Node,RBAC",
		"--token-auth-file", a.path("tokens.csv"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", a.path("sa.pub"),
		"--service-account-signing-key-file", a.path("sa.key"),
		"--endpoint-reconciler-type", "none",
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v", "1",
	)
	if err != nil {
		return err
	}
	if err := a.writeKubeconfig(a.path("admin.kubeconfig"), a.AdminToken); err != nil {
		return err
	}
	a.AdminKubeconfig = a.path("admin.kubeconfig")
	ca, err := os.ReadFile(a.CAFile)
	if err != nil {
		return err
	}
	a.Config = &rest.Config{Host: a.URL, BearerToken: a.AdminToken, TLSClientConfig: rest.TLSClientConfig{CAData: ca}, QPS: 100, Burst: 200}
	if a.Client, err = kubernetes.NewForConfig(a.Config); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return waitFor(p, 90*time.Second, "kube-apiserver /readyz", func() error {
		req, _ := http.NewRequest(http.MethodGet, a.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+a.AdminToken)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
}

func (a *APIServer) startControllerManager() error {
	p, err := a.run("kube-controller-manager",
		"--kubeconfig", a.AdminKubeconfig,
		"--controllers", "deployment-controller,replicaset-controller,garbage-collector-controller,root-ca-certificate-publisher-controller,namespace-controller",
		"--root-ca-file", a.CAFile,
		"--leader-elect=false",
		"--secure-port", "0",
		"--v", "1",
	)
	if err != nil {
		return err
	}
	// Ready when the root CA publisher has written kube-root-ca.crt, which
	// every pod's ServiceAccount token volume needs.
	return waitFor(p, 60*time.Second, "kube-controller-manager (kube-root-ca.crt in kube-system)", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := a.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-root-ca.crt", getOpts)
		return err
	})
}

// WriteKubeconfig writes a kubeconfig for a bearer token to path.
func (a *APIServer) writeKubeconfig(path, token string) error {
	ca, err := os.ReadFile(a.CAFile)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(kubeconfig(a.URL, ca, token)), 0o600)
}

func kubeconfig(server string, ca []byte, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: sluice-test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: user
  user:
    token: %s
contexts:
- name: sluice-test
  context:
    cluster: sluice-test
    user: user
current-context: sluice-test
`, server, b64(ca), token)
}

// process is a control-plane process in its own process group, logging to
// a file in Dir.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (a *APIServer) run(name string, args ...string) (*process, error) {
	logPath := a.path(name + ".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(a.bins, name), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = a.Dir
	// Its own process group; it dies with the test binary (a panic on
	// -timeout runs no cleanup).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	a.procs = append(a.procs, p)
	return p, nil
}

// stop terminates the process's group, then kills it.
func (p *process) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond until it succeeds, the process exits or the deadline.
func waitFor(p *process, timeout time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if p.exited() {
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("%s exited before %s: %s", p.name, what, tail(string(b), 3000))
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("no %s after %s: %v\n%s", what, timeout, err, tail(string(b), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
