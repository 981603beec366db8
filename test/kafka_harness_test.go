package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The Kafka broker of the tests is test/kafkabroker (kfake with TLS, SASL, ACLs and a
// GSSAPI acceptor), built once and started per test as a process of its own.

// kafkaBrokerConfig is test/kafkabroker's JSON configuration.
type kafkaBrokerConfig struct {
	Topics map[string]int32 `json:"topics"`
	TLS    *kafkaTLS        `json:"tls,omitempty"`
	SASL   *kafkaSASL       `json:"sasl,omitempty"`
	ACLs   bool             `json:"acls"`
	GSSAPI *kafkaGSSAPI     `json:"gssapi,omitempty"`
	// Delegation turns on delegation tokens (test/kafkabroker/delegation.go).
	Delegation *kafkaDelegation `json:"delegation,omitempty"`
}

type kafkaTLS struct {
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	ClientCA string `json:"client_ca,omitempty"`
}

type kafkaSASL struct {
	Superusers []kafkaUser `json:"superusers"`
	Users      []kafkaUser `json:"users"`
}

type kafkaUser struct {
	Mechanism string     `json:"mechanism"`
	Name      string     `json:"name"`
	Password  string     `json:"password,omitempty"`
	ACLs      []kafkaACL `json:"acls,omitempty"`
}

type kafkaACL struct {
	Resource  string `json:"resource"`
	Name      string `json:"name"`
	Pattern   string `json:"pattern,omitempty"`
	Operation string `json:"operation"`
	Deny      bool   `json:"deny,omitempty"`
}

type kafkaGSSAPI struct {
	Keytab string `json:"keytab"`
}

// kafkaAdmin is the superuser every SASL broker of the tests has.
var kafkaAdmin = kafkaUser{Mechanism: "SCRAM-SHA-512", Name: "admin", Password: "admin-secret"}

// kafkaBroker is a running test broker.
type kafkaBroker struct {
	addr string
	cfg  kafkaBrokerConfig
	proc *proc
	pki  *kafkaPKI // when TLS is on
}

var (
	kafkaBrokerOnce sync.Once
	kafkaBrokerBin  string
	kafkaBrokerErr  error
)

func buildKafkaBroker(t testing.TB) string {
	t.Helper()
	kafkaBrokerOnce.Do(func() {
		kafkaBrokerBin = filepath.Join(filepath.Dir(sluiceBin), "kafkabroker")
		out, err := exec.Command("go", "build", "-o", kafkaBrokerBin, "./kafkabroker").CombinedOutput()
		if err != nil {
			kafkaBrokerErr = err
			t.Logf("build kafkabroker: %s", out)
		}
	})
	if kafkaBrokerErr != nil {
		t.Fatalf("build kafkabroker: %v", kafkaBrokerErr)
	}
	return kafkaBrokerBin
}

var kafkaListeningRE = regexp.MustCompile(`kafkabroker listening on (\S+)`)

// startKafkaBroker starts a broker with cfg and waits until it listens.
func startKafkaBroker(t testing.TB, cfg kafkaBrokerConfig) *kafkaBroker {
	t.Helper()
	bin := buildKafkaBroker(t)
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kafkabroker.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBrokerProc(t, bin, "-config", path)
	kb := &kafkaBroker{cfg: cfg, proc: p}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := kafkaListeningRE.FindStringSubmatch(p.Log()); m != nil {
			kb.addr = m[1]
			return kb
		}
		select {
		case <-p.done:
			t.Fatalf("kafkabroker exited:\n%s", p.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkabroker did not start within 30s:\n%s", p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a franz-go client of the broker as its superuser (or anonymous without SASL),
// for the tests' own producing and reading.
func (kb *kafkaBroker) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	o := []kgo.Opt{kgo.SeedBrokers(kb.addr)}
	if kb.pki != nil {
		o = append(o, kgo.DialTLSConfig(kb.pki.clientTLS(t)))
	}
	if kb.cfg.SASL != nil {
		o = append(o, kgo.SASL(scram.Auth{User: kafkaAdmin.Name, Pass: kafkaAdmin.Password}.AsSha512Mechanism()))
	}
	cl, err := kgo.NewClient(append(o, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// kafkaEpochMillis is the timestamp of the tests' input record i: kafkaEpochMillis + i.
const kafkaEpochMillis = 1_700_000_000_000

// produce writes values to topic, record i with timestamp kafkaEpochMillis+i and the
// header origin=test.
func (kb *kafkaBroker) produce(t testing.TB, topic string, values []string) {
	t.Helper()
	cl := kb.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Value: []byte(v), Timestamp: time.UnixMilli(kafkaEpochMillis + int64(i)),
			Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// readCommitted reads topic from the start with read_committed until want records came
// or the deadline passed, and returns what it read.
func (kb *kafkaBroker) readCommitted(t testing.TB, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl := kb.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// kafkaPKI is a CA, a broker certificate for 127.0.0.1 and localhost, and a client
// certificate, as PEM files in dir.
type kafkaPKI struct {
	dir                              string
	ca, brokerCert, brokerKey        string
	clientCert, clientKey, clientPEM string // clientPEM: certificate and key in one file
}

func newKafkaPKI(t testing.TB) *kafkaPKI {
	t.Helper()
	dir := t.TempDir()
	p := &kafkaPKI{dir: dir}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafka test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p.ca = writePEMs(t, dir, "ca.pem", pemBlock("CERTIFICATE", caDER))
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, server bool) (certPath, keyPath, both string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if server {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		c, k := pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kder)
		return writePEMs(t, dir, name+".pem", c), writePEMs(t, dir, name+"-key.pem", k), writePEMs(t, dir, name+"-all.pem", c, k)
	}
	p.brokerCert, p.brokerKey, _ = issue("broker", 2, x509.ExtKeyUsageServerAuth, true)
	p.clientCert, p.clientKey, p.clientPEM = issue("client", 3, x509.ExtKeyUsageClientAuth, false)
	return p
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writePEMs(t testing.TB, dir, name string, blocks ...[]byte) string {
	t.Helper()
	var all []byte
	for _, b := range blocks {
		all = append(all, b...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, all, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *kafkaPKI) clientTLS(t testing.TB) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(p.ca)
	pool.AppendCertsFromPEM(b)
	kp, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}, ServerName: "127.0.0.1"}
}

// brokerTLS is the broker side: its certificate, and client certificates required.
func (p *kafkaPKI) brokerTLS() *kafkaTLS {
	return &kafkaTLS{Cert: p.brokerCert, Key: p.brokerKey, ClientCA: p.ca}
}

type x509Certificate = x509.Certificate

func parsePEMCert(t testing.TB, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startBrokerProc is startProcWith for tests and benchmarks alike: the broker runs in its
// own process group, is interrupted then killed at cleanup, and its log is shown on failure.
func startBrokerProc(t testing.TB, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: "kafkabroker", done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	inOwnGroup(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start kafkabroker: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.Kill()
		}
		if t.Failed() {
			t.Logf("--- kafkabroker log ---\n%s", p.Log())
		}
	})
	return p
}
