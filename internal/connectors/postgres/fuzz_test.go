package postgres

import (
	"bytes"
	"encoding/binary"
	"maps"
	"net/url"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// pwMarker starts every whitespace-separated piece of the passwords FuzzParseConnString
// writes, so that an error quoting a piece of one shows.
const pwMarker = "Pw0MARK"

func markPassword(pw string) string {
	f := strings.Fields(pw)
	for i := range f {
		f[i] = pwMarker + f[i]
	}
	return pwMarker + strings.Join(f, " "+pwMarker)
}

// FuzzParseConnString parses the url option of a job (libpq URL and key=value forms):
// never a panic; no error shows a piece of the password; what parses names no Unix-domain
// socket and a database, and survives its rendering for pgconn (keywordValue) unchanged; a
// password written by the rules of either form reads back byte for byte.
func FuzzParseConnString(f *testing.F) {
	for _, s := range [][2]string{
		{"postgresql://bob:pw@db.example:5432/app?sslmode=verify-full&sslrootcert=/etc/ca.crt", "S3cret"},
		{"postgres://[::1]:5433,h2:5434/app?target_session_attrs=read-write&ssl=true", "a b"},
		{"host=db dbname=app user=bob sslmode=require", `it's \ odd`},
		{"host=/var/run/postgresql dbname=app", ""},
		{"postgresql://%2Fvar%2Frun/app", "x"},
		{"dbname='a b' host=h,@abstract", "p"},
		{"postgresql://u@h/db?passfile=/root/.pgpass", "p"},
		{"host=h dbname=d options='-c search_path=x'", "pw with  spaces\t"},
		{"postgresql://h/db?a=%zz", "p"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, conn, pw string) {
		cs, err := parseConnString(conn)
		if err == nil {
			for _, h := range strings.Split(cs.settings["host"], ",") {
				if strings.HasPrefix(h, "/") || strings.HasPrefix(h, "@") {
					t.Fatalf("%q: host %q, a Unix-domain socket, was accepted", conn, h)
				}
			}
			if cs.settings["dbname"] == "" {
				t.Fatalf("%q: accepted without a database", conn)
			}
			back, err := parseKeywordValue(keywordValue(cs.settings))
			if err != nil || !maps.Equal(back, cs.settings) {
				t.Fatalf("%q: settings %q render as %q, which reads back as %q, %v", conn, cs.settings, keywordValue(cs.settings), back, err)
			}
			if strings.Contains(cs.String(), "password=") && cs.settings["password"] != "" && !strings.HasPrefix(cs.settings["password"], "file:") &&
				strings.Contains(cs.String(), quoteValue(cs.settings["password"])) && cs.settings["password"] != maskedValue {
				t.Fatalf("%q: String shows the password: %s", conn, cs.String())
			}
		}
		for _, c := range []string{
			"host=h dbname=d password=" + markPassword(pw) + " " + conn,
			"password=" + markPassword(pw) + " host=h dbname=d",
			"host=h password=" + markPassword(pw),
		} {
			if _, err := parseConnString(c); err != nil && strings.Contains(err.Error(), pwMarker) {
				t.Fatalf("parseConnString(%q): the error shows the password: %v", c, err)
			}
		}
		if pw == "" {
			return
		}
		for _, c := range []string{
			"host=h dbname=d password=" + quoteValue(pw),
			"postgresql://bob:" + url.PathEscape(pw) + "@h/d",
			"postgresql://h/d?password=" + url.QueryEscape(pw),
		} {
			cs, err := parseConnString(c)
			if err != nil || cs.settings["password"] != pw {
				t.Fatalf("parseConnString(%q): password %q, %v; want %q", c, cs.settings["password"], err, pw)
			}
		}
	})
}

// FuzzGSSUnwrap reads wrap tokens a hostile or broken server sends on a GSSAPI-encrypted
// connection: never a panic or an allocation beyond the token's size; only a token sealed
// with the session key by the acceptor, in sequence, gives plaintext, and that plaintext
// is what was sealed.
func FuzzGSSUnwrap(f *testing.F) {
	et, err := crypto.GetEtype(etypeID.AES256_CTS_HMAC_SHA1_96)
	if err != nil {
		f.Fatal(err)
	}
	key := bytes.Repeat([]byte{7}, et.GetKeyByteSize())
	seal := func(plain []byte, ec, rrc int, seq uint64) []byte {
		hdr := []byte{0x05, 0x04, flagSentByAcceptor | flagSealed, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(hdr[4:], uint16(ec))
		binary.BigEndian.PutUint64(hdr[8:], seq)
		msg := append(append(append([]byte{}, plain...), bytes.Repeat([]byte{0xff}, ec)...), hdr...)
		_, ct, err := et.EncryptMessage(key, msg, usageAcceptorSeal)
		if err != nil {
			f.Fatal(err)
		}
		r := rrc % len(ct)
		ct = append(append([]byte{}, ct[len(ct)-r:]...), ct[:len(ct)-r]...)
		out := append([]byte{}, hdr...)
		binary.BigEndian.PutUint16(out[6:], uint16(rrc))
		return append(out, ct...)
	}
	f.Add(seal([]byte("SELECT 1"), 0, 0, 0))
	f.Add(seal([]byte("Z\x00\x00\x00\x05I"), 3, 28, 0))
	f.Add(seal(nil, 0, 0, 0))
	f.Add(seal([]byte("x"), 0xffff, 0, 0)) // EC larger than the plaintext
	f.Add(seal([]byte("x"), 0, 0xffff, 0))
	f.Add(seal([]byte("late"), 0, 0, 7))
	f.Add([]byte{0x05, 0x04, 0x03, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0x05, 0x04, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, tok []byte) {
		c := &gssEncConn{key: key, et: et}
		pt, err := c.unwrap(append([]byte{}, tok...))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "GSSAPI encryption: ") {
				t.Fatalf("error does not say what failed: %v", err)
			}
			return
		}
		if len(pt) > len(tok) {
			t.Fatalf("%d bytes of plaintext from a %d-byte token", len(pt), len(tok))
		}
		if !c.rseen || c.rseq != binary.BigEndian.Uint64(tok[8:16])+1 {
			t.Fatalf("the token's sequence number was not taken")
		}
		// A second token with the same sequence number is a replay.
		if _, err := c.unwrap(append([]byte{}, tok...)); err == nil {
			t.Fatalf("a replayed token was accepted")
		}
	})
}

// FuzzGSSContinue reads the server's answer to the sink's SPNEGO token (PostgreSQL's GSSAPI
// authentication): never a panic; only an accept-completed NegTokenResp completes the
// exchange, and the exchange never continues with a token of ours.
func FuzzGSSContinue(f *testing.F) {
	var resp spnego.NegTokenResp
	for range 3 { // accept-completed, accept-incomplete, reject
		b, err := resp.Marshal()
		resp.NegState++
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00})
	f.Add([]byte{0x60, 0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		g := &gssClient{principal: "alice@R", spn: "postgres/h"}
		done, out, err := g.Continue(b)
		if out != nil {
			t.Fatalf("the exchange continues with a token: %x", out)
		}
		if done && err != nil || !done && err == nil {
			t.Fatalf("done %v with error %v", done, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "kerberos: ") {
			t.Fatalf("error does not say what failed: %v", err)
		}
	})
}
