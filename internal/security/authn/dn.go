package authn

import (
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Principal mapping rules are written against Java's
// X500Principal.getName() (RFC 2253), because that is what Kafka and Flink
// users already have rules for. formatDN reproduces it from the DER
// subject: most specific RDN first, only the keywords RFC 2253 defines,
// every other attribute as OID=#hex of its DER value. Go's
// pkix.Name.String() differs (it names SERIALNUMBER and POSTALCODE, and
// prints DC and UID as OIDs), so rules would silently stop matching.

type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// The SET suffix makes encoding/asn1 expect a SET OF.
type rawRDNSET []rawATV

type rawRDNSequence []rawRDNSET

var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

// formatDN formats a DER-encoded Name (a certificate's RawSubject) like
// Java's X500Principal.getName().
func formatDN(der []byte) (string, error) {
	var seq rawRDNSequence
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return "", fmt.Errorf("parse certificate subject: %w", err)
	}
	if len(rest) > 0 {
		return "", errors.New("parse certificate subject: trailing data")
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if i < len(seq)-1 {
			b.WriteByte(',')
		}
		for j, atv := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			oid := atv.Type.String()
			kw, known := rfc2253Keywords[oid]
			var s string
			if known {
				if _, err := asn1.Unmarshal(atv.Value.FullBytes, &s); err != nil {
					known = false
				}
			}
			if !known {
				if kw == "" {
					kw = oid
				}
				b.WriteString(kw + "=#" + hex.EncodeToString(atv.Value.FullBytes))
				continue
			}
			b.WriteString(kw + "=" + escapeDNValue(s))
		}
	}
	return b.String(), nil
}

// escapeDNValue escapes an attribute value as RFC 2253 section 2.4 asks.
func escapeDNValue(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case strings.ContainsRune(`,+"\<>;`, r),
			i == 0 && (r == ' ' || r == '#'),
			i == len(s)-1 && r == ' ':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			// Unprintable bytes as \hh so a DN is always one printable line
			// in logs and error messages.
			fmt.Fprintf(&b, "\\%02x", r&0xff)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

type dnAttr struct{ typ, value string }

// parseDN splits an RFC 2253 string into its attributes in order, with
// values unescaped. It is lenient where RFC 2253 is ambiguous: it is used
// on strings formatDN produced, and on DNs typed into tests.
func parseDN(dn string) ([]dnAttr, error) {
	var attrs []dnAttr
	i := 0
	for i < len(dn) {
		eq := strings.IndexByte(dn[i:], '=')
		if eq < 0 {
			return nil, fmt.Errorf("malformed subject %q: attribute without '='", dn)
		}
		typ := strings.TrimSpace(dn[i : i+eq])
		i += eq + 1
		var v []byte
		quoted := i < len(dn) && dn[i] == '"'
		if quoted {
			i++
		}
	value:
		for i < len(dn) {
			c := dn[i]
			switch {
			case c == '\\':
				if i+1 >= len(dn) {
					return nil, fmt.Errorf("malformed subject %q: trailing backslash", dn)
				}
				if i+2 < len(dn) && isHex(dn[i+1]) && isHex(dn[i+2]) {
					h, _ := hex.DecodeString(dn[i+1 : i+3])
					v = append(v, h[0])
					i += 3
					continue
				}
				v = append(v, dn[i+1])
				i += 2
			case quoted && c == '"':
				quoted = false
				i++
			case !quoted && (c == ',' || c == '+' || c == ';'):
				break value
			default:
				v = append(v, c)
				i++
			}
		}
		if quoted {
			return nil, fmt.Errorf("malformed subject %q: unterminated quote", dn)
		}
		attrs = append(attrs, dnAttr{typ: typ, value: string(v)})
		if i < len(dn) {
			i++ // the separator
		}
	}
	return attrs, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
