package tlsconf

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"strconv"
	"sync"
	"time"
)

// defaultTicketKeyLifetime bounds how long a session ticket key is used
// when security.ssl.internal.session-timeout is the default, as Go's own
// automatic rotation does.
const defaultTicketKeyLifetime = 24 * time.Hour

func (s *Store) baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   s.p.minVersion,
		MaxVersion:   s.p.maxVersion,
		CipherSuites: s.p.suites, // nil: Go's modern defaults; ignored by TLS 1.3
		// SessionTimeout 0 turns resumption off (Flink's 0 means no
		// sessions); a negative value is "library default".
		SessionTicketsDisabled: s.opts.SessionTimeout == 0 || s.opts.SessionCacheSize == 0,
	}
}

// ServerConfig returns the server side of a connection group: it presents
// the current certificate, requires a client certificate (unless
// p.ClientCertOptional) and verifies it with the Store's checks.
//
// Session tickets are on unless SessionTimeout or SessionCacheSize is 0.
// Their keys are replaced when the material changes (so a resumed session
// cannot outlive a certificate swap) and after SessionTimeout (default 24h),
// which bounds resumption. Resumed sessions are still verified against the
// current roots, fingerprints and identity rules.
func (s *Store) ServerConfig(p PeerPolicy) *tls.Config {
	c := s.baseConfig()
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if cert := s.material().cert; cert != nil {
			return cert, nil
		}
		return nil, errors.New("tls: this side has no certificate yet")
	}
	// Require any certificate and verify it ourselves: Go's own client
	// verification would check it against ClientCAs only, without our
	// fingerprint and identity rules and without reloadable roots.
	c.ClientAuth = tls.RequireAnyClientCert
	if p.ClientCertOptional {
		c.ClientAuth = tls.RequestClientCert
	}
	if p.NoClientCert {
		c.ClientAuth = tls.NoClientCert
	}
	c.VerifyConnection = func(cs tls.ConnectionState) error { return s.verifyPeer(cs, p, true) }

	var (
		mu      sync.Mutex
		gen     uint64
		perGen  *tls.Config
		created time.Time
	)
	lifetime := defaultTicketKeyLifetime
	if s.opts.SessionTimeout > 0 {
		lifetime = s.opts.SessionTimeout
	}
	outer := c.Clone()
	outer.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		g := s.material().gen
		mu.Lock()
		defer mu.Unlock()
		if perGen == nil || g != gen || time.Since(created) > lifetime {
			next := c.Clone()
			if !next.SessionTicketsDisabled {
				var key [32]byte
				if _, err := rand.Read(key[:]); err != nil {
					return nil, err
				}
				next.SetSessionTicketKeys([][32]byte{key})
			}
			perGen, gen, created = next, g, time.Now()
		}
		return perGen, nil
	}
	return outer
}

// ClientConfig returns the client side of a connection group: it presents
// the current certificate when asked and verifies the server with the
// Store's checks. Host names are not verified (Flink skips them on internal
// connections; the identity check replaces them), so InsecureSkipVerify is
// set and VerifyConnection does the whole verification.
func (s *Store) ClientConfig(p PeerPolicy) *tls.Config {
	c := s.baseConfig()
	c.ServerName = p.ServerName
	c.InsecureSkipVerify = true //nolint:gosec // verification is done in VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error { return s.verifyPeer(cs, p, false) }
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if cert := s.material().cert; cert != nil {
			return cert, nil
		}
		return &tls.Certificate{}, nil // none yet: the server decides
	}
	if !c.SessionTicketsDisabled {
		size := s.opts.SessionCacheSize
		if size < 0 {
			size = 0 // Go's default size
		}
		c.ClientSessionCache = &genCache{s: s, c: tls.NewLRUClientSessionCache(size)}
	}
	return c
}

// genCache keys sessions by material generation, so after a swap the
// client shows its new certificate instead of resuming with the old one.
type genCache struct {
	s *Store
	c tls.ClientSessionCache
}

func (g *genCache) key(k string) string {
	return strconv.FormatUint(g.s.material().gen, 10) + "|" + k
}

func (g *genCache) Get(k string) (*tls.ClientSessionState, bool) { return g.c.Get(g.key(k)) }
func (g *genCache) Put(k string, cs *tls.ClientSessionState)     { g.c.Put(g.key(k), cs) }
