package main

// Kafka delegation tokens (KIP-48) for the test broker. kfake implements neither the
// delegation-token requests (keys 38-41) nor SCRAM logins with the tokenauth=true extension,
// so this file puts a protocol-level interposer between each client connection and kfake
// (kfake.ListenFn wraps the listener; every connection is a tokenConn). The interposer reads
// the client's request frames and kfake's response frames and:
//
//   - answers CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken and
//     DescribeDelegationToken itself, for connections that authenticated (PLAIN, SCRAM or
//     GSSAPI) as a broker user: the owner is that user; a connection that logged in with a
//     token may not create or renew one (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED), as on Kafka;
//   - adds keys 38-41 to kfake's ApiVersions answers, so clients send them;
//   - runs SCRAM-SHA-256/512 logins with tokenauth=true itself (RFC 5802, the token id as user
//     name, the base64 of the token's HMAC as password, Kafka's scheme): it holds back the
//     client's SCRAM handshake until the client-first message says whether this is a token
//     login; a token login that proves the HMAC is completed towards kfake as a PLAIN login of
//     the token's owner with a password only the broker knows, so that kfake applies the
//     owner's ACLs, and the client gets the SCRAM server-final message; a login with an
//     unknown or expired token is refused (SASL_AUTHENTICATION_FAILED); an ordinary SCRAM
//     login is passed to kfake unchanged;
//   - enforces expiry: a token past its expiry (renewals move it, up to the token's max
//     lifetime) no longer logs in; a token login's session lasts until the token's expiry at
//     that time (SessionLifetimeMs, KIP-368): the client re-authenticates before, and a
//     connection that sends anything but a re-authentication after it is closed;
//   - refuses creation and renewal (DELEGATION_TOKEN_AUTH_DISABLED) while DenyFile exists:
//     the tests' broken provider.
//
// Token lifetimes are DelegationConfig's (Kafka's delegation.token.expiry.time.ms and
// delegation.token.max.lifetime.ms). TLS listeners are not supported with delegation tokens
// (the interposer must see the protocol).

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DelegationConfig turns on delegation tokens.
type DelegationConfig struct {
	// ExpiryMS is delegation.token.expiry.time.ms: a token's lifetime at creation and at each
	// renewal (default 24 h).
	ExpiryMS int64 `json:"expiry_ms"`
	// MaxLifetimeMS is delegation.token.max.lifetime.ms (default 7 days).
	MaxLifetimeMS int64 `json:"max_lifetime_ms"`
	// DenyFile: while it exists, creating and renewing tokens is refused.
	DenyFile string `json:"deny_file,omitempty"`
}

// tokenKeys are the delegation-token API keys the broker answers, with the versions.
var tokenKeys = []struct{ key, min, max int16 }{
	{int16(kmsg.CreateDelegationToken), 0, 3},
	{int16(kmsg.RenewDelegationToken), 0, 2},
	{int16(kmsg.ExpireDelegationToken), 0, 2},
	{int16(kmsg.DescribeDelegationToken), 0, 3},
}

// tokenScramIterations is the iteration count of token logins.
const tokenScramIterations = 4096

