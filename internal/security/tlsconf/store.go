package tlsconf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/filewatch"
)

// Store holds the current key and trust material of one connection group.
// Configs built from it look the material up at handshake time, so
// SetMaterial and file reloads take effect on new handshakes without
// rebuilding configs; established connections are not touched. It is safe
// for concurrent use.
type Store struct {
	opts Options
	p    parsed
	log  *slog.Logger

	cur        atomic.Pointer[material]
	noIDLogged atomic.Bool
	// noHostsLogged: the "own certificate names no host" note of
	// CheckHost is logged once.
	noHostsLogged atomic.Bool
	// revoked holds the serial numbers (decimal strings) of peer
	// certificates refused although they chain: revoked TaskManagers.
	revoked sync.Map

	// Guarded by reloadMu: Run polls while Reload may be called from a
	// request.
	reloadMu sync.Mutex
	lastStat string
	lastHash [sha256.Size]byte
}

// material is one immutable generation of key and trust material.
type material struct {
	gen   uint64
	cert  *tls.Certificate // nil until auto mode sets one
	roots *x509.CertPool   // nil: no trust store (fingerprint pinning only)
	id    Identity
	hasID bool
	idErr error // own certificate has a malformed identity: fail closed
}

// NewStore validates o and loads its keystore and truststore. Both may be
// empty: auto mode sets the material itself with SetMaterial.
func NewStore(o Options, log *slog.Logger) (*Store, error) {
	s, err := newStore(o, log)
	if err != nil {
		return nil, err
	}
	cert, roots, hash, err := s.loadFiles()
	if err != nil {
		return nil, err
	}
	s.lastHash = hash
	s.lastStat = s.statFiles()
	if err := s.set(cert, roots); err != nil {
		return nil, err
	}
	return s, nil
}

// NewStoreFromMaterial returns a Store holding cert and roots, with the
// other settings of o; o's store paths are ignored. Used by auto mode and
// tests.
func NewStoreFromMaterial(cert tls.Certificate, roots *x509.CertPool, o Options, log *slog.Logger) *Store {
	o.Keystore, o.Truststore = "", ""
	s, err := newStore(o, log)
	if err != nil {
		// Options from InternalOptions are already valid; a caller that
		// builds bad ones by hand gets the safe defaults and a log line.
		s.log.Error("invalid TLS options; using TLS 1.3 defaults", "err", err)
		s.p = parsed{minVersion: tls.VersionTLS13, maxVersion: tls.VersionTLS13}
	}
	s.SetMaterial(cert, roots)
	return s
}

func newStore(o Options, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if o.ReloadInterval <= 0 {
		o.ReloadInterval = DefaultReloadInterval
	}
	s := &Store{opts: o, log: log}
	p, err := o.parse()
	if err != nil {
		return s, err
	}
	s.p = p
	return s, nil
}

// SetMaterial swaps in new material (auto-mode renewal); new handshakes
// use it. An empty cert (no Certificate) means "none yet".
func (s *Store) SetMaterial(cert tls.Certificate, roots *x509.CertPool) {
	if err := s.set(cert, roots); err != nil {
		// set keeps the identity error in the material, so handshakes
		// fail closed; say why here once.
		s.log.Error("TLS certificate has a malformed identity; all handshakes will fail", "err", err)
	}
}

func (s *Store) set(cert tls.Certificate, roots *x509.CertPool) error {
	m := &material{roots: roots}
	if old := s.cur.Load(); old != nil {
		m.gen = old.gen + 1
	}
	if len(cert.Certificate) > 0 {
		if cert.Leaf == nil {
			leaf, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil {
				return fmt.Errorf("parse own certificate: %w", err)
			}
			cert.Leaf = leaf
		}
		m.cert = &cert
		m.id, m.hasID, m.idErr = IdentityOf(cert.Leaf)
	}
	s.cur.Store(m)
	return m.idErr
}

func (s *Store) material() *material {
	if m := s.cur.Load(); m != nil {
		return m
	}
	return &material{}
}

// Identity returns the identity of the current own certificate; false when
// there is no certificate or it carries no identity.
func (s *Store) Identity() (Identity, bool) {
	m := s.material()
	return m.id, m.hasID && m.idErr == nil
}

// Revoke refuses peer certificates with serial from now on (new
// handshakes; established connections are not touched). reason is logged
// with each refusal.
func (s *Store) Revoke(serial *big.Int, reason string) { s.revoked.Store(serial.String(), reason) }

