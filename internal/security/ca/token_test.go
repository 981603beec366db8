package ca

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var tokenRE = regexp.MustCompile(`^sljt1\.[a-z0-9]{6}\.[a-z0-9]{16}\.[0-9a-f]{64}$`)

// noSecret fails if err mentions secret: errors end up in logs.
func noSecret(t *testing.T, err error, secret string) {
	t.Helper()
	if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
		t.Fatalf("error leaks the token secret: %q", err)
	}
}

func TestTokenCreateParse(t *testing.T) {
	c := newTestCA(t, "c1")
	ts := NewTokens(c)
	tok, err := ts.Create(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !tokenRE.MatchString(tok.String()) {
		t.Fatalf("token %q has the wrong format", tok.Redacted())
	}
	if tok.CAHash != c.Hash() {
		t.Errorf("CAHash = %s, want %s", tok.CAHash, c.Hash())
	}
	if d := time.Until(tok.Expires); d < DefaultTokenTTL-time.Minute || d > DefaultTokenTTL {
		t.Errorf("default ttl gives expiry in %s", d)
	}
	got, err := ParseToken("  " + tok.String() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tok.ID || got.Secret != tok.Secret || got.CAHash != tok.CAHash {
		t.Errorf("ParseToken round trip: got %s, want %s", got.Redacted(), tok.Redacted())
	}
	if err := ts.Use(got.ID, got.Secret); err != nil {
		t.Fatal(err)
	}
}

func TestParseTokenErrors(t *testing.T) {
	const (
		id     = "abc123"
		secret = "s3cr3tqwertyuiop"
		hash   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "must start with"},
		{"kubeadm token", "abc123.s3cr3tqwertyuiop", "must start with"},
		{"wrong prefix", "sljt2." + id + "." + secret + "." + hash, "must start with"},
		{"three parts", "sljt1." + id + "." + secret, "want 4"},
		{"five parts", "sljt1." + id + "." + secret + "." + hash + ".x", "want 4"},
		{"short id", "sljt1.abc12." + secret + "." + hash, "id has 5 characters"},
		{"upper id", "sljt1.ABC123." + secret + "." + hash, "id may contain only"},
		{"short secret", "sljt1." + id + "." + secret[:15] + "." + hash, "secret has 15"},
		{"bad secret chars", "sljt1." + id + ".s3cr3t-wertyuiop." + hash, "secret may contain only"},
		{"secret in id slot", "sljt1." + secret + "." + id + "." + hash, "id has 16"},
		{"short hash", "sljt1." + id + "." + secret + "." + hash[:63], "CA hash has 63"},
		{"upper hash", "sljt1." + id + "." + secret + "." + strings.ToUpper(hash), "CA hash may contain only"},
		{"sha256: in hash", "sljt1." + id + "." + secret + ".sha256:" + hash[7:], "CA hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseToken(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			noSecret(t, err, secret)
			noSecret(t, err, "s3cr3t")
		})
	}
}

