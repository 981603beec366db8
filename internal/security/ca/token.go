package ca

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Join token format. The token is one string a user copies to
// TaskManagers: "sljt1.<id>.<secret>.<ca hash hex>". Like kubeadm's
// bootstrap tokens, the id names the token (safe to log), the secret
// authenticates the joiner to the JobManager, and the CA hash lets the
// joiner authenticate the JobManager before it trusts anything it says.
const (
	tokenPrefix    = "sljt1"
	tokenIDLen     = 6
	tokenSecretLen = 16
	tokenHashLen   = 64
	tokenAlphabet  = "abcdefghijklmnopqrstuvwxyz0123456789"

	// DefaultTokenTTL is the lifetime of a token created with ttl 0.
	DefaultTokenTTL = 24 * time.Hour
	// tokenRetention keeps expired tokens around so that a late joiner is
	// told "expired" rather than "unknown", which sends it to the wrong fix.
	tokenRetention = 24 * time.Hour
)

// Token is a join token. Its only usage is joining a cluster. Its String
// method returns the full secret token and must never be logged; fmt
// verbs, slog and JSON all print the redacted form.
type Token struct {
	ID, Secret string
	CAHash     string // "sha256:<hex>"
	// Expires is known to the JobManager's registry; a parsed token has
	// the zero time, the string does not carry it.
	Expires time.Time
}

// ParseToken parses a join token string. Its errors never contain the
// input, which may be a secret with a typo.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ".")
	if parts[0] != tokenPrefix {
		return Token{}, fmt.Errorf("invalid join token: must start with %q (format %s.<id>.<secret>.<ca-hash>)", tokenPrefix+".", tokenPrefix)
	}
	if len(parts) != 4 {
		return Token{}, fmt.Errorf("invalid join token: has %d dot-separated parts, want 4 (%s.<id>.<secret>.<ca-hash>)", len(parts), tokenPrefix)
	}
	if err := checkTokenPart("id", parts[1], tokenIDLen, tokenAlphabet); err != nil {
		return Token{}, err
	}
	if err := checkTokenPart("secret", parts[2], tokenSecretLen, tokenAlphabet); err != nil {
		return Token{}, err
	}
	if err := checkTokenPart("CA hash", parts[3], tokenHashLen, "0123456789abcdef"); err != nil {
		return Token{}, err
	}
	return Token{ID: parts[1], Secret: parts[2], CAHash: "sha256:" + parts[3]}, nil
}

// checkTokenPart never echoes the part: a malformed id may well be a
// secret pasted in the wrong place.
func checkTokenPart(name, v string, n int, alphabet string) error {
	if len(v) != n {
		return fmt.Errorf("invalid join token: %s has %d characters, want %d", name, len(v), n)
	}
	for i := 0; i < len(v); i++ {
		if strings.IndexByte(alphabet, v[i]) < 0 {
			return fmt.Errorf("invalid join token: %s may contain only [%s]", name, alphabetDesc(alphabet))
		}
	}
	return nil
}

func alphabetDesc(a string) string {
	if a == tokenAlphabet {
		return "a-z0-9"
	}
	return "0-9a-f"
}

// String returns the full token, secret included. Callers must never log
// it; use Redacted.
func (t Token) String() string {
	return tokenPrefix + "." + t.ID + "." + t.Secret + "." + strings.TrimPrefix(t.CAHash, "sha256:")
}

// Redacted returns "sljt1.<id>.****", safe for logs.
func (t Token) Redacted() string { return tokenPrefix + "." + t.ID + ".****" }

// Format makes every fmt verb (%v, %s, %+v, %#v...) print the redacted
// form, so a token passed to a logger or an error by mistake does not leak.
// The full token is only available by calling String explicitly.
func (t Token) Format(f fmt.State, _ rune) { io.WriteString(f, t.Redacted()) }

// LogValue keeps slog from printing the secret.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.Redacted()) }

// MarshalJSON marshals the redacted form, like config Secrets do.
func (t Token) MarshalJSON() ([]byte, error) { return json.Marshal(t.Redacted()) }

var (
	_ fmt.Formatter  = Token{}
	_ slog.LogValuer = Token{}
	_ json.Marshaler = Token{}
)

// Tokens is the JobManager's registry of join tokens. It is safe for
// concurrent use.
type Tokens struct {
	caHash string
	now    func() time.Time // tests

	mu     sync.Mutex
	tokens map[string]*tokenEntry
}

