package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// GSSAPI transport encryption (libpq's gssencmode; pg_hba.conf `hostgssenc` lines), which pgx
// does not implement: the dialer asks the server for it (GSSENCRequest), establishes a Kerberos
// GSS-API context with the AP-REQ of the TaskManager's login, and returns a connection that
// wraps everything pgx writes in RFC 4121 sealed (encrypted and integrity-protected) tokens,
// in PostgreSQL's packets: a 4-byte length, then the token. The server then authenticates the
// connection by that context (no second GSSAPI exchange) and TLS is not used on it, as with
// libpq.

// gssEncRequestCode is the protocol's GSSENCRequest (1234 << 16 | 5680).
const gssEncRequestCode = 80877104

// gssMaxToken bounds a token: the server's buffer is 16384 bytes with the length word.
const gssMaxToken = 16384 - 4

// gssMaxPlain is the plaintext of one token: the token adds a 16-byte header, the header's
// encrypted copy, a confounder (16) and the checksum (at most 24).
const gssMaxPlain = gssMaxToken - 16 - 16 - 16 - 24

// RFC 4121 key usages and token flags.
const (
	usageAcceptorSeal  = 22
	usageInitiatorSeal = 24
	flagSentByAcceptor = 0x01
	flagSealed         = 0x02
)

var noDeadline time.Time

// errNoGSSEnc: the server answered N to the GSSENCRequest.
var errNoGSSEnc = errors.New("the server does not offer GSSAPI encryption (no hostgssenc line matches, or it was built without GSSAPI)")

// krb5OID is the DER of the Kerberos 5 mechanism's OID, 1.2.840.113554.1.2.2.
var krb5OID = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}

// dialGSSEnc connects, negotiates GSSAPI encryption for service/host as krb's principal, and
// returns the encrypting connection.
func dialGSSEnc(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error),
	network, addr, host, service string, krb *credentials.Kerberos) (net.Conn, error) {
	conn, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		defer conn.SetDeadline(noDeadline)
	}
	c, err := openGSSEnc(conn, host, service, krb)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func openGSSEnc(conn net.Conn, host, service string, krb *credentials.Kerberos) (net.Conn, error) {
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:], 8)
	binary.BigEndian.PutUint32(req[4:], gssEncRequestCode)
	if _, err := conn.Write(req[:]); err != nil {
		return nil, fmt.Errorf("GSSAPI encryption request: %w", err)
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return nil, fmt.Errorf("GSSAPI encryption request: %w", err)
	}
	switch answer[0] {
	case 'G':
	case 'N':
		return nil, errNoGSSEnc
	default:
		return nil, fmt.Errorf("GSSAPI encryption request: unexpected answer %q from the server", answer[0])
	}
	cl, err := krb.Client()
	if err != nil {
		return nil, fmt.Errorf("kerberos login context %s: %w", krb.Context, err)
	}
	spn := service + "/" + host
	tkt, key, err := cl.GetServiceTicket(spn)
	if err != nil {
		return nil, fmt.Errorf("kerberos: %s cannot get a ticket for the server's principal %s: %v (krbsrvname in url sets its first part, the url's host the second)", krb.Principal, spn, err)
	}
	auth, err := types.NewAuthenticator(cl.Credentials.Domain(), cl.Credentials.CName())
	if err != nil {
		return nil, err
	}
	// RFC 4121 4.1.1: the checksum carries the context flags: confidentiality, integrity,
	// and replay and sequence detection, so the server refuses a token of ours replayed or
	// dropped on the way. No mutual authentication: the server answers nothing and both
	// sides use the ticket's session key, which only the service's key holder can learn.
	cksum := make([]byte, 24)
	binary.LittleEndian.PutUint32(cksum[0:], 16)
	binary.LittleEndian.PutUint32(cksum[20:], gssapi.ContextFlagConf|gssapi.ContextFlagInteg|gssapi.ContextFlagReplay|gssapi.ContextFlagSequence)
	auth.Cksum = types.Checksum{CksumType: chksumtype.GSSAPI, Checksum: cksum}
	apreq, err := messages.NewAPReq(tkt, key, auth)
	if err != nil {
		return nil, fmt.Errorf("kerberos: AP-REQ for %s: %w", spn, err)
	}
	ap, err := apreq.Marshal()
	if err != nil {
		return nil, fmt.Errorf("kerberos: AP-REQ for %s: %w", spn, err)
	}
	inner := append(append(append([]byte{}, krb5OID...), 0x01, 0x00), ap...)
	token := asn1tools.AddASNAppTag(inner, 0)
	if err := writePacket(conn, token); err != nil {
		return nil, fmt.Errorf("GSSAPI encryption: send the context token: %w", err)
	}
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("kerberos: session key of %s: %w", spn, err)
	}
	return &gssEncConn{Conn: conn, key: key.KeyValue, et: et, seq: uint64(auth.SeqNumber)}, nil
}

