package ca

import (
	"crypto/sha1" //nolint:gosec // fingerprint format of Flink/keytool, not a signature
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Files written by CreateCerts.
const (
	InternalPEMFile    = "internal.pem"
	InternalP12File    = "internal.p12"
	TruststoreFile     = "truststore.pem"
	JobManagerPEMFile  = "jobmanager.pem"
	TaskManagerPEMFile = "taskmanager.pem"
	RESTPEMFile        = "rest.pem"
)

// CreateCertsOptions configures CreateCerts.
type CreateCertsOptions struct {
	Dir       string
	ClusterID string   // "" generates one
	Hosts     []string // SANs of rest.pem (and the others); default localhost, 127.0.0.1
	Days      int      // leaf validity; default 365
	// TaskManagerIDs, when set, also get a certificate each, in
	// taskmanager-<id>.pem: a TaskManager must run with --id equal to the
	// id in its certificate.
	TaskManagerIDs []string
}

// Fingerprint is a certificate's fingerprints in keytool's format
// (colon-separated uppercase hex), as security.ssl.*.cert.fingerprint
// takes them.
type Fingerprint struct{ SHA1, SHA256 string }

// CreateCertsResult describes what CreateCerts wrote.
type CreateCertsResult struct {
	Dir         string
	ClusterID   string
	P12Password string // of internal.p12; print it once, it is not stored
	Files       []string
	// Fingerprints of the certificate in each file, by file name
	// (ca.crt, internal.pem, jobmanager.pem, ...).
	Fingerprints map[string]Fingerprint
}

// CreateCerts creates a cluster CA and the certificates of both security
// models into o.Dir: Flink's shared certificate without identity
// (internal.pem, internal.p12 and truststore.pem), per-process identities
// (jobmanager.pem, taskmanager.pem) and the REST server certificate
// (rest.pem). It refuses to overwrite existing files: replacing a CA
// silently would cut off every process still using the old one.
func CreateCerts(o CreateCertsOptions) (CreateCertsResult, error) {
	if o.Dir == "" {
		return CreateCertsResult{}, errors.New("create-certs: no output directory")
	}
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"localhost", "127.0.0.1"}
	}
	if o.Days == 0 {
		o.Days = 365
	}
	if o.Days < 0 {
		return CreateCertsResult{}, fmt.Errorf("create-certs: negative days %d", o.Days)
	}
	names := []string{CertFile, KeyFile, InternalPEMFile, InternalP12File, TruststoreFile, JobManagerPEMFile, TaskManagerPEMFile, RESTPEMFile}
	for _, id := range o.TaskManagerIDs {
		names = append(names, "taskmanager-"+id+".pem")
	}
	for _, n := range names {
		p := filepath.Join(o.Dir, n)
		if ok, err := exists(p); err != nil {
			return CreateCertsResult{}, err
		} else if ok {
			return CreateCertsResult{}, fmt.Errorf("create-certs: %s already exists; choose another directory or remove the old files", p)
		}
	}
	ttl := time.Duration(o.Days) * 24 * time.Hour
	caValidity := DefaultCAValidity
	if ttl >= caValidity {
		caValidity = ttl + 24*time.Hour
	}
	c, err := New(o.ClusterID, caValidity)
	if err != nil {
		return CreateCertsResult{}, fmt.Errorf("create-certs: %w", err)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return CreateCertsResult{}, fmt.Errorf("create-certs: %w", err)
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return CreateCertsResult{}, fmt.Errorf("create-certs: %w", err)
	}

	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	internal, err := c.issueKeyPair(nil, o.Hosts, ttl, both)
	if err != nil {
		return CreateCertsResult{}, fmt.Errorf("create-certs: internal: %w", err)
	}
	jm, err := c.IssueKeyPair(RoleJobManager, "", o.Hosts, ttl)
	if err != nil {
		return CreateCertsResult{}, fmt.Errorf("create-certs: jobmanager: %w", err)
	}
	// taskmanager.pem is shared by every TaskManager (Flink's model): its
	// identity names the role and no id, so each TaskManager registers
	// under its own id and none can pose as the JobManager.
	shared, err := SharedTaskManagerIdentity(c.ClusterID)
	if err != nil {
		return CreateCertsResult{}, fmt.Errorf("create-certs: taskmanager: %w", err)
	}
	tm, err := c.issueKeyPair(shared, o.Hosts, ttl, both)
	if err != nil {
		return CreateCertsResult{}, fmt.Errorf("create-certs: taskmanager: %w", err)
	}
	// rest.pem is a server certificate only and has no identity: it is
	// often deployed on proxies and ingresses, and must not be usable as a
	// client certificate on internal connections, which share this CA.
	rest, err := c.issueKeyPair(nil, o.Hosts, ttl, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	if err != nil {
		return CreateCertsResult{}, fmt.Errorf("create-certs: rest: %w", err)
	}
	password, err := randomString(24)
	if err != nil {
		return CreateCertsResult{}, err
	}
	p12, err := pkcs12.Modern.Encode(internal.PrivateKey, internal.Leaf, []*x509.Certificate{c.Cert}, password)
	if err != nil {
		return CreateCertsResult{}, fmt.Errorf("create-certs: encode %s: %w", InternalP12File, err)
	}
	caKey, err := encodeKeyPEM(c.Key)
	if err != nil {
		return CreateCertsResult{}, err
	}

	type file struct {
		name string
		data []byte
		perm os.FileMode
		leaf *x509.Certificate
	}
	var files []file
	add := func(name string, perm os.FileMode, leaf *x509.Certificate, data []byte) {
		files = append(files, file{name, data, perm, leaf})
	}
	add(CertFile, 0o644, c.Cert, c.CertPEM())
	add(KeyFile, 0o600, nil, caKey)
	for _, f := range []struct {
		name string
		kp   tls.Certificate
	}{{InternalPEMFile, internal}, {JobManagerPEMFile, jm}, {TaskManagerPEMFile, tm}, {RESTPEMFile, rest}} {
		data, err := keyPairPEM(f.kp)
		if err != nil {
			return CreateCertsResult{}, fmt.Errorf("create-certs: %s: %w", f.name, err)
		}
		add(f.name, 0o600, f.kp.Leaf, data)
	}
	for _, id := range o.TaskManagerIDs {
		kp, err := c.IssueKeyPair(RoleTaskManager, id, o.Hosts, ttl)
		if err != nil {
			return CreateCertsResult{}, fmt.Errorf("create-certs: taskmanager %q: %w", id, err)
		}
		data, err := keyPairPEM(kp)
		if err != nil {
			return CreateCertsResult{}, err
		}
		add("taskmanager-"+id+".pem", 0o600, kp.Leaf, data)
	}
	add(InternalP12File, 0o600, nil, p12)
	add(TruststoreFile, 0o644, nil, c.CertPEM())

	r := CreateCertsResult{Dir: o.Dir, ClusterID: c.ClusterID, P12Password: password, Fingerprints: map[string]Fingerprint{}}
	for _, f := range files {
		p := filepath.Join(o.Dir, f.name)
		if err := writeFileAtomic(p, f.data, f.perm); err != nil {
			return CreateCertsResult{}, fmt.Errorf("create-certs: %w", err)
		}
		r.Files = append(r.Files, p)
		if f.leaf != nil {
			r.Fingerprints[f.name] = FingerprintOf(f.leaf)
		}
	}
	return r, nil
}