// Revoked reports whether serial was revoked, and why.
func (s *Store) Revoked(serial *big.Int) (string, bool) {
	v, ok := s.revoked.Load(serial.String())
	if !ok {
		return "", false
	}
	return v.(string), true
}

// Certificate returns the current own certificate, or nil.
func (s *Store) Certificate() *tls.Certificate { return s.material().cert }

// Options returns the options the Store was built with.
func (s *Store) Options() Options { return s.opts }

// Run reloads the material when the keystore or truststore files change,
// if o.Reload is set; otherwise it returns at once. It polls every
// ReloadInterval (mtime and size first, then a content hash, so a touch
// does not reload) until ctx is done. A new material is loaded fully
// before it is swapped in: a broken or half-written file keeps the old
// material, logged once per change. Call Run at most once.
func (s *Store) Run(ctx context.Context) {
	if !s.opts.Reload || (s.opts.Keystore == "" && s.opts.Truststore == "") {
		return
	}
	t := time.NewTicker(s.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkReload()
		}
	}
}

func (s *Store) checkReload() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	st := s.statFiles()
	if st == s.lastStat {
		return
	}
	s.lastStat = st
	cert, roots, hash, err := s.loadFiles()
	if hash == s.lastHash {
		return // same content, or the same broken content already logged
	}
	s.lastHash = hash
	if err == nil {
		err = s.set(cert, roots)
	}
	if err != nil {
		s.log.Warn("TLS material not reloaded: keeping the current material", "err", err)
		return
	}
	attrs := []any{"keystore", s.opts.Keystore, "truststore", s.opts.Truststore}
	if m := s.material(); m.cert != nil {
		attrs = append(attrs, "sha256", FormatSHA256(m.cert.Leaf), "not_after", m.cert.Leaf.NotAfter)
		if m.hasID {
			attrs = append(attrs, "identity", m.id.String())
		}
	}
	s.log.Info("TLS material reloaded", attrs...)
}

func (s *Store) statFiles() string {
	var b bytes.Buffer
	for _, p := range []string{s.opts.Keystore, s.opts.Truststore} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s %d %d %d\n", p, fi.ModTime().UnixNano(), fi.Size(), filewatch.Inode(fi))
		} else {
			fmt.Fprintf(&b, "%s missing\n", p)
		}
	}
	return b.String()
}

// loadFiles reads and parses both files. hash covers what was read (or
// why it could not be), so an unchanged failure is not logged again.
func (s *Store) loadFiles() (tls.Certificate, *x509.CertPool, [sha256.Size]byte, error) {
	o, h := s.opts, sha256.New()
	read := func(path string) ([]byte, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(h, "%s: %v\n", path, err)
		} else {
			fmt.Fprintf(h, "%s: %d\n", path, len(data))
			h.Write(data)
		}
		return data, err
	}
	var (
		cert  tls.Certificate
		roots *x509.CertPool
		errs  []error
	)
	if o.Keystore != "" {
		data, err := read(o.Keystore)
		if err == nil {
			cert, err = parseKeyStore(o.Keystore, data, o.KeystoreType, o.KeystorePassword.Value(), o.KeyPassword.Value(), o.prefix())
		} else {
			err = fmt.Errorf("read keystore (%s): %w", o.key("keystore"), err)
		}
		errs = append(errs, err)
	}
	if o.Truststore != "" {
		data, err := read(o.Truststore)
		if err == nil {
			roots, _, err = parseTrustStore(o.Truststore, data, o.TruststoreType, o.TruststorePassword.Value(), o.prefix())
		} else {
			err = fmt.Errorf("read truststore (%s): %w", o.key("truststore"), err)
		}
		errs = append(errs, err)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return cert, roots, sum, errors.Join(errs...)
}

// Reload reads the keystore and truststore now (POST /admin/reload) and
// returns why they were not applied; the current material stays in force
// then. It is a no-op for a Store without files.
func (s *Store) Reload() error {
	if s.opts.Keystore == "" && s.opts.Truststore == "" {
		return nil
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cert, roots, hash, err := s.loadFiles()
	if err == nil {
		err = s.set(cert, roots)
	}
	s.lastStat, s.lastHash = s.statFiles(), hash
	if err != nil {
		return err
	}
	s.log.Info("TLS material reloaded on request", "keystore", s.opts.Keystore, "truststore", s.opts.Truststore)
	return nil
}
