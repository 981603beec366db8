package authn

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startFilter serves echoUser behind Filter over real HTTP. The client
// address comes from the X-Test-Client header so one test can play
// several clients.
func startFilter(t *testing.T, chain Union, lim *FailureLimiter) (*httptest.Server, *logBuffer) {
	t.Helper()
	log, logs := newLog()
	h := Filter(FilterOptions{Listener: "external", Chain: chain, Limiter: lim, Log: log,
		RemoteAddr: func(r *http.Request) string {
			if a := r.Header.Get("X-Test-Client"); a != "" {
				return a
			}
			return remoteHost(r)
		}})(echoUser)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, logs
}

func get(t *testing.T, url, auth, client string) response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if client != "" {
		req.Header.Set("X-Test-Client", client)
	}
	return do(t, http.DefaultClient, req)
}

func newTokens(t *testing.T, lines ...string) *TokenFile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, strings.Join(lines, "\n"))
	tf, err := NewTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tf
}

func TestFilter(t *testing.T) {
	tf := newTokens(t, hashLine("sluice_good", `,alice,"dev,ops"`))
	x := NewX509(PrincipalMapper{})
	tests := []struct {
		name          string
		chain         Union
		auth          string
		wantStatus    int
		wantUser      string
		wantChallenge []string
		wantError     string
	}{
		{"no credential", Union{tf, x}, "", 401, "", []string{`Bearer realm="sluice"`, `ClientCertificate realm="sluice"`},
			"authentication required: this listener accepts: token, x509"},
		{"valid token", Union{tf, x}, "Bearer sluice_good", 200, "alice", nil, ""},
		{"invalid token", Union{tf, x}, "Bearer sluice_bad", 401, "", []string{`Bearer realm="sluice"`, `ClientCertificate realm="sluice"`},
			"authentication failed: invalid bearer token"},
		{"invalid token, anonymous allowed", Union{tf, NewAnonymous()}, "Bearer sluice_bad", 401, "", []string{`Bearer realm="sluice"`},
			"authentication failed: invalid bearer token"},
		{"empty bearer, anonymous allowed", Union{tf, NewAnonymous()}, "Bearer ", 401, "", []string{`Bearer realm="sluice"`},
			"authentication failed: empty bearer token"},
		{"no credential, anonymous allowed", Union{tf, NewAnonymous()}, "", 200, "system:anonymous", nil, ""},
		{"other scheme is no credential", Union{tf, NewAnonymous()}, "Basic YTpi", 200, "system:anonymous", nil, ""},
		{"other scheme without anonymous", Union{tf}, "Basic YTpi", 401, "", []string{`Bearer realm="sluice"`},
			"authentication required: this listener accepts: token"},
		{"anonymous only", Union{NewAnonymous()}, "", 200, "system:anonymous", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, logs := startFilter(t, tt.chain, nil)
			r := get(t, srv.URL, tt.auth, "")
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d (errors %q)", r.status, tt.wantStatus, r.errors)
			}
			if r.status == 200 {
				if r.user.Name != tt.wantUser {
					t.Errorf("user %+v, want %q", r.user, tt.wantUser)
				}
				return
			}
			if !slices.Equal(r.challenge, tt.wantChallenge) {
				t.Errorf("WWW-Authenticate %q, want %q", r.challenge, tt.wantChallenge)
			}
			if !slices.Equal(r.errors, []string{tt.wantError}) {
				t.Errorf("errors %q, want %q", r.errors, tt.wantError)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if strings.Contains(logs.String(), "sluice_") || strings.Contains(logs.String(), "YTpi") {
				t.Errorf("log holds a credential:\n%s", logs)
			}
		})
	}
}

func TestFilterLogsFailuresWithoutCredential(t *testing.T) {
	tf := newTokens(t, hashLine("sluice_good", ",alice"))
	srv, logs := startFilter(t, Union{tf, NewAnonymous()}, nil)
	get(t, srv.URL, "Bearer sluice_SECRET-GUESS", "")
	get(t, srv.URL, "Bearer sluice_good", "")
	out := logs.String()
	for _, want := range []string{`"msg":"authentication failed"`, `"listener":"external"`, `"peer":"127.0.0.1"`, `"method":"token"`, `"reason":"invalid bearer token"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{"SECRET-GUESS", "sluice_good", "Bearer", "Authorization"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

func TestFilterLimiter(t *testing.T) {
	tf := newTokens(t, hashLine("sluice_good", ",alice"))
	lim := NewFailureLimiter(LimiterOptions{Max: 3, Window: time.Minute})
	srv, logs := startFilter(t, Union{tf, NewAnonymous()}, lim)

	// Missing credentials do not count.
	for range 5 {
		if r := get(t, srv.URL, "", "10.0.0.1"); r.status != 200 {
			t.Fatalf("anonymous: status %d", r.status)
		}
	}
	for i := range 3 {
		if r := get(t, srv.URL, "Bearer sluice_guess"+strconv.Itoa(i), "10.0.0.1"); r.status != 401 {
			t.Fatalf("failure %d: status %d, want 401", i+1, r.status)
		}
	}
	// Further failures are refused with 429.
	r := get(t, srv.URL, "Bearer sluice_guess", "10.0.0.1")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("failure after the limit: status %d, want 429", r.status)
	}
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 59 || secs > 60 {
		t.Errorf("Retry-After %q, want about 60", r.header.Get("Retry-After"))
	}
	if len(r.errors) != 1 || !strings.HasPrefix(r.errors[0], "too many failed authentications from 10.0.0.1; retry in "+strconv.Itoa(secs)+"s") {
		t.Errorf("errors %q", r.errors)
	}
	// A valid credential, and anonymous access, are never refused.
	if r := get(t, srv.URL, "Bearer sluice_good", "10.0.0.1"); r.status != 200 || r.user.Name != "alice" {
		t.Errorf("valid token from a limited address: status %d user %+v", r.status, r.user)
	}
	if r := get(t, srv.URL, "", "10.0.0.1"); r.status != 200 {
		t.Errorf("anonymous from a limited address: status %d", r.status)
	}
	// Other addresses are unaffected.
	if r := get(t, srv.URL, "Bearer sluice_guess", "10.0.0.2"); r.status != 401 {
		t.Errorf("other address: status %d", r.status)
	}
	if !strings.Contains(logs.String(), "client address prefix limited") {
		t.Errorf("limit not logged:\n%s", logs)
	}
	if strings.Contains(logs.String(), "sluice_") {
		t.Errorf("log holds a token:\n%s", logs)
	}
}

// The default client address is the host of RemoteAddr, without the port
// that changes with every connection.
func TestFilterDefaultRemoteAddr(t *testing.T) {
	tf := newTokens(t, hashLine("sluice_good", ",alice"))
	h := Filter(FilterOptions{Chain: Union{tf}, Limiter: NewFailureLimiter(LimiterOptions{Max: 1, Window: time.Minute})})(echoUser)
	for i, want := range []int{401, 429} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.7:" + strconv.Itoa(40000+i)
		r.Header.Set("Authorization", "Bearer sluice_bad")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Fatalf("request %d: status %d, want %d", i, w.Code, want)
		}
		if want == 429 && !strings.Contains(w.Body.String(), "from 192.0.2.7;") {
			t.Errorf("body %s", w.Body)
		}
	}
}