type tokenEntry struct {
	// Only a digest of the secret is kept, so a heap dump or a debug print
	// of the registry does not reveal usable tokens.
	secretSum [sha256.Size]byte
	expires   time.Time
	uses      int
}

// NewTokens returns an empty registry whose tokens pin ca.
func NewTokens(ca *CA) *Tokens {
	return &Tokens{caHash: ca.Hash(), now: time.Now, tokens: map[string]*tokenEntry{}}
}

// Create makes a new token valid for ttl (DefaultTokenTTL when 0).
func (ts *Tokens) Create(ttl time.Duration) (Token, error) {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < 0 {
		return Token{}, fmt.Errorf("create join token: negative ttl %s", ttl)
	}
	secret, err := randomString(tokenSecretLen)
	if err != nil {
		return Token{}, err
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	for id, e := range ts.tokens {
		if now.Sub(e.expires) > tokenRetention {
			delete(ts.tokens, id)
		}
	}
	var id string
	for {
		if id, err = randomString(tokenIDLen); err != nil {
			return Token{}, err
		}
		if _, taken := ts.tokens[id]; !taken {
			break
		}
	}
	t := Token{ID: id, Secret: secret, CAHash: ts.caHash, Expires: now.Add(ttl)}
	ts.tokens[id] = &tokenEntry{secretSum: sha256.Sum256([]byte(secret)), expires: t.Expires}
	return t, nil
}

// Validate checks a presented token id and secret. The secret comparison
// is constant-time. A token may be used by several TaskManagers until it
// expires (as in kubeadm); each successful use is counted (see Uses).
// Errors name the token id, never the secret.
func (ts *Tokens) Validate(id, secret string) error {
	if checkTokenPart("id", id, tokenIDLen, tokenAlphabet) != nil {
		// Do not echo a malformed id: it is attacker-controlled input and
		// may be a misplaced secret.
		return errors.New("malformed join token id")
	}
	sum := sha256.Sum256([]byte(secret))
	ts.mu.Lock()
	defer ts.mu.Unlock()
	e, ok := ts.tokens[id]
	if !ok {
		return fmt.Errorf("unknown join token %s", id)
	}
	// The secret is checked before the expiry so that only a holder of the
	// secret learns when the token expired.
	if subtle.ConstantTimeCompare(sum[:], e.secretSum[:]) != 1 {
		return fmt.Errorf("join token %s: wrong secret", id)
	}
	if !ts.now().Before(e.expires) {
		return fmt.Errorf("join token %s expired at %s; create a new join token on the JobManager", id, e.expires.UTC().Format(time.RFC3339))
	}
	e.uses++
	return nil
}

// Uses reports how many times token id was validated successfully.
func (ts *Tokens) Uses(id string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if e, ok := ts.tokens[id]; ok {
		return e.uses
	}
	return 0
}

// Revoke forgets token id; later joins with it fail as unknown.
func (ts *Tokens) Revoke(id string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.tokens, id)
}

// randomString draws n characters uniformly from tokenAlphabet.
func randomString(n int) (string, error) {
	const max = 256 - 256%len(tokenAlphabet) // reject to avoid modulo bias
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("generate join token: %w", err)
		}
		for _, b := range buf {
			if int(b) < max && len(out) < n {
				out = append(out, tokenAlphabet[int(b)%len(tokenAlphabet)])
			}
		}
	}
	return string(out), nil
}

// WriteTokenFile writes the full token to path with mode 0600, for the user
// to hand to TaskManagers (security.cluster.join-token-file).
func WriteTokenFile(path string, t Token) error {
	if err := writeFileAtomic(path, []byte(t.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("write join token file: %w", err)
	}
	return nil
}

// ReadTokenFile reads a token file and returns its trimmed content. Like a
// key, a token file that group or others can read is refused.
func ReadTokenFile(path string) (string, error) {
	if err := checkPrivateFile(path); err != nil {
		return "", fmt.Errorf("join token file (security.cluster.join-token-file): %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read join token file: %w", err)
	}
	defer f.Close()
	// A token is ~95 bytes; a bound keeps a wrong path (a log, a device)
	// from being read whole.
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("read join token file %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("join token file %s is empty", path)
	}
	return s, nil
}
