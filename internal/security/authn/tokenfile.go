package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/internal/filewatch"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
)

// BearerChallenge is the challenge of the token method (RFC 6750).
const BearerChallenge = `Bearer realm="sluice"`

// maxTokenFileSize bounds what a reload reads, so a wrong path (a log
// file, a device) cannot exhaust memory.
const maxTokenFileSize = 16 << 20

var errInvalidToken = errors.New("invalid bearer token")

// TokenFile authenticates bearer tokens against a file of token hashes
// (see ParseTokenFile) and reloads it when it changes, so tokens are added
// and revoked without a restart.
type TokenFile struct {
	path   string
	log    *slog.Logger
	tokens atomic.Pointer[[]tokenEntry]
	watch  filewatch.Watcher
}

var _ Authenticator = (*TokenFile)(nil)

type tokenEntry struct {
	sum  [32]byte
	user User
}

// NewTokenFile loads the token file at path. Errors name path:line and
// what is wrong. A file writable by group or others is refused: whoever
// can write it can grant themselves access.
func NewTokenFile(path string, log *slog.Logger) (*TokenFile, error) {
	if log == nil {
		log = slog.Default()
	}
	t := &TokenFile{path: path, log: log}
	t.watch = filewatch.Watcher{Path: path, Read: func() ([]byte, filewatch.Stat, error) { return readTokenFile(path) }, Apply: t.apply, Failed: t.fail}
	data, st, err := readTokenFile(path)
	if err != nil {
		return nil, err
	}
	tokens, err := parseTokenFileAt(path, data)
	if err != nil {
		return nil, err
	}
	t.store(tokens)
	t.watch.Loaded(data, st)
	return t, nil
}

func readTokenFile(path string) ([]byte, filewatch.Stat, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, filewatch.Stat{}, fmt.Errorf("token file (%s): %w", TokenFileKey, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, filewatch.Stat{}, fmt.Errorf("token file (%s): %w", TokenFileKey, err)
	}
	st := filewatch.StatOf(fi)
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return nil, st, fmt.Errorf("token file %s (%s) has mode %04o: group or others can write it and so add tokens; run `chmod 600 %s`",
			path, TokenFileKey, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFileSize+1))
	if err != nil {
		return nil, st, fmt.Errorf("read token file %s: %w", path, err)
	}
	if len(data) > maxTokenFileSize {
		return nil, st, fmt.Errorf("token file %s (%s) is larger than %d MiB", path, TokenFileKey, maxTokenFileSize>>20)
	}
	return data, st, nil
}

func parseTokenFileAt(path string, data []byte) (map[[32]byte]User, error) {
	tokens, err := ParseTokenFile(data)
	if err != nil {
		var le *TokenFileError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("token file %s:%d: %s", path, le.Line, le.Reason)
		}
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return tokens, nil
}

func (t *TokenFile) store(m map[[32]byte]User) {
	entries := make([]tokenEntry, 0, len(m))
	for sum, u := range m {
		entries = append(entries, tokenEntry{sum: sum, user: u})
	}
	t.tokens.Store(&entries)
}

// Run polls the file every 2 seconds until ctx is done: a changed mtime,
// size or mode makes it read the file, and changed content makes it
// reload. A file that fails to load (unparsable, unreadable, removed,
// writable by others) keeps the previous tokens, so a half-written edit
// never locks everyone out; the reason is logged once per change.
func (t *TokenFile) Run(ctx context.Context) { t.watch.Run(ctx) }

// Reload reads the token file now (POST /admin/reload) and returns why it
// was not applied; the previous tokens stay in force then.
func (t *TokenFile) Reload() error { return t.watch.Reload() }

// apply installs a changed token file.
func (t *TokenFile) apply(data []byte) error {
	tokens, err := parseTokenFileAt(t.path, data)
	if err != nil {
		return err
	}
	t.store(tokens)
	t.log.Info("token file reloaded", "path", t.path, "tokens", len(tokens))
	return nil
}

func (t *TokenFile) fail(err error) {
	t.log.Warn("token file not reloaded; keeping the previous tokens", "path", t.path, "err", err.Error())
}

// AuthenticateRequest authenticates "Authorization: Bearer <token>". Other
// schemes are no credential for this method (they may be another
// method's); a Bearer header without a token, or with an unknown one, is
// an error that never contains the token.
func (t *TokenFile) AuthenticateRequest(r *http.Request) (User, bool, error) {
	token, present, err := bearerToken(r)
	if !present || err != nil {
		return User{}, false, err
	}
	sum := sha256.Sum256([]byte(token))
	// Every entry is compared in constant time and the scan never stops
	// early, so response time tells nothing about which hashes exist.
	// Token files hold tens to hundreds of entries: the scan costs less
	// than the TLS record the request came in.
	var found *tokenEntry
	entries := *t.tokens.Load()
	for i := range entries {
		if subtle.ConstantTimeCompare(entries[i].sum[:], sum[:]) == 1 {
			found = &entries[i]
		}
	}
	if found == nil {
		return User{}, false, errInvalidToken
	}
	u := found.user
	u.Groups = slices.Clone(u.Groups)
	return u, true, nil
}

// UserOf returns the user of the token whose SHA-256 is digest, if the
// file (as last loaded) still holds it: sessions made from a token end
// when the token is revoked.
func (t *TokenFile) UserOf(digest [32]byte) (User, bool) {
	var found *tokenEntry
	entries := *t.tokens.Load()
	for i := range entries {
		if subtle.ConstantTimeCompare(entries[i].sum[:], digest[:]) == 1 {
			found = &entries[i]
		}
	}
	if found == nil {
		return User{}, false
	}
	u := found.user
	u.Groups = slices.Clone(u.Groups)
	return u, true
}

// bearerToken extracts the token of a Bearer Authorization header;
// present is false when there is no header or another scheme.
func bearerToken(r *http.Request) (token string, present bool, err error) {
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	if auth == "" {
		return "", false, nil
	}
	scheme, rest, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	token = strings.TrimSpace(rest)
	if token == "" {
		return "", true, errors.New("empty bearer token")
	}
	if strings.ContainsAny(token, " \t") {
		return "", true, errors.New("malformed bearer token: it contains a space")
	}
	return token, true, nil
}

// Method returns "token".
func (t *TokenFile) Method() string { return MethodToken }

// Challenge returns `Bearer realm="sluice"`.
func (t *TokenFile) Challenge() string { return BearerChallenge }
