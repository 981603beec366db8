package authn

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// TokenFileKey is the config key naming the token file.
const TokenFileKey = "security.rest.authentication.token.file"

// TokenPrefix starts every token AppendToken creates, so secret scanners
// (and people) recognise a leaked sluice token.
const TokenPrefix = "sluice_"

const hashPrefix = "sha256:"

// TokenFileError is a problem on one line of a token file. Its message
// shows at most the first 8 characters of the line's hash field, so an
// error never hands out a whole hash (or a token pasted by mistake).
type TokenFileError struct {
	Line   int
	Reason string
}

func (e *TokenFileError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// ParseTokenFile parses a token file: one token per line,
//
//	sha256:<64 hex digits of sha256(token)>,user,"group1,group2"
//
// with CSV quoting, the groups field optional, blank lines and lines
// starting with '#' ignored. The file holds hashes, never tokens, so
// reading it does not give access. Errors are *TokenFileError.
func ParseTokenFile(data []byte) (map[[32]byte]User, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	tokens := map[[32]byte]User{}
	firstLine := map[[32]byte]int{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return tokens, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &TokenFileError{Line: pe.Line, Reason: pe.Err.Error() + " (quote the groups field: \"group1,group2\")"}
			}
			return nil, err
		}
		if first := strings.TrimSpace(rec[0]); len(rec) == 1 && first == "" || strings.HasPrefix(first, "#") {
			continue // blank, or a comment indented (csv only knows column-1 ones)
		}
		line, _ := r.FieldPos(0)
		fail := func(format string, args ...any) error {
			return &TokenFileError{Line: line, Reason: fmt.Sprintf(format, args...)}
		}
		if len(rec) > 3 {
			return nil, fail("%d fields, want hash,user[,\"groups\"] (quote the groups field: \"group1,group2\")", len(rec))
		}
		sum, err := parseHash(strings.TrimSpace(rec[0]))
		if err != nil {
			return nil, fail("%v", err)
		}
		if first, dup := firstLine[sum]; dup {
			return nil, fail("hash %s is also on line %d", shortHash(sum), first)
		}
		if len(rec) < 2 || strings.TrimSpace(rec[1]) == "" {
			return nil, fail("hash %s has no user (write hash,user[,\"groups\"])", shortHash(sum))
		}
		u := User{Name: strings.TrimSpace(rec[1]), Method: MethodToken}
		if err := checkName("user", u.Name); err != nil {
			return nil, fail("%v", err)
		}
		if len(rec) == 3 {
			for g := range strings.SplitSeq(rec[2], ",") {
				if g = strings.TrimSpace(g); g == "" {
					continue
				}
				if err := checkName("group", g); err != nil {
					return nil, fail("%v", err)
				}
				u.Groups = append(u.Groups, g)
			}
		}
		tokens[sum] = u
		firstLine[sum] = line
	}
}

func parseHash(field string) ([32]byte, error) {
	var sum [32]byte
	if strings.HasPrefix(field, TokenPrefix) {
		return sum, errors.New("holds a token instead of its hash: the file must hold only sha256:<hex> hashes; revoke that token and create a new one with `sluice token create`")
	}
	hexPart, ok := strings.CutPrefix(field, hashPrefix)
	if !ok {
		return sum, fmt.Errorf("hash %q must start with %q", cut8(field)+"…", hashPrefix)
	}
	if len(hexPart) != 64 {
		return sum, fmt.Errorf("hash %s%s… has %d hex digits, want 64", hashPrefix, cut8(hexPart), len(hexPart))
	}
	if _, err := hex.Decode(sum[:], []byte(hexPart)); err != nil {
		return sum, fmt.Errorf("hash %s%s… is not hexadecimal", hashPrefix, cut8(hexPart))
	}
	return sum, nil
}

// cut8 returns at most the first 8 bytes of s, quoted-safe.
func cut8(s string) string {
	if len(s) > 8 {
		s = s[:8]
	}
	return strings.ToValidUTF8(s, "?")
}

func shortHash(sum [32]byte) string { return hashPrefix + hex.EncodeToString(sum[:4]) + "…" }

// checkName refuses what would break the file format or fool a reader of
// logs: commas and quotes (CSV), control characters (newlines).
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s name", what)
	}
	if s != strings.TrimSpace(s) {
		return fmt.Errorf("%s %q starts or ends with a space", what, s)
	}
	for _, r := range s {
		if r == ',' || r == '"' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q contains a comma, quote or control character", what, s)
		}
	}
	return nil
}

// AppendToken creates a random token (32 bytes from crypto/rand,
// base64url, prefixed "sluice_"), appends the line with its hash for user
// and groups to the token file at path, and returns the token, which
// exists nowhere else: `sluice token create` prints it once.
//
// The file is created with mode 0600. An existing file readable or
// writable by group or others is refused: hashes of random tokens cannot
// be reversed, but who can write the file can grant access.
func AppendToken(path, user string, groups []string) (string, error) {
	if err := checkName("user", user); err != nil {
		return "", fmt.Errorf("token for %q: %w", user, err)
	}
	for _, g := range groups {
		if err := checkName("group", g); err != nil {
			return "", fmt.Errorf("token for %q: %w", user, err)
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(token))
	line := hashPrefix + hex.EncodeToString(sum[:]) + "," + user
	if len(groups) > 0 {
		line += `,"` + strings.Join(groups, ",") + `"`
	}
	line += "\n"

	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("open token file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("open token file: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s has mode %04o, open to group or others; run `chmod 600 %s` first", path, st.Mode().Perm(), path)
	}
	if st.Size() > 0 {
		// Appending after a last line without its newline would glue the
		// new hash onto that line.
		var last [1]byte
		if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
			return "", fmt.Errorf("read token file %s: %w", path, err)
		}
		if last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return "", fmt.Errorf("write token file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("write token file %s: %w", path, err)
	}
	return token, nil
}