// keyPairPEM encodes the chain (leaf first) and then the key, the layout
// of a PEM keystore.
func keyPairPEM(kp tls.Certificate) ([]byte, error) {
	var b []byte
	for _, der := range kp.Certificate {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	k, err := encodeKeyPEM(kp.PrivateKey)
	if err != nil {
		return nil, err
	}
	return append(b, k...), nil
}

// FingerprintOf returns the SHA-1 and SHA-256 fingerprints of cert's DER.
func FingerprintOf(cert *x509.Certificate) Fingerprint {
	s1 := sha1.Sum(cert.Raw) //nolint:gosec // Flink pins SHA-1 fingerprints
	s256 := sha256.Sum256(cert.Raw)
	return Fingerprint{SHA1: colonHex(s1[:]), SHA256: colonHex(s256[:])}
}

func colonHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&0xf])
	}
	return sb.String()
}

// ConfigSnippet returns a sluice configuration snippet (Flink key names)
// using the generated files. It contains the keystore password.
func (r CreateCertsResult) ConfigSnippet() string {
	p := func(name string) string { return strconv.Quote(filepath.Join(r.Dir, name)) }
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by `sluice security create-certs` for cluster %s.\n", r.ClusterID)
	b.WriteString("# Contains the keystore password: keep this file readable by sluice only.\n\n")
	b.WriteString("# Internal connections (RPC, data exchange, blobs): Flink's shared-certificate model.\n")
	b.WriteString("security.ssl.internal.enabled: true\n")
	fmt.Fprintf(&b, "security.ssl.internal.keystore: %s\n", p(InternalP12File))
	b.WriteString("security.ssl.internal.keystore-type: PKCS12\n")
	fmt.Fprintf(&b, "security.ssl.internal.keystore-password: %s\n", strconv.Quote(r.P12Password))
	fmt.Fprintf(&b, "security.ssl.internal.key-password: %s\n", strconv.Quote(r.P12Password))
	fmt.Fprintf(&b, "security.ssl.internal.truststore: %s\n", p(TruststoreFile))
	b.WriteString("security.ssl.internal.truststore-type: PEM\n")
	fmt.Fprintf(&b, "security.ssl.internal.cert.fingerprint: %s\n", r.Fingerprints[InternalPEMFile].SHA256)
	b.WriteString("# Alternative, identities (a stolen TaskManager certificate cannot act as the JobManager):\n")
	b.WriteString("# replace keystore, keystore-type, passwords and cert.fingerprint above with\n")
	fmt.Fprintf(&b, "#   on the JobManager:     security.ssl.internal.keystore: %s\n", p(JobManagerPEMFile))
	fmt.Fprintf(&b, "#   on every TaskManager:  security.ssl.internal.keystore: %s (shared: each TaskManager\n", p(TaskManagerPEMFile))
	b.WriteString("#                          registers under its own --id, or a generated one)\n")
	b.WriteString("#   or per TaskManager:    taskmanager-<id>.pem from --taskmanager-ids (the TaskManager takes\n")
	b.WriteString("#                          its id from the certificate; --id, if given, must match it)\n")
	b.WriteString("#   and security.ssl.internal.keystore-type: PEM\n")
	fmt.Fprintf(&b, "#   (%s alone is %s with its key, without identity.)\n\n", InternalPEMFile, InternalP12File)
	b.WriteString("# REST API and dashboard.\n")
	b.WriteString("security.ssl.rest.enabled: true\n")
	fmt.Fprintf(&b, "security.ssl.rest.keystore: %s\n", p(RESTPEMFile))
	b.WriteString("security.ssl.rest.keystore-type: PEM\n")
	fmt.Fprintf(&b, "# clients: security.ssl.rest.truststore: %s\n", p(TruststoreFile))
	return b.String()
}
