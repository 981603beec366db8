package authn

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func hashLine(token, rest string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:]) + rest
}

func hashOf(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func TestParseTokenFile(t *testing.T) {
	h := hashLine("tok-a", "")
	hexA := strings.TrimPrefix(h, "sha256:")
	tests := []struct {
		name    string
		data    string
		want    map[[32]byte]User
		wantErr string // exact
	}{
		{"empty", "", map[[32]byte]User{}, ""},
		{"comments and blanks", "# tokens\n\n   \n  # indented, comment\n", map[[32]byte]User{}, ""},
		{"user only", hashLine("tok-a", ",alice\n"), map[[32]byte]User{hashOf("tok-a"): {Name: "alice", Method: "token"}}, ""},
		{"quoted groups, spaces, no final newline",
			hashLine("tok-a", `, alice , "dev, ops,,"`) + "\r\n" + hashLine("tok-b", `,bob,admins`),
			map[[32]byte]User{
				hashOf("tok-a"): {Name: "alice", Groups: []string{"dev", "ops"}, Method: "token"},
				hashOf("tok-b"): {Name: "bob", Groups: []string{"admins"}, Method: "token"},
			}, ""},
		{"upper-case hex", "sha256:" + strings.ToUpper(hexA) + ",alice", map[[32]byte]User{hashOf("tok-a"): {Name: "alice", Method: "token"}}, ""},
		{"bad hex", "# c\nsha256:zz" + hexA[2:] + ",alice", nil, `line 2: hash sha256:zz` + hexA[2:8] + `… is not hexadecimal`},
		{"short hex", "sha256:" + hexA[:60] + ",alice", nil, `line 1: hash sha256:` + hexA[:8] + `… has 60 hex digits, want 64`},
		{"wrong prefix", "md5:" + hexA + ",alice", nil, `line 1: hash "md5:` + hexA[:4] + `…" must start with "sha256:"`},
		{"raw token pasted", "sluice_secretsecretsecret,alice", nil,
			"line 1: holds a token instead of its hash: the file must hold only sha256:<hex> hashes; revoke that token and create a new one with `sluice token create`"},
		{"missing user", "\n" + h + "\n", nil, `line 2: hash sha256:` + hexA[:8] + `… has no user (write hash,user[,"groups"])`},
		{"empty user", h + ", ,g", nil, `line 1: hash sha256:` + hexA[:8] + `… has no user (write hash,user[,"groups"])`},
		{"unquoted groups", h + ",alice,dev,ops", nil, `line 1: 4 fields, want hash,user[,"groups"] (quote the groups field: "group1,group2")`},
		{"duplicate", h + ",alice\n" + h + ",bob", nil, `line 2: hash sha256:` + hexA[:8] + `… is also on line 1`},
		{"bare quote", h + `,al"ice`, nil, `line 1: bare " in non-quoted-field (quote the groups field: "group1,group2")`},
		{"control character in group", h + ",alice,\"a\x01\"", nil, `line 1: group "a\x01" contains a comma, quote or control character`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTokenFile([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v\nwant  %s", err, tt.wantErr)
				}
				var le *TokenFileError
				if !errors.As(err, &le) {
					t.Errorf("err is %T, want *TokenFileError", err)
				}
				if strings.Contains(err.Error(), hexA[:9]) {
					t.Errorf("error echoes more than 8 hex digits of the hash: %v", err)
				}
				if strings.Contains(err.Error(), "secretsecret") {
					t.Errorf("error echoes the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d tokens, want %d", len(got), len(tt.want))
			}
			for k, w := range tt.want {
				g := got[k]
				if g.Name != w.Name || g.Method != w.Method || !slices.Equal(g.Groups, w.Groups) {
					t.Errorf("got %+v, want %+v", g, w)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	// Write then rename, as editors and config management do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func authToken(a Authenticator, token string) (User, bool, error) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return a.AuthenticateRequest(r)
}

func TestNewTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "# x\nsha256:abc,alice\n")
	if _, err := NewTokenFile(bad, nil); err == nil || err.Error() != "token file "+bad+":2: hash sha256:abc… has 3 hex digits, want 64" {
		t.Errorf("err = %v", err)
	}
	open := filepath.Join(dir, "open")
	writeFile(t, open, "")
	if err := os.Chmod(open, 0o664); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTokenFile(open, nil); err == nil || !strings.Contains(err.Error(), "group or others can write it") || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("err = %v", err)
	}
	if _, err := NewTokenFile(filepath.Join(dir, "missing"), nil); err == nil || !strings.Contains(err.Error(), "security.rest.authentication.token.file") {
		t.Errorf("err = %v", err)
	}
}

func TestTokenFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, hashLine("old-token", ",alice,\"dev\"\n"))
	log, logs := newLog()
	tf, err := NewTokenFile(path, log)
	if err != nil {
		t.Fatal(err)
	}
	tf.watch.Interval = 10 * time.Millisecond
	ctx := t.Context()
	go tf.Run(ctx)

	if u, ok, err := authToken(tf, "old-token"); !ok || err != nil || u.Name != "alice" || !slices.Equal(u.Groups, []string{"dev"}) || u.Method != "token" {
		t.Fatalf("old token: %+v %v %v", u, ok, err)
	}

	// Replace: the new token works, the removed one is refused.
	writeFile(t, path, hashLine("new-token", ",bob\n"))
	waitFor(t, func() bool { _, ok, _ := authToken(tf, "new-token"); return ok })
	if _, ok, err := authToken(tf, "old-token"); ok || err == nil || err.Error() != "invalid bearer token" {
		t.Fatalf("removed token: ok=%v err=%v", ok, err)
	}

	// A broken file keeps the previous tokens and says why, once.
	writeFile(t, path, hashLine("newer-token", ",carol\n")+"sha256:nothex,dave\n")
	waitFor(t, func() bool { return strings.Contains(logs.String(), "keeping the previous tokens") })
	time.Sleep(50 * time.Millisecond) // several more polls
	if n := strings.Count(logs.String(), "keeping the previous tokens"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), path+":2: hash sha256:nothex") {
		t.Errorf("log does not name path:line:\n%s", logs)
	}
	if _, ok, _ := authToken(tf, "new-token"); !ok {
		t.Error("previous token lost after a broken reload")
	}
	if _, ok, _ := authToken(tf, "newer-token"); ok {
		t.Error("token from a broken file accepted")
	}

	// Removing the file keeps the tokens too (an editor's rename window).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Count(logs.String(), "keeping the previous tokens") == 2 })
	if _, ok, _ := authToken(tf, "new-token"); !ok {
		t.Error("token lost after the file was removed")
	}
	// Fixed: reloads.
	writeFile(t, path, hashLine("fixed-token", ",erin\n"))
	waitFor(t, func() bool { _, ok, _ := authToken(tf, "fixed-token"); return ok })
	for _, s := range []string{"old-token", "new-token", "newer-token", "fixed-token"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log contains token %q", s)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBearerHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, hashLine("good", ",alice\n"))
	tf, err := NewTokenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		header  string
		ok      bool
		wantErr string
	}{
		{"", false, ""},
		{"Basic YWxpY2U6cHc=", false, ""},
		{"Negotiate YIIB", false, ""},
		{"Bearer good", true, ""},
		{"bearer   good ", true, ""},
		{"Bearer", false, "empty bearer token"},
		{"Bearer   ", false, "empty bearer token"},
		{"Bearer good extra", false, "malformed bearer token: it contains a space"},
		{"Bearer wrong-token", false, "invalid bearer token"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		u, ok, err := tf.AuthenticateRequest(r)
		if ok != tt.ok || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
			t.Errorf("%q: %+v ok=%v err=%v, want ok=%v err=%q", tt.header, u, ok, err, tt.ok, tt.wantErr)
		}
	}
}

func TestAppendToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	tok, err := AppendToken(path, "alice", []string{"dev", "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "sluice_") || len(tok) != len("sluice_")+43 {
		t.Errorf("token %q: want sluice_ and 43 base64url characters", tok)
	}
	// A hand-edited file whose last line has no newline.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("# edited by hand")
	f.Close()
	tok2, err := AppendToken(path, "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), tok) || strings.Contains(string(data), tok2) || strings.Contains(string(data), "sluice_") {
		t.Errorf("file holds a token:\n%s", data)
	}
	tf, err := NewTokenFile(path, nil)
	if err != nil {
		t.Fatalf("file does not parse: %v\n%s", err, data)
	}
	if u, ok, err := authToken(tf, tok); !ok || err != nil || u.Name != "alice" || !slices.Equal(u.Groups, []string{"dev", "ops"}) {
		t.Errorf("alice: %+v %v %v", u, ok, err)
	}
	if u, ok, err := authToken(tf, tok2); !ok || err != nil || u.Name != "bob" || len(u.Groups) != 0 {
		t.Errorf("bob: %+v %v %v", u, ok, err)
	}
	if tok == tok2 {
		t.Error("two tokens are equal")
	}

	for _, bad := range []struct {
		user   string
		groups []string
	}{{"", nil}, {"a,b", nil}, {`a"b`, nil}, {"a\nb", nil}, {"alice", []string{"ok", "x,y"}}, {"alice", []string{""}}} {
		if _, err := AppendToken(path, bad.user, bad.groups); err == nil {
			t.Errorf("AppendToken(%q, %q) succeeded", bad.user, bad.groups)
		}
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := AppendToken(path, "carol", nil); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("group-readable file: err = %v", err)
	}
}
