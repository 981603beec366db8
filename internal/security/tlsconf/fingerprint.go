package tlsconf

import (
	"crypto/sha1" //nolint:gosec // SHA-1 fingerprints are what Flink configs carry.
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
)

// Fingerprint is a pinned certificate fingerprint: the SHA-1 (Flink's
// format) or SHA-256 digest of a certificate's DER encoding.
type Fingerprint struct {
	sum []byte // 20 bytes: SHA-1; 32 bytes: SHA-256
}

// ParseFingerprints parses a comma-separated list of fingerprints in hex,
// with or without colons, in any case, as keytool -list -v prints them.
// The length tells the algorithm: 20 bytes SHA-1, 32 bytes SHA-256.
func ParseFingerprints(list string) ([]Fingerprint, error) {
	var out []Fingerprint
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		h := strings.NewReplacer(":", "", " ", "").Replace(item)
		sum, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("fingerprint %q is not hex (want e.g. AB:CD:... as keytool -list -v prints)", item)
		}
		if len(sum) != sha1.Size && len(sum) != sha256.Size {
			return nil, fmt.Errorf("fingerprint %q has %d bytes: want 20 (SHA-1) or 32 (SHA-256)", item, len(sum))
		}
		out = append(out, Fingerprint{sum: sum})
	}
	return out, nil
}

// Matches reports whether f is the fingerprint of cert.
func (f Fingerprint) Matches(cert *x509.Certificate) bool {
	var got []byte
	switch len(f.sum) {
	case sha1.Size:
		s := sha1.Sum(cert.Raw) //nolint:gosec // see import
		got = s[:]
	case sha256.Size:
		s := sha256.Sum256(cert.Raw)
		got = s[:]
	default:
		return false
	}
	return subtle.ConstantTimeCompare(got, f.sum) == 1
}

// String returns f as uppercase colon-separated hex.
func (f Fingerprint) String() string { return colonHex(f.sum) }

// FormatSHA1 returns cert's SHA-1 fingerprint as keytool prints it
// (uppercase colon hex), the form Flink's cert.fingerprint keys use.
func FormatSHA1(cert *x509.Certificate) string {
	s := sha1.Sum(cert.Raw) //nolint:gosec // see import
	return colonHex(s[:])
}

// FormatSHA256 returns cert's SHA-256 fingerprint as keytool prints it.
func FormatSHA256(cert *x509.Certificate) string {
	s := sha256.Sum256(cert.Raw)
	return colonHex(s[:])
}

func colonHex(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	return sb.String()
}

func matchesAny(fps []Fingerprint, cert *x509.Certificate) bool {
	for _, f := range fps {
		if f.Matches(cert) {
			return true
		}
	}
	return false
}