func TestTokensValidate(t *testing.T) {
	ts := NewTokens(newTestCA(t, "c1"))
	now := time.Now()
	ts.now = func() time.Time { return now }
	good, err := ts.Create(time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	short, err := ts.Create(time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := ts.Create(time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts.Revoke(revoked.ID)
	later := now.Add(2 * time.Minute)

	tests := []struct {
		name       string
		at         time.Time
		id, secret string
		wantErr    string
	}{
		{"valid", now, good.ID, good.Secret, ""},
		{"valid again (several TMs)", now, good.ID, good.Secret, ""},
		{"wrong secret", now, good.ID, short.Secret, "join token " + good.ID + ": wrong secret"},
		{"empty secret", now, good.ID, "", "wrong secret"},
		{"unknown", now, "zzzzzz", good.Secret, "unknown join token zzzzzz"},
		{"revoked", now, revoked.ID, revoked.Secret, "unknown join token " + revoked.ID},
		{"malformed id", now, good.Secret, good.Secret, "malformed join token id"},
		{"expired", later, short.ID, short.Secret, "join token " + short.ID + " expired at " + short.Expires.UTC().Format(time.RFC3339)},
		{"expired, wrong secret", later, short.ID, good.Secret, "wrong secret"},
		{"long token still valid", later, good.ID, good.Secret, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.now = func() time.Time { return tt.at }
			err := ts.Use(tt.id, tt.secret)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			for _, s := range []string{good.Secret, short.Secret, revoked.Secret, tt.secret} {
				noSecret(t, err, s)
			}
		})
	}
	if got := ts.Uses(good.ID); got != 3 {
		t.Errorf("Uses = %d, want 3", got)
	}
	if got := ts.Uses(short.ID); got != 0 {
		t.Errorf("Uses of expired token = %d, want 0", got)
	}
}

func TestTokensPruneLongExpired(t *testing.T) {
	ts := NewTokens(newTestCA(t, "c1"))
	now := time.Now()
	ts.now = func() time.Time { return now }
	old, err := ts.Create(time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(tokenRetention + time.Hour)
	if _, err := ts.Create(0, 0); err != nil {
		t.Fatal(err)
	}
	if err := ts.Use(old.ID, old.Secret); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("long-expired token: err = %v, want unknown", err)
	}
}

func TestTokensConcurrent(t *testing.T) {
	ts := NewTokens(newTestCA(t, "c1"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			for range 8 {
				tok, err := ts.Create(time.Hour, 0)
				if err == nil {
					err = ts.Use(tok.ID, tok.Secret)
				}
				if err != nil {
					errs <- err
				}
				ts.Revoke(tok.ID)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTokenRedaction: however a token reaches a log line or an API
// response by mistake, the secret does not.
func TestTokenRedaction(t *testing.T) {
	tok, err := NewTokens(newTestCA(t, "c1")).Create(time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("joined", "token", tok)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("joined", "token", tok)
	js, err := json.Marshal(struct{ T Token }{tok})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"Redacted": tok.Redacted(),
		"%v":       fmt.Sprintf("%v", tok),
		"%s":       fmt.Sprintf("%s", tok),
		"%+v":      fmt.Sprintf("%+v", tok),
		"%#v":      fmt.Sprintf("%#v", tok),
		"%v ptr":   fmt.Sprintf("%v", &tok),
		"Sprint":   fmt.Sprint(tok),
		"Errorf":   fmt.Errorf("join with %v failed", tok).Error(),
		"slog":     logBuf.String(),
		"json":     string(js),
	}
	for name, out := range outputs {
		if strings.Contains(out, tok.Secret) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
		if !strings.Contains(out, "sljt1."+tok.ID+".****") {
			t.Errorf("%s = %q, want the redacted form", name, out)
		}
	}
	if !strings.Contains(tok.String(), tok.Secret) {
		t.Error("String must return the full token")
	}
}

func TestTokenFile(t *testing.T) {
	tok, err := NewTokens(newTestCA(t, "c1")).Create(time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "join-token")
	if err := WriteTokenFile(path, tok); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("token file mode %04o, want 0600", m)
	}
	s, err := ReadTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s != tok.String() {
		t.Errorf("ReadTokenFile = %q, want the token", s)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadTokenFile(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), path) {
		t.Fatalf("world-readable token file: err = %v, want refusal naming the file and chmod 600", err)
	}
	noSecret(t, err, tok.Secret)
	// Rewriting a file that had become world-readable restores 0600.
	if err := WriteTokenFile(path, tok); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("rewritten token file mode %04o, want 0600", m)
	}

	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(empty); err == nil {
		t.Error("empty token file accepted")
	}
	if _, err := ReadTokenFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing token file accepted")
	}
}

// TestTokensBoundedUse: a token with max-uses N admits N joins and then
// refuses, naming the key; a released use (no certificate issued) can be
// taken again; issued certificates are recorded per token, and rotation
// keeps the records while refusing the old token.
func TestTokensBoundedUse(t *testing.T) {
	ts := NewTokens(newTestCA(t, "c1"))
	single, err := ts.Create(time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Use(single.ID, single.Secret); err != nil {
		t.Fatal(err)
	}
	err = ts.Use(single.ID, single.Secret)
	if err == nil || !strings.Contains(err.Error(), "used up") || !strings.Contains(err.Error(), "join-token.max-uses") {
		t.Fatalf("second use of a single-use token: err = %v, want used up naming the key", err)
	}
	noSecret(t, err, single.Secret)
	ts.Release(single.ID)
	if err := ts.Use(single.ID, single.Secret); err != nil {
		t.Fatalf("use after release: %v", err)
	}
	ts.Record(single.ID, Issued{TaskManager: "tm-1", Serial: "42"})

	three, err := ts.Create(time.Hour, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := ts.Use(three.ID, three.Secret); err != nil {
			t.Fatalf("use %d of 3: %v", i+1, err)
		}
	}
	if err := ts.Use(three.ID, three.Secret); err == nil {
		t.Fatal("fourth use of a 3-use token admitted")
	}

	fresh, err := ts.Create(time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.RevokeAllBut(fresh.ID); len(got) != 2 {
		t.Errorf("rotation retired %v, want the 2 older tokens", got)
	}
	if err := ts.Use(single.ID, single.Secret); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("rotated-out token: err = %v, want unknown", err)
	}
	var found bool
	for _, info := range ts.Infos() {
		if info.ID == single.ID {
			found = true
			if info.Active || len(info.Issued) != 1 || info.Issued[0].TaskManager != "tm-1" || info.Uses != 1 {
				t.Errorf("record of the rotated token: %+v", info)
			}
		}
	}
	if !found {
		t.Error("the rotated token's record is gone")
	}
}

func TestTokensConcurrentSingleUse(t *testing.T) {
	ts := NewTokens(newTestCA(t, "c1"))
	tok, err := ts.Create(time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Go(func() {
			if ts.Use(tok.ID, tok.Secret) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d concurrent joins with a single-use token succeeded, want 1", ok)
	}
}
