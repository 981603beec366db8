package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// SessionCookie is the dashboard's session cookie. The __Host- prefix makes
// browsers refuse it unless it is Secure, has Path=/ and no Domain, so no
// sibling host and no plaintext page can set or overwrite it.
const SessionCookie = "__Host-sluice-session"

// CSRFHeader carries a session's CSRF token on every state-changing request
// made with the session cookie.
const CSRFHeader = "X-CSRF-Token"

// MethodSession names the session authenticator in logs and failures.
// A session's User keeps the method it was created from (token), so
// authorization policies read the same for a token and its session.
const MethodSession = "session"

// Keys of the dashboard sessions.
const (
	SessionIdleTimeoutKey     = "security.rest.session.idle-timeout"
	SessionAbsoluteTimeoutKey = "security.rest.session.absolute-timeout"
	SessionMaxKey             = "security.rest.session.max-sessions"
)

// SessionOptions bound the sessions of a SessionStore.
type SessionOptions struct {
	// IdleTimeout ends a session not used for this long.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after login, used or not.
	AbsoluteTimeout time.Duration
	// Max is the most live sessions; a login beyond it is refused, so
	// logins cannot exhaust the JobManager's memory.
	Max int
	// Revalidate, when set, is asked on every use of a session made from a
	// bearer token whether that token is still valid, and for its current
	// user: revoking a token (removing it from the token file) ends the
	// sessions made from it at their next request.
	Revalidate func(digest [32]byte) (User, bool)
	Now        func() time.Time // default time.Now
}

// SessionInfo is what a session tells its holder: never the session id.
type SessionInfo struct {
	User      User      `json:"user"`
	CSRFToken string    `json:"csrf-token"`
	Listener  string    `json:"listener"`
	Created   time.Time `json:"created"`
	// Expires is when the session ends at the latest (absolute timeout);
	// it ends earlier after IdleTimeout without use.
	Expires     time.Time `json:"expires"`
	IdleTimeout int64     `json:"idle-timeout-ms"`
}

type session struct {
	info     SessionInfo
	lastUsed time.Time
	digest   [32]byte // of the bearer token it was made from
	hasToken bool
}

// SessionStore keeps the dashboard's sessions in the JobManager's memory.
// Session ids are 256 random bits; the store keeps only their SHA-256, so
// neither a heap dump nor a log line holds a usable id. Sessions do not
// survive a restart: users log in again.
type SessionStore struct {
	o  SessionOptions
	mu sync.Mutex
	m  map[[32]byte]*session
}

// Errors of Create and Lookup; their messages are shown to the client.
var (
	ErrSessionUnknown = errors.New("session expired or logged out: log in again")
	ErrSessionsFull   = errors.New("too many dashboard sessions: try again later, or raise " + SessionMaxKey)
)

// NewSessionStore returns an empty store.
func NewSessionStore(o SessionOptions) *SessionStore {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &SessionStore{o: o, m: map[[32]byte]*session{}}
}

func idDigest(id string) [32]byte { return sha256.Sum256([]byte(id)) }

func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Create starts a session for u on listener. tokenDigest, when not nil, is
// the SHA-256 of the bearer token u logged in with (see Revalidate). It
// returns the session id, which only the cookie ever holds.
func (s *SessionStore) Create(u User, listener string, tokenDigest *[32]byte) (string, SessionInfo, error) {
	id, err := randomString()
	if err != nil {
		return "", SessionInfo{}, err
	}
	csrf, err := randomString()
	if err != nil {
		return "", SessionInfo{}, err
	}
	now := s.o.Now()
	u.Groups = slices.Clone(u.Groups)
	ses := &session{lastUsed: now, info: SessionInfo{
		User: u, CSRFToken: csrf, Listener: listener, Created: now,
		Expires: now.Add(s.o.AbsoluteTimeout), IdleTimeout: s.o.IdleTimeout.Milliseconds(),
	}}
	if tokenDigest != nil {
		ses.digest, ses.hasToken = *tokenDigest, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.o.Max {
		s.sweepLocked(now)
		if len(s.m) >= s.o.Max {
			return "", SessionInfo{}, ErrSessionsFull
		}
	}
	s.m[idDigest(id)] = ses
	return id, ses.info, nil
}

func (s *SessionStore) expired(ses *session, now time.Time) bool {
	return !now.Before(ses.info.Expires) || now.Sub(ses.lastUsed) >= s.o.IdleTimeout
}

// Lookup returns the session id names on listener and marks it used. A
// session of another listener is ErrSessionUnknown too: cookies are not
// bound to ports, so a browser sends one listener's cookie to the others
// on the same host.
func (s *SessionStore) Lookup(id, listener string) (SessionInfo, error) {
	now := s.o.Now()
	key := idDigest(id)
	s.mu.Lock()
	ses, ok := s.m[key]
	if ok && s.expired(ses, now) {
		delete(s.m, key)
		ok = false
	}
	if !ok || ses.info.Listener != listener {
		s.mu.Unlock()
		return SessionInfo{}, ErrSessionUnknown
	}
	ses.lastUsed = now
	info, digest, hasToken := ses.info, ses.digest, ses.hasToken
	s.mu.Unlock()
	if hasToken && s.o.Revalidate != nil {
		// Asked outside the lock: the token file is its own.
		u, valid := s.o.Revalidate(digest)
		if !valid {
			s.Delete(id)
			return SessionInfo{}, errors.New("the token this session was made from is no longer valid: log in again")
		}
		info.User = u
	}
	return info, nil
}

// Delete ends the session id names, if any (logout).
func (s *SessionStore) Delete(id string) {
	s.mu.Lock()
	delete(s.m, idDigest(id))
	s.mu.Unlock()
}

// Len returns the number of sessions held, expired ones not yet swept
// included.
func (s *SessionStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *SessionStore) sweepLocked(now time.Time) {
	for k, ses := range s.m {
		if s.expired(ses, now) {
			delete(s.m, k)
		}
	}
}

// Run drops expired sessions every minute until ctx is done.
func (s *SessionStore) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.sweepLocked(s.o.Now())
			s.mu.Unlock()
		}
	}
}

// Authenticator returns the session authenticator of one listener: a
// request with the session cookie is its session's user; without the
// cookie it has no credential for this method; with an unknown, expired
// or revoked session it is a 401 (the dashboard then shows its login).
func (s *SessionStore) Authenticator(listener string) Authenticator {
	return AuthenticatorFunc{Name: MethodSession, Func: func(r *http.Request) (User, bool, error) {
		c, err := r.Cookie(SessionCookie)
		if err != nil || c.Value == "" {
			return User{}, false, nil
		}
		info, err := s.Lookup(c.Value, listener)
		if err != nil {
			return User{}, false, err
		}
		return info.User, true, nil
	}}
}

// SessionCookieOf returns the session id a request carries, "" if none.
func SessionCookieOf(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

type bearerDigestKey struct{}

// BearerDigest returns the SHA-256 of the bearer token a request was
// authenticated with (Filter removes the header itself), for a login that
// binds its session to the token.
func BearerDigest(ctx context.Context) (*[32]byte, bool) {
	d, ok := ctx.Value(bearerDigestKey{}).(*[32]byte)
	return d, ok
}