func writePacket(w io.Writer, token []byte) error {
	buf := make([]byte, 4+len(token))
	binary.BigEndian.PutUint32(buf, uint32(len(token)))
	copy(buf[4:], token)
	_, err := w.Write(buf)
	return err
}

// gssEncConn is a connection whose bytes travel in sealed GSS-API wrap tokens.
type gssEncConn struct {
	net.Conn
	key []byte
	et  etype.EType

	wmu sync.Mutex
	seq uint64

	rmu     sync.Mutex
	rseq    uint64 // the server's next sequence number, once its first token is read
	rseen   bool
	pending []byte // unwrapped, not yet read
	lenBuf  [4]byte
	tok     []byte
}

// Write wraps p in tokens of at most gssMaxPlain bytes of it.
func (c *gssEncConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var out bytes.Buffer
	for rest := p; len(rest) > 0; {
		n := min(len(rest), gssMaxPlain)
		tok, err := c.wrap(rest[:n])
		if err != nil {
			return 0, err
		}
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(tok)))
		out.Write(l[:])
		out.Write(tok)
		rest = rest[n:]
	}
	if _, err := c.Conn.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// wrap makes a sealed initiator token: header | E(key, plain | header).
func (c *gssEncConn) wrap(plain []byte) ([]byte, error) {
	hdr := make([]byte, 16)
	hdr[0], hdr[1], hdr[2], hdr[3] = 0x05, 0x04, flagSealed, 0xff
	// EC 0 (AES needs no filler), RRC 0.
	binary.BigEndian.PutUint64(hdr[8:], c.seq)
	c.seq++
	msg := make([]byte, 0, len(plain)+16)
	msg = append(append(msg, plain...), hdr...)
	_, ct, err := c.et.EncryptMessage(c.key, msg, usageInitiatorSeal)
	if err != nil {
		return nil, fmt.Errorf("GSSAPI encryption: %w", err)
	}
	return append(hdr, ct...), nil
}

// Read returns unwrapped bytes, reading the next token when none are pending.
func (c *gssEncConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.pending) == 0 {
		if _, err := io.ReadFull(c.Conn, c.lenBuf[:]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(c.lenBuf[:])
		if n > 1<<20 {
			return 0, fmt.Errorf("GSSAPI encryption: oversize packet of %d bytes from the server", n)
		}
		if cap(c.tok) < int(n) {
			c.tok = make([]byte, n)
		}
		c.tok = c.tok[:n]
		if _, err := io.ReadFull(c.Conn, c.tok); err != nil {
			return 0, err
		}
		plain, err := c.unwrap(c.tok)
		if err != nil {
			return 0, err
		}
		c.pending = plain
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// unwrap checks and decrypts a sealed acceptor token.
func (c *gssEncConn) unwrap(tok []byte) ([]byte, error) {
	if len(tok) < 16 || tok[0] != 0x05 || tok[1] != 0x04 || tok[3] != 0xff {
		return nil, errors.New("GSSAPI encryption: malformed token from the server")
	}
	if tok[2]&flagSentByAcceptor == 0 || tok[2]&flagSealed == 0 {
		return nil, errors.New("GSSAPI encryption: the server's token is not a sealed acceptor token")
	}
	ec := int(binary.BigEndian.Uint16(tok[4:]))
	rrc := int(binary.BigEndian.Uint16(tok[6:]))
	body := tok[16:]
	if len(body) == 0 {
		return nil, errors.New("GSSAPI encryption: empty token from the server")
	}
	if r := rrc % len(body); r > 0 { // the sender rotated the body right by RRC
		body = append(append([]byte{}, body[r:]...), body[:r]...)
	}
	// gokrb5 slices the checksum off without a length check: a body shorter than the
	// confounder, the header's copy and the checksum is refused here, not a panic there.
	if len(body) < c.et.GetConfounderByteSize()+16+c.et.GetHMACBitLength()/8 {
		return nil, fmt.Errorf("GSSAPI encryption: short token from the server (%d bytes)", len(tok))
	}
	pt, err := c.et.DecryptMessage(c.key, body, usageAcceptorSeal)
	if err != nil {
		return nil, fmt.Errorf("GSSAPI encryption: a token from the server does not decrypt: %w", err)
	}
	if len(pt) < ec+16 {
		return nil, errors.New("GSSAPI encryption: short token from the server")
	}
	inner := pt[len(pt)-16:]
	if !bytes.Equal(inner[:6], tok[:6]) || !bytes.Equal(inner[8:], tok[8:16]) {
		return nil, errors.New("GSSAPI encryption: the server's token header does not match its encrypted copy")
	}
	// The server's tokens come in sequence: one replayed, reordered or dropped on the way
	// ends the connection.
	seq := binary.BigEndian.Uint64(tok[8:16])
	if c.rseen && seq != c.rseq {
		return nil, fmt.Errorf("GSSAPI encryption: the server's token %d arrived where %d was due (replayed, reordered or lost on the way)", seq, c.rseq)
	}
	c.rseen, c.rseq = true, seq+1
	return pt[:len(pt)-ec-16], nil
}