func init() {
	register(installer{name: "delegation", options: func(cfg *Config) ([]kfake.Opt, error) {
		d := cfg.Delegation
		if d == nil {
			return nil, nil
		}
		if cfg.SASL == nil {
			return nil, errors.New("delegation tokens need sasl (tokens are created by authenticated users)")
		}
		if cfg.TLS != nil {
			return nil, errors.New("delegation tokens are not supported with tls by the test broker")
		}
		if d.ExpiryMS <= 0 {
			d.ExpiryMS = 24 * 3600 * 1000
		}
		if d.MaxLifetimeMS <= 0 {
			d.MaxLifetimeMS = 7 * 24 * 3600 * 1000
		}
		dl := &delegation{cfg: *d, tokens: map[string]*token{}, shadow: map[string]string{}}
		theDelegation.Store(dl)
		if _, err := rand.Read(dl.master[:]); err != nil {
			return nil, err
		}
		opts := []kfake.Opt{kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			return &tokenListener{Listener: l, d: dl}, nil
		})}
		// Every user gets a PLAIN identity kfake knows, so a token login completes as its owner.
		add := func(u User, super bool) {
			switch u.Mechanism {
			case "PLAIN":
				dl.shadow[u.Name] = u.Password
				return
			case "GSSAPI":
				dl.shadow[u.Name] = gssapiSecret(u.Name) // users.go registers it
				return
			}
			dl.shadow[u.Name] = gssapiSecret(u.Name)
			if super {
				opts = append(opts, kfake.Superuser("PLAIN", u.Name, dl.shadow[u.Name]))
				return
			}
			acls, err := kfakeACLs(u.ACLs)
			if err == nil {
				opts = append(opts, kfake.User("PLAIN", u.Name, dl.shadow[u.Name], acls...))
			}
		}
		for _, u := range cfg.SASL.Superusers {
			add(u, true)
		}
		for _, u := range cfg.SASL.Users {
			add(u, false)
		}
		return opts, nil
	}})
}

// theDelegation is the broker's token store, when delegation tokens are on.
var theDelegation atomic.Pointer[delegation]

// tokenOwnerPassword is the PLAIN password a token login completes with at kfake for its
// owner (plain.go accepts it).
func tokenOwnerPassword(user string) (string, bool) {
	d := theDelegation.Load()
	if d == nil {
		return "", false
	}
	pw, ok := d.shadow[user]
	return pw, ok
}

// delegation is the broker's token store.
type delegation struct {
	cfg    DelegationConfig
	master [32]byte
	shadow map[string]string // user -> its PLAIN password at kfake

	mu     sync.Mutex
	tokens map[string]*token // by id
}

type token struct {
	id, owner            string
	hmac                 []byte
	issue, expiry, maxTS time.Time
}

func (d *delegation) denied() bool {
	if d.cfg.DenyFile == "" {
		return false
	}
	_, err := os.Stat(d.cfg.DenyFile)
	return err == nil
}

func (d *delegation) byHMAC(h []byte) *token {
	for _, t := range d.tokens {
		if hmac.Equal(t.hmac, h) {
			return t
		}
	}
	return nil
}

type tokenListener struct {
	net.Listener
	d *delegation
}

func (l *tokenListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tokenConn{Conn: c, d: l.d, apiVersions: map[int32]int16{}, drop: map[int32]bool{}, final: map[int32]finalStep{}}, nil
}

// finalStep is the last request of a login kfake runs: its user is the connection's
// principal if kfake's answer is a success.
type finalStep struct {
	user    string
	version int16
}

// tokenConn interposes on one client connection (see the file comment).
type tokenConn struct {
	net.Conn
	d *delegation

	in, out bytes.Buffer // client bytes not yet parsed; parsed bytes for kfake
	wbuf    bytes.Buffer // kfake's bytes not yet a whole frame
	wmu     sync.Mutex   // writes to the client

	mu          sync.Mutex
	apiVersions map[int32]int16     // ApiVersions requests in flight: corr -> version
	drop        map[int32]bool      // responses to synthesized requests: swallowed
	final       map[int32]finalStep // final login steps in flight, by correlation id
	mech        string              // mechanism of the handshake in progress
	held        []byte              // a SCRAM handshake not yet shown to kfake
	heldCorr    int32               // its correlation id
	scramUser   string              // user of an ordinary SCRAM login in progress
	tok         *scramServer        // a token login in progress
	user        string              // authenticated principal
	viaToken    bool                // authenticated with a token
	sessionEnd  time.Time           // a token session's end
	nextCorr    int32               // correlation ids of synthesized requests (negative)
}

