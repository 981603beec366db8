package ca

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
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
//
// A token is bounded-use: each successful join consumes one use and issues
// one certificate for one TaskManager id, and the registry records which
// token issued which id (and certificate serial), so that a leaked token can
// be traced to what it let in. With a bound of 1 (the default of
// security.ssl.internal.auto.join-token.max-uses) a token is single-use.
type Tokens struct {
	caHash string
	now    func() time.Time // tests

	mu     sync.Mutex
	tokens map[string]*tokenEntry
	// history keeps the records of tokens that were rotated out or expired
	// (no secret), so the issued ids stay traceable.
	history []TokenInfo
}

type tokenEntry struct {
	// Only a digest of the secret is kept, so a heap dump or a debug print
	// of the registry does not reveal usable tokens.
	secretSum [sha256.Size]byte
	created   time.Time
	expires   time.Time
	maxUses   int // <= 0: unbounded
	uses      int
	issued    []Issued
}

// Issued records one certificate a join token issued.
type Issued struct {
	TaskManager string    `json:"taskmanager"`
	Serial      string    `json:"serial"`
	At          time.Time `json:"at"`
	NotAfter    time.Time `json:"not-after"`
}

// TokenInfo describes a token without its secret: what may be shown to an
// administrator or persisted.
type TokenInfo struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	MaxUses int       `json:"max-uses"` // 0: unbounded
	Uses    int       `json:"uses"`
	// Active is false once the token was rotated out or revoked.
	Active bool     `json:"active"`
	Issued []Issued `json:"issued"`
}

// NewTokens returns an empty registry whose tokens pin ca.
func NewTokens(ca *CA) *Tokens {
	return &Tokens{caHash: ca.Hash(), now: time.Now, tokens: map[string]*tokenEntry{}}
}

// Create makes a new token valid for ttl (DefaultTokenTTL when 0) and
// maxUses joins (unbounded when <= 0).
func (ts *Tokens) Create(ttl time.Duration, maxUses int) (Token, error) {
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
			ts.retireLocked(id, e)
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
	if maxUses < 0 {
		maxUses = 0
	}
	t := Token{ID: id, Secret: secret, CAHash: ts.caHash, Expires: now.Add(ttl)}
	ts.tokens[id] = &tokenEntry{secretSum: sha256.Sum256([]byte(secret)), created: now, expires: t.Expires, maxUses: maxUses}
	return t, nil
}

// Use checks a presented token id and secret and consumes one use of the
// token. The secret comparison is constant-time. A token that has been
// used maxUses times is refused. Errors name the token id, never the
// secret. A caller that then fails to issue a certificate gives the use
// back with Release.
func (ts *Tokens) Use(id, secret string) error {
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
		return fmt.Errorf("unknown join token %s (rotated, revoked or never issued by this JobManager); get the current one with `sluice security new-join-token`", id)
	}
	// The secret is checked before the expiry and the uses so that only a
	// holder of the secret learns the token's state.
	if subtle.ConstantTimeCompare(sum[:], e.secretSum[:]) != 1 {
		return fmt.Errorf("join token %s: wrong secret", id)
	}
	if !ts.now().Before(e.expires) {
		return fmt.Errorf("join token %s expired at %s; create a new one with `sluice security new-join-token`", id, e.expires.UTC().Format(time.RFC3339))
	}
	if e.maxUses > 0 && e.uses >= e.maxUses {
		return fmt.Errorf("join token %s is used up (%d of %d uses, security.ssl.internal.auto.join-token.max-uses); create one for this TaskManager with `sluice security new-join-token`", id, e.uses, e.maxUses)
	}
	e.uses++
	return nil
}

// Release gives back a use taken by Use when no certificate was issued.
func (ts *Tokens) Release(id string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if e, ok := ts.tokens[id]; ok && e.uses > 0 {
		e.uses--
	}
}

// Record notes that token id issued a certificate.
func (ts *Tokens) Record(id string, rec Issued) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if e, ok := ts.tokens[id]; ok {
		e.issued = append(e.issued, rec)
	}
}

// Uses reports how many times token id was used.
func (ts *Tokens) Uses(id string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if e, ok := ts.tokens[id]; ok {
		return e.uses
	}
	return 0
}

// Revoke retires token id; later joins with it fail as unknown. Its record
// of issued certificates is kept.
func (ts *Tokens) Revoke(id string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if e, ok := ts.tokens[id]; ok {
		ts.retireLocked(id, e)
	}
}

// RevokeAllBut retires every token except keep (rotation).
func (ts *Tokens) RevokeAllBut(keep string) []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []string
	for id, e := range ts.tokens {
		if id != keep {
			ts.retireLocked(id, e)
			out = append(out, id)
		}
	}
	return out
}

func (ts *Tokens) retireLocked(id string, e *tokenEntry) {
	info := e.info(id)
	info.Active = false
	ts.history = append(ts.history, info)
	delete(ts.tokens, id)
}

func (e *tokenEntry) info(id string) TokenInfo {
	return TokenInfo{ID: id, Created: e.created, Expires: e.expires, MaxUses: e.maxUses, Uses: e.uses, Active: true,
		Issued: append([]Issued{}, e.issued...)}
}

// Infos returns every token the registry knows, active and retired, oldest
// first, without secrets.
func (ts *Tokens) Infos() []TokenInfo {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := append([]TokenInfo(nil), ts.history...)
	for id, e := range ts.tokens {
		out = append(out, e.info(id))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Created.Before(out[b].Created) })
	return out
}

// Restore adds retired token records (from a previous run of the
// JobManager) to the history. They carry no secret and cannot be used.
// Records of tokens that issued nothing and expired long ago are dropped,
// so that restarts do not grow the history without bound.
func (ts *Tokens) Restore(infos []TokenInfo) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	for _, i := range infos {
		if len(i.Issued) == 0 && now.Sub(i.Expires) > tokenRetention {
			continue
		}
		i.Active = false
		if i.Issued == nil {
			i.Issued = []Issued{}
		}
		ts.history = append(ts.history, i)
	}
}

// Active returns the tokens that still admit joins, each with the digest
// of its secret, for a high-availability successor (ImportActive).
func (ts *Tokens) Active() []ActiveToken {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	var out []ActiveToken
	for id, e := range ts.tokens {
		if !now.Before(e.expires) {
			continue
		}
		out = append(out, ActiveToken{TokenInfo: e.info(id), SecretSHA256: hex.EncodeToString(e.secretSum[:])})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Created.Before(out[b].Created) })
	return out
}

// ImportActive makes the tokens a previous leader issued admit joins here
// too, with the uses they have left; expired ones and ones with a bad
// digest are skipped.
func (ts *Tokens) ImportActive(active []ActiveToken) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	for _, a := range active {
		sum, err := hex.DecodeString(a.SecretSHA256)
		if err != nil || len(sum) != sha256.Size || !now.Before(a.Expires) || checkTokenPart("id", a.ID, tokenIDLen, tokenAlphabet) != nil {
			continue
		}
		if _, ok := ts.tokens[a.ID]; ok {
			continue
		}
		e := &tokenEntry{created: a.Created, expires: a.Expires, maxUses: a.MaxUses, uses: a.Uses, issued: append([]Issued{}, a.Issued...)}
		copy(e.secretSum[:], sum)
		ts.tokens[a.ID] = e
	}
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
