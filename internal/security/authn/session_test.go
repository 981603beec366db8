package authn

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestStore(clock *fakeClock, revalidate func([32]byte) (User, bool)) *SessionStore {
	return NewSessionStore(SessionOptions{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, Max: 3, Now: clock.Now, Revalidate: revalidate})
}

func requestWithSession(id string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if id != "" {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
	}
	return r
}

// TestSessionTimeouts: a session ends after the idle timeout without use,
// and after the absolute timeout however much it is used.
func TestSessionTimeouts(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := newTestStore(clock, nil)
	id, info, err := s.Create(User{Name: "alice", Method: MethodToken}, "web", nil)
	if err != nil || info.CSRFToken == "" || info.CSRFToken == id {
		t.Fatalf("create: %v %+v", err, info)
	}
	clock.Add(9 * time.Minute)
	if _, err := s.Lookup(id, "web"); err != nil {
		t.Fatalf("used within the idle timeout: %v", err)
	}
	clock.Add(11 * time.Minute)
	if _, err := s.Lookup(id, "web"); !errors.Is(err, ErrSessionUnknown) {
		t.Fatalf("after 11 idle minutes: %v", err)
	}
	id, _, _ = s.Create(User{Name: "alice"}, "web", nil)
	for i := 0; i < 7; i++ { // used every 9 minutes: never idle
		clock.Add(9 * time.Minute)
		_, err := s.Lookup(id, "web")
		if i < 6 && err != nil {
			t.Fatalf("after %d minutes of use: %v", 9*(i+1), err)
		}
		if i == 6 && err == nil {
			t.Fatal("a session outlived the absolute timeout")
		}
	}
}

// TestSessionBinding: a session is valid only on the listener it was made
// on, ids are never reused, logout ends it, and the store holds no id.
func TestSessionBinding(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := newTestStore(clock, nil)
	id, _, _ := s.Create(User{Name: "alice"}, "web", nil)
	id2, _, _ := s.Create(User{Name: "alice"}, "web", nil)
	if id == id2 || len(id) < 40 {
		t.Fatalf("ids %q %q", id, id2)
	}
	if _, err := s.Lookup(id, "local"); err == nil {
		t.Error("a session of listener web accepted on listener local")
	}
	for k := range s.m {
		if string(k[:]) == id {
			t.Error("the store keys sessions by their id, not its hash")
		}
	}
	a := s.Authenticator("web")
	if u, ok, err := a.AuthenticateRequest(requestWithSession(id)); !ok || err != nil || u.Name != "alice" {
		t.Fatalf("authenticate: %v %v %v", u, ok, err)
	}
	if _, ok, err := a.AuthenticateRequest(requestWithSession("")); ok || err != nil {
		t.Fatalf("no cookie: %v %v", ok, err)
	}
	if _, ok, err := a.AuthenticateRequest(requestWithSession("forged")); ok || err == nil {
		t.Fatalf("unknown session: %v %v", ok, err)
	}
	s.Delete(id)
	if _, ok, err := a.AuthenticateRequest(requestWithSession(id)); ok || err == nil {
		t.Fatalf("after logout: %v %v", ok, err)
	}
}

// TestSessionMax: logins beyond security.rest.session.max-sessions are
// refused until sessions expire.
func TestSessionMax(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := newTestStore(clock, nil)
	for i := 0; i < 3; i++ {
		if _, _, err := s.Create(User{Name: "u"}, "web", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Create(User{Name: "u"}, "web", nil); !errors.Is(err, ErrSessionsFull) {
		t.Fatalf("4th session: %v", err)
	}
	clock.Add(time.Hour)
	if _, _, err := s.Create(User{Name: "u"}, "web", nil); err != nil {
		t.Fatalf("after the others expired: %v", err)
	}
	if s.Len() != 1 {
		t.Errorf("expired sessions kept: %d", s.Len())
	}
}

// TestSessionRevokedToken: a session made from a bearer token ends when
// the token is revoked, and follows its user's groups while it is valid.
func TestSessionRevokedToken(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	sum := sha256.Sum256([]byte("sluice_tok"))
	valid := true
	s := newTestStore(clock, func(d [32]byte) (User, bool) {
		return User{Name: "alice", Groups: []string{"new"}, Method: MethodToken}, valid && d == sum
	})
	id, _, _ := s.Create(User{Name: "alice", Groups: []string{"old"}, Method: MethodToken}, "web", &sum)
	info, err := s.Lookup(id, "web")
	if err != nil || len(info.User.Groups) != 1 || info.User.Groups[0] != "new" {
		t.Fatalf("lookup: %v %+v", err, info)
	}
	valid = false
	if _, err := s.Lookup(id, "web"); err == nil {
		t.Fatal("a session outlived its revoked token")
	}
	valid = true
	if _, err := s.Lookup(id, "web"); err == nil {
		t.Fatal("a session ended by a revocation came back")
	}
}
