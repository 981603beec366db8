package postgres

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// Sealed wrap tokens (RFC 4121): what the sink sends decrypts with the initiator's seal usage
// and carries its header's copy; what the server sends is read whatever its right rotation
// (RRC) and filler (EC), and a token whose header does not match its encrypted copy, that is
// not the acceptor's, or that comes out of sequence, is refused.
func TestGSSWrapTokens(t *testing.T) {
	for _, id := range []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA384_192, etypeID.AES128_CTS_HMAC_SHA256_128} {
		et, err := crypto.GetEtype(id)
		if err != nil {
			t.Fatal(err)
		}
		size := et.GetKeyByteSize()
		if id == etypeID.AES256_CTS_HMAC_SHA384_192 {
			size = 32 // gokrb5 reports the seed size
		}
		key := bytes.Repeat([]byte{7}, size)
		c := &gssEncConn{key: key, et: et, seq: 41}
		plain := bytes.Repeat([]byte("row\t1\n"), 1000)
		tok, err := c.wrap(plain)
		if err != nil {
			t.Fatal(err)
		}
		if tok[2] != flagSealed || binary.BigEndian.Uint64(tok[8:]) != 41 || c.seq != 42 {
			t.Errorf("etype %d: header % x", id, tok[:16])
		}
		pt, err := et.DecryptMessage(key, tok[16:], usageInitiatorSeal)
		if err != nil || !bytes.Equal(pt[:len(plain)], plain) || !bytes.Equal(pt[len(plain):], tok[:16]) {
			t.Fatalf("etype %d: the initiator token does not decrypt to plain | header: %v", id, err)
		}

		acceptor := func(ec, rrc int, tamper bool, seq uint64) []byte {
			hdr := []byte{0x05, 0x04, flagSentByAcceptor | flagSealed, 0xff, 0, byte(ec), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
			binary.BigEndian.PutUint64(hdr[8:], seq)
			msg := append(append(append([]byte{}, plain...), bytes.Repeat([]byte{0xff}, ec)...), hdr...)
			_, ct, err := et.EncryptMessage(key, msg, usageAcceptorSeal)
			if err != nil {
				t.Fatal(err)
			}
			r := rrc % len(ct)
			ct = append(append([]byte{}, ct[len(ct)-r:]...), ct[:len(ct)-r]...) // rotate right
			out := append([]byte{}, hdr...)
			binary.BigEndian.PutUint16(out[6:], uint16(rrc))
			if tamper {
				out[15] = 10
			}
			return append(out, ct...)
		}
		for i, rrc := range []int{0, 16, 28, 60} {
			got, err := c.unwrap(acceptor(3, rrc, false, uint64(100+i)))
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("etype %d, rrc %d: %v", id, rrc, err)
			}
		}
		for _, seq := range []uint64{103, 105} { // replayed; one lost
			if _, err := c.unwrap(acceptor(0, 0, false, seq)); err == nil {
				t.Errorf("etype %d: a token out of sequence (%d after 103) was accepted", id, seq)
			}
		}
		if _, err := c.unwrap(acceptor(0, 0, true, 104)); err == nil {
			t.Errorf("etype %d: a token whose header differs from its encrypted copy was accepted", id)
		}
		if _, err := c.unwrap(tok); err == nil {
			t.Errorf("etype %d: the sink's own token was accepted as the server's", id)
		}
	}
}