func (c *tokenConn) Read(p []byte) (int, error) {
	for c.out.Len() == 0 {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	return c.out.Read(p)
}

// fill reads client bytes and processes every whole frame.
func (c *tokenConn) fill() error {
	buf := make([]byte, 64<<10)
	n, err := c.Conn.Read(buf)
	c.in.Write(buf[:n])
	for {
		b := c.in.Bytes()
		if len(b) < 4 {
			break
		}
		size := int(binary.BigEndian.Uint32(b))
		if len(b) < 4+size {
			break
		}
		frame := bytes.Clone(b[:4+size])
		c.in.Next(4 + size)
		if perr := c.process(frame); perr != nil {
			c.Conn.Close()
			return perr
		}
	}
	if err != nil && c.out.Len() == 0 {
		return err
	}
	return nil
}

// reqHeader is a parsed request header; body is what follows it.
type reqHeader struct {
	key, version int16
	corr         int32
	flexible     bool
	body         []byte
}

func parseRequest(frame []byte) (reqHeader, error) {
	b := frame[4:]
	if len(b) < 10 {
		return reqHeader{}, errors.New("short request")
	}
	h := reqHeader{key: int16(binary.BigEndian.Uint16(b)), version: int16(binary.BigEndian.Uint16(b[2:])), corr: int32(binary.BigEndian.Uint32(b[4:]))}
	b = b[8:]
	idLen := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if idLen > 0 {
		if len(b) < int(idLen) {
			return reqHeader{}, errors.New("short client id")
		}
		b = b[idLen:]
	}
	if req := kmsg.RequestForKey(h.key); req != nil {
		req.SetVersion(h.version)
		h.flexible = req.IsFlexible()
	}
	if h.flexible {
		var err error
		if b, err = skipTags(b); err != nil {
			return reqHeader{}, err
		}
	}
	h.body = b
	return h, nil
}

func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, errors.New("bad tagged fields")
	}
	b = b[l:]
	for i := uint64(0); i < n; i++ {
		_, l := binary.Uvarint(b)
		if l <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b[l:])) < size {
			return nil, errors.New("bad tag size")
		}
		b = b[l+int(size):]
	}
	return b, nil
}

// respond writes a response to the client at once (a response frame: size, correlation id,
// tagged fields for flexible responses but ApiVersions, body).
func (c *tokenConn) respond(corr int32, resp kmsg.Response) error {
	body := resp.AppendTo(nil)
	var frame []byte
	frame = binary.BigEndian.AppendUint32(frame, 0)
	frame = binary.BigEndian.AppendUint32(frame, uint32(corr))
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		frame = append(frame, 0)
	}
	frame = append(frame, body...)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.Conn.Write(frame)
	return err
}

// toKafka queues a synthesized request for kfake; its response is swallowed.
func (c *tokenConn) toKafka(req kmsg.Request) {
	c.nextCorr--
	c.drop[c.nextCorr] = true
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("kafkabroker"))
	c.out.Write(f.AppendRequest(nil, req, c.nextCorr))
}

func (c *tokenConn) process(frame []byte) error {
	h, err := parseRequest(frame)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := kmsg.Key(h.key)
	if c.viaToken && key != kmsg.SASLHandshake && key != kmsg.SASLAuthenticate && key != kmsg.ApiVersions && time.Now().After(c.sessionEnd) {
		fmt.Fprintf(os.Stderr, "kafkabroker: closing the connection of token owner %s: its session ended at %s without re-authentication\n", c.user, c.sessionEnd.Format(time.RFC3339))
		return errors.New("token session expired")
	}
	switch key {
	case kmsg.ApiVersions:
		c.apiVersions[h.corr] = h.version
	case kmsg.SASLHandshake:
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.SetVersion(h.version)
		if err := req.ReadFrom(h.body); err != nil {
			return err
		}
		c.mech = req.Mechanism
		if strings.HasPrefix(req.Mechanism, "SCRAM-SHA-") {
			// Held until the client-first message says whether this is a token login.
			c.held, c.heldCorr = frame, h.corr
			resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
			resp.SupportedMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI"}
			return c.respond(h.corr, resp)
		}
		if c.viaToken {
			return errors.New("a token connection may only re-authenticate with its token")
		}
	case kmsg.SASLAuthenticate:
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SetVersion(h.version)
		if err := req.ReadFrom(h.body); err != nil {
			return err
		}
		return c.authenticate(h, frame, req)
	case kmsg.CreateDelegationToken, kmsg.RenewDelegationToken, kmsg.ExpireDelegationToken, kmsg.DescribeDelegationToken:
		return c.tokenRequest(h)
	}
	c.out.Write(frame)
	return nil
}

func (c *tokenConn) refuseAuth(h reqHeader, why string) error {
	fmt.Fprintf(os.Stderr, "kafkabroker: SASL authentication refused: %s\n", why)
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SetVersion(h.version)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
	msg := "Authentication failed: " + why
	resp.ErrorMessage = &msg
	c.tok = nil
	return c.respond(h.corr, resp)
}

func (c *tokenConn) authenticate(h reqHeader, frame []byte, req *kmsg.SASLAuthenticateRequest) error {
	b := req.SASLAuthBytes
	scram := strings.HasPrefix(c.mech, "SCRAM-SHA-")
	switch {
	case scram && c.tok != nil: // a token login's client-final message
		serverFinal, err := c.tok.final(b)
		if err != nil {
			return c.refuseAuth(h, err.Error())
		}
		t := c.tok.t
		c.tok = nil
		if !c.viaToken {
			// kfake learns the connection as the token's owner.
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.SetVersion(1)
			hs.Mechanism = "PLAIN"
			c.toKafka(hs)
			pa := kmsg.NewPtrSASLAuthenticateRequest()
			pa.SetVersion(1)
			pa.SASLAuthBytes = []byte("\x00" + t.owner + "\x00" + c.d.shadow[t.owner])
			c.toKafka(pa)
		}
		c.user, c.viaToken, c.sessionEnd = t.owner, true, t.expiry
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.SASLAuthBytes = serverFinal
		resp.SessionLifetimeMillis = time.Until(t.expiry).Milliseconds()
		fmt.Fprintf(os.Stderr, "kafkabroker: token %s of %s logged in (session until %s)\n", t.id, t.owner, t.expiry.Format(time.RFC3339))
		return c.respond(h.corr, resp)
	case scram && c.held != nil && bytes.HasPrefix(b, []byte("n,")): // client-first
		first, err := parseClientFirst(b)
		if err != nil {
			return c.refuseAuth(h, err.Error())
		}
		if first.ext["tokenauth"] == "true" {
			c.d.mu.Lock()
			t, ok := c.d.tokens[first.user]
			var cp token
			if ok {
				cp = *t
			}
			c.d.mu.Unlock()
			switch {
			case !ok:
				return c.refuseAuth(h, "unknown delegation token "+first.user)
			case time.Now().After(cp.expiry):
				return c.refuseAuth(h, fmt.Sprintf("delegation token %s expired at %s", cp.id, cp.expiry.Format(time.RFC3339)))
			case c.viaToken && cp.owner != c.user:
				return c.refuseAuth(h, "re-authentication changed the principal")
			}
			c.held = nil
			s, err := newScramServer(c.mech, first, &cp)
			if err != nil {
				return c.refuseAuth(h, err.Error())
			}
			c.tok = s
			resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
			resp.SASLAuthBytes = s.serverFirst
			return c.respond(h.corr, resp)
		}
		if c.viaToken {
			return c.refuseAuth(h, "a token connection may only re-authenticate with its token")
		}
		// An ordinary SCRAM login: kfake's, its handshake answered already.
		c.drop[c.heldCorr] = true
		c.out.Write(c.held)
		c.held = nil
		c.scramUser = first.user
	case scram && bytes.HasPrefix(b, []byte("c=")): // an ordinary SCRAM login's last step
		c.final[h.corr] = finalStep{c.scramUser, h.version}
	case c.mech == "PLAIN":
		if parts := strings.SplitN(string(b), "\x00", 3); len(parts) == 3 {
			c.final[h.corr] = finalStep{parts[1], h.version}
		}
	case c.mech == "GSSAPI" && len(b) >= 2 && b[0] == 0x05 && b[1] == 0x04:
		if u, ok := gssapiPeek(b); ok {
			c.final[h.corr] = finalStep{u, h.version}
		}
	}
	c.out.Write(frame)
	return nil
}

// tokenRequest answers keys 38-41.
func (c *tokenConn) tokenRequest(h reqHeader) error {
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if err := req.ReadFrom(h.body); err != nil {
		return err
	}
	resp := req.ResponseKind()
	d := c.d
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	code := int16(0)
	switch r := req.(type) {
	case *kmsg.CreateDelegationTokenRequest:
		out := resp.(*kmsg.CreateDelegationTokenResponse)
		switch {
		case c.user == "":
			code = kerr.SaslAuthenticationFailed.Code
		case c.viaToken:
			code = kerr.DelegationTokenRequestNotAllowed.Code
		case d.denied():
			code = kerr.DelegationTokenAuthDisabled.Code
		default:
			life := time.Duration(d.cfg.MaxLifetimeMS) * time.Millisecond
			if r.MaxLifetimeMillis > 0 && time.Duration(r.MaxLifetimeMillis)*time.Millisecond < life {
				life = time.Duration(r.MaxLifetimeMillis) * time.Millisecond
			}
			id := make([]byte, 16)
			_, _ = rand.Read(id)
			t := &token{id: base64.RawURLEncoding.EncodeToString(id), owner: c.user, issue: now, maxTS: now.Add(life)}
			mac := hmac.New(sha512.New, d.master[:])
			mac.Write([]byte(t.id))
			t.hmac = mac.Sum(nil)
			t.expiry = minTime(now.Add(time.Duration(d.cfg.ExpiryMS)*time.Millisecond), t.maxTS)
			d.tokens[t.id] = t
			out.PrincipalType, out.PrincipalName = "User", t.owner
			out.TokenRequesterPrincipalType, out.TokenRequesterPrincipalName = "User", c.user
			out.IssueTimestamp, out.ExpiryTimestamp, out.MaxTimestamp = t.issue.UnixMilli(), t.expiry.UnixMilli(), t.maxTS.UnixMilli()
			out.TokenID, out.HMAC = t.id, t.hmac
			fmt.Fprintf(os.Stderr, "kafkabroker: delegation token %s created for %s, expires %s\n", t.id, t.owner, t.expiry.Format(time.RFC3339))
		}
		out.ErrorCode = code
	case *kmsg.RenewDelegationTokenRequest:
		out := resp.(*kmsg.RenewDelegationTokenResponse)
		t := d.byHMAC(r.HMAC)
		switch {
		case c.user == "":
			code = kerr.SaslAuthenticationFailed.Code
		case c.viaToken:
			code = kerr.DelegationTokenRequestNotAllowed.Code
		case d.denied():
			code = kerr.DelegationTokenAuthDisabled.Code
		case t == nil:
			code = kerr.DelegationTokenNotFound.Code
		case t.owner != c.user:
			code = kerr.DelegationTokenOwnerMismatch.Code
		case now.After(t.expiry):
			code = kerr.DelegationTokenExpired.Code
		default:
			period := time.Duration(r.RenewTimeMillis) * time.Millisecond
			if r.RenewTimeMillis < 0 {
				period = time.Duration(d.cfg.ExpiryMS) * time.Millisecond
			}
			t.expiry = minTime(now.Add(period), t.maxTS)
			out.ExpiryTimestamp = t.expiry.UnixMilli()
			fmt.Fprintf(os.Stderr, "kafkabroker: delegation token %s renewed, expires %s\n", t.id, t.expiry.Format(time.RFC3339))
		}
		out.ErrorCode = code
	case *kmsg.ExpireDelegationTokenRequest:
		out := resp.(*kmsg.ExpireDelegationTokenResponse)
		t := d.byHMAC(r.HMAC)
		switch {
		case c.user == "":
			code = kerr.SaslAuthenticationFailed.Code
		case c.viaToken:
			code = kerr.DelegationTokenRequestNotAllowed.Code
		case t == nil:
			code = kerr.DelegationTokenNotFound.Code
		case t.owner != c.user:
			code = kerr.DelegationTokenOwnerMismatch.Code
		case r.ExpiryPeriodMillis < 0:
			t.expiry = now
			delete(d.tokens, t.id)
			out.ExpiryTimestamp = now.UnixMilli()
			fmt.Fprintf(os.Stderr, "kafkabroker: delegation token %s expired by its owner\n", t.id)
		default:
			t.expiry = minTime(now.Add(time.Duration(r.ExpiryPeriodMillis)*time.Millisecond), t.maxTS)
			out.ExpiryTimestamp = t.expiry.UnixMilli()
		}
		out.ErrorCode = code
	case *kmsg.DescribeDelegationTokenRequest:
		out := resp.(*kmsg.DescribeDelegationTokenResponse)
		if c.user == "" {
			out.ErrorCode = kerr.SaslAuthenticationFailed.Code
			break
		}
		owners := map[string]bool{}
		for _, o := range r.Owners {
			owners[o.PrincipalName] = true
		}
		for _, t := range d.tokens {
			if (len(owners) == 0 && t.owner == c.user) || owners[t.owner] {
				td := kmsg.NewDescribeDelegationTokenResponseTokenDetail()
				td.PrincipalType, td.PrincipalName = "User", t.owner
				td.TokenRequesterPrincipalType, td.TokenRequesterPrincipalName = "User", t.owner
				td.IssueTimestamp, td.ExpiryTimestamp, td.MaxTimestamp = t.issue.UnixMilli(), t.expiry.UnixMilli(), t.maxTS.UnixMilli()
				td.TokenID, td.HMAC = t.id, t.hmac
				out.TokenDetails = append(out.TokenDetails, td)
			}
		}
	}
	return c.respond(h.corr, resp)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Write receives kfake's response bytes: whole frames are passed on (ApiVersions answers
// with the token keys added), swallowed (answers to synthesized requests) or noted (a final
// login step's outcome).
func (c *tokenConn) Write(p []byte) (int, error) {
	c.wbuf.Write(p)
	for {
		b := c.wbuf.Bytes()
		if len(b) < 8 {
			return len(p), nil
		}
		size := int(binary.BigEndian.Uint32(b))
		if len(b) < 4+size {
			return len(p), nil
		}
		frame := bytes.Clone(b[:4+size])
		c.wbuf.Next(4 + size)
		corr := int32(binary.BigEndian.Uint32(frame[4:]))
		c.mu.Lock()
		drop := c.drop[corr]
		delete(c.drop, corr)
		version, isAV := c.apiVersions[corr]
		delete(c.apiVersions, corr)
		step, isFinal := c.final[corr]
		delete(c.final, corr)
		c.mu.Unlock()
		if drop {
			continue
		}
		if isAV {
			frame = addTokenKeys(frame, version)
		}
		if isFinal {
			resp := kmsg.NewPtrSASLAuthenticateResponse()
			resp.SetVersion(step.version)
			body, err := frame[8:], error(nil)
			if resp.IsFlexible() {
				body, err = skipTags(body)
			}
			if err == nil && resp.ReadFrom(body) == nil && resp.ErrorCode == 0 {
				c.mu.Lock()
				c.user = step.user
				c.mu.Unlock()
			}
		}
		c.wmu.Lock()
		_, err := c.Conn.Write(frame)
		c.wmu.Unlock()
		if err != nil {
			return 0, err
		}
	}
}

// addTokenKeys adds keys 38-41 to an ApiVersions response frame.
func addTokenKeys(frame []byte, version int16) []byte {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(version)
	if err := resp.ReadFrom(frame[8:]); err != nil || resp.ErrorCode != 0 {
		return frame
	}
	for _, k := range tokenKeys {
		ak := kmsg.NewApiVersionsResponseApiKey()
		ak.ApiKey, ak.MinVersion, ak.MaxVersion = k.key, k.min, k.max
		resp.ApiKeys = append(resp.ApiKeys, ak)
	}
	out := binary.BigEndian.AppendUint32(nil, 0)
	out = append(out, frame[4:8]...)
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

// clientFirst is a SCRAM client-first message.
type clientFirst struct {
	user, nonce, bare string
	ext               map[string]string
}

func parseClientFirst(b []byte) (clientFirst, error) {
	s := string(b)
	// gs2-header: n,[a=authzid],
	i := strings.Index(s, ",")
	if i < 0 {
		return clientFirst{}, errors.New("invalid client-first message")
	}
	j := strings.Index(s[i+1:], ",")
	if j < 0 {
		return clientFirst{}, errors.New("invalid client-first message")
	}
	cf := clientFirst{bare: s[i+1+j+1:], ext: map[string]string{}}
	for _, kv := range strings.Split(cf.bare, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "n":
			cf.user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(v)
		case "r":
			cf.nonce = v
		default:
			cf.ext[k] = v
		}
	}
	if cf.user == "" || cf.nonce == "" {
		return clientFirst{}, errors.New("client-first message without user or nonce")
	}
	return cf, nil
}

// scramServer is the server side of one token login (RFC 5802).
type scramServer struct {
	t           *token
	h           func() hash.Hash
	first       clientFirst
	nonce       string
	salted      []byte
	serverFirst []byte
}

func newScramServer(mech string, first clientFirst, t *token) (*scramServer, error) {
	h := sha256.New
	if mech == "SCRAM-SHA-512" {
		h = sha512.New
	}
	salt := make([]byte, 16)
	snonce := make([]byte, 18)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(snonce)
	// Kafka's token password is the base64 of the HMAC.
	pass := base64.StdEncoding.EncodeToString(t.hmac)
	salted, err := pbkdf2.Key(h, pass, salt, tokenScramIterations, h().Size())
	if err != nil {
		return nil, err
	}
	nonce := first.nonce + base64.RawStdEncoding.EncodeToString(snonce)
	return &scramServer{t: t, h: h, first: first, nonce: nonce, salted: salted,
		serverFirst: fmt.Appendf(nil, "r=%s,s=%s,i=%d", nonce, base64.StdEncoding.EncodeToString(salt), tokenScramIterations)}, nil
}

func (s *scramServer) mac(key []byte, msg string) []byte {
	m := hmac.New(s.h, key)
	io.WriteString(m, msg)
	return m.Sum(nil)
}

// final verifies the client-final message and returns the server-final one.
func (s *scramServer) final(b []byte) ([]byte, error) {
	msg := string(b)
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, errors.New("invalid client-final message")
	}
	withoutProof, proof64 := msg[:i], msg[i+3:]
	if !strings.Contains(withoutProof+",", ",r="+s.nonce+",") {
		return nil, errors.New("client-final nonce mismatch")
	}
	proof, err := base64.StdEncoding.DecodeString(proof64)
	if err != nil {
		return nil, errors.New("client proof is not base64")
	}
	clientKey := s.mac(s.salted, "Client Key")
	hh := s.h()
	hh.Write(clientKey)
	stored := hh.Sum(nil)
	auth := s.first.bare + "," + string(s.serverFirst) + "," + withoutProof
	sig := s.mac(stored, auth)
	if len(proof) != len(sig) {
		return nil, errors.New("invalid token HMAC")
	}
	for k := range proof {
		proof[k] ^= sig[k]
	}
	hh = s.h()
	hh.Write(proof)
	if !hmac.Equal(hh.Sum(nil), stored) {
		return nil, fmt.Errorf("invalid HMAC for delegation token %s", s.t.id)
	}
	serverSig := s.mac(s.mac(s.salted, "Server Key"), auth)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), nil
}

// gssapiAcc is gssapi.go's acceptor, when the broker accepts Kerberos.
var gssapiAcc atomic.Pointer[gssapiAcceptor]

// gssapiPeek returns the user whose accepted AP-REQ the client's final wrap token b belongs
// to, without consuming it (the acceptor's hook completes that login at kfake).
func gssapiPeek(b []byte) (string, bool) {
	a := gssapiAcc.Load()
	if a == nil {
		return "", false
	}
	var wt gssapi.WrapToken
	if err := wt.Unmarshal(b, false); err != nil {
		return "", false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.pending {
		if ok, _ := wt.Verify(s.key, keyusage.GSSAPI_INITIATOR_SEAL); ok {
			return s.user, true
		}
	}
	return "", false
}
