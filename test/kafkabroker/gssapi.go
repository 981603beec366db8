package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GSSAPIConfig is the broker's Kerberos identity: the keytab of its service principal
// (kafka/127.0.0.1@REALM, the host clients ask a ticket for being the address the broker
// advertises).
type GSSAPIConfig struct {
	Keytab string `json:"keytab"`
}

// The GSSAPI exchange Kafka clients run (KIP-43, RFC 4752 over RFC 4121 tokens):
//
//	handshake "GSSAPI"
//	authenticate 1: client AP-REQ in a GSS-API initial token -> acceptor wrap token (security layer)
//	authenticate 2: client wrap token (its choice of layer)  -> empty: authenticated
//
// kfake knows PLAIN and SCRAM only, and its control hooks see requests, not connections.
// So the hooks translate: the GSSAPI handshake becomes a PLAIN one (kfake then expects one
// PLAIN authenticate on that connection); the AP-REQ is verified here with the keytab and
// answered here; the client's final wrap token, once verified with the session key of a
// ticket this broker accepted, is replaced by the PLAIN login of that principal's short
// name with a password only the broker knows (users.go), and kfake completes the login:
// from then on the connection is that user for ACLs, as it would be on Kafka.
func init() {
	register(installer{name: "gssapi", options: noOptions, hooks: installGSSAPI})
}

func noOptions(*Config) ([]kfake.Opt, error) { return nil, nil }

// gssapiSecret is the PLAIN password kfake knows a Kerberos user by; random per process.
func gssapiSecret(user string) string {
	gssapiSecretsOnce.Do(func() {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		gssapiSecretsKey = hex.EncodeToString(b)
	})
	return user + ":" + gssapiSecretsKey
}

var (
	gssapiSecretsOnce sync.Once
	gssapiSecretsKey  string
)

// gssapiSession is an accepted AP-REQ waiting for the client's final wrap token.
type gssapiSession struct {
	user    string
	key     types.EncryptionKey
	expires time.Time
}

type gssapiAcceptor struct {
	settings *service.Settings
	users    map[string]bool

	mu      sync.Mutex
	pending []gssapiSession
}

func installGSSAPI(cfg *Config, c *kfake.Cluster) error {
	if cfg.GSSAPI == nil {
		return nil
	}
	if cfg.SASL == nil {
		return fmt.Errorf("gssapi needs sasl (the GSSAPI users are listed there)")
	}
	b, err := os.ReadFile(cfg.GSSAPI.Keytab)
	if err != nil {
		return err
	}
	kt := keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		return fmt.Errorf("keytab %s: %w", cfg.GSSAPI.Keytab, err)
	}
	a := &gssapiAcceptor{settings: service.NewSettings(kt, service.DecodePAC(false)), users: map[string]bool{}}
	gssapiAcc.Store(a) // delegation.go learns who logged in
	for _, u := range append(append([]User{}, cfg.SASL.Superusers...), cfg.SASL.Users...) {
		if u.Mechanism == "GSSAPI" {
			a.users[u.Name] = true
		}
	}
	c.ControlKey(int16(kmsg.SASLHandshake), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.SASLHandshakeRequest)
		if req.Mechanism == "GSSAPI" {
			req.Mechanism = "PLAIN"
		}
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return a.authenticate(r.(*kmsg.SASLAuthenticateRequest))
	})
	return nil
}

func (a *gssapiAcceptor) authenticate(req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error, bool) {
	b := req.SASLAuthBytes
	switch {
	case len(b) > 0 && b[0] == 0x60: // GSS-API initial context token: the AP-REQ
		out, err := a.acceptAPReq(b)
		return a.reply(req, out, err)
	case len(b) >= 2 && bytes.Equal(b[:2], []byte{0x05, 0x04}): // RFC 4121 wrap token
		user, err := a.finish(b)
		if err != nil {
			return a.reply(req, nil, err)
		}
		req.SASLAuthBytes = []byte("\x00" + user + "\x00" + gssapiSecret(user))
		return nil, nil, false // kfake's PLAIN login completes the connection as user
	}
	return nil, nil, false // PLAIN or SCRAM: kfake's own
}

func (a *gssapiAcceptor) reply(req *kmsg.SASLAuthenticateRequest, out []byte, err error) (kmsg.Response, error, bool) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kafkabroker: GSSAPI authentication failed: %v\n", err)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "GSSAPI authentication failed: " + err.Error()
		resp.ErrorMessage = &msg
		return resp, nil, true
	}
	resp.SASLAuthBytes = out
	return resp, nil, true
}

func (a *gssapiAcceptor) acceptAPReq(b []byte) ([]byte, error) {
	var tok spnego.KRB5Token
	if err := tok.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("not a Kerberos AP-REQ: %w", err)
	}
	if !tok.IsAPReq() {
		return nil, fmt.Errorf("the first GSSAPI token is not an AP-REQ")
	}
	ok, creds, err := service.VerifyAPREQ(&tok.APReq, a.settings)
	if !ok || err != nil {
		return nil, fmt.Errorf("AP-REQ refused: %v", err)
	}
	user := creds.UserName()
	if !a.users[user] {
		return nil, fmt.Errorf("principal %s@%s is not a user of this broker", user, creds.Domain())
	}
	key := tok.APReq.Ticket.DecryptedEncPart.Key
	// Security layer offer: no layer (1), any buffer size, as Kafka's broker sends.
	wt := gssapi.WrapToken{Flags: 0x01, EC: 12, Payload: []byte{1, 0, 0, 0}}
	if et, err := etypeHMACBytes(key); err == nil {
		wt.EC = et
	}
	if err := wt.SetCheckSum(key, keyusage.GSSAPI_ACCEPTOR_SEAL); err != nil {
		return nil, err
	}
	out, err := wt.Marshal()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	live := a.pending[:0]
	for _, s := range a.pending {
		if s.expires.After(now) {
			live = append(live, s)
		}
	}
	a.pending = append(live, gssapiSession{user: user, key: key, expires: now.Add(time.Minute)})
	return out, nil
}

// finish verifies the client's wrap token against the accepted sessions: the session key
// proves which ticket (and so which principal) this connection presented.
func (a *gssapiAcceptor) finish(b []byte) (string, error) {
	var wt gssapi.WrapToken
	if err := wt.Unmarshal(b, false); err != nil {
		return "", fmt.Errorf("bad wrap token: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, s := range a.pending {
		if ok, _ := wt.Verify(s.key, keyusage.GSSAPI_INITIATOR_SEAL); ok {
			a.pending = append(a.pending[:i], a.pending[i+1:]...)
			return s.user, nil
		}
	}
	return "", fmt.Errorf("the final wrap token matches no accepted AP-REQ")
}

// etypeHMACBytes is the checksum length of a wrap token under key's encryption type.
func etypeHMACBytes(key types.EncryptionKey) (uint16, error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return 0, err
	}
	return uint16(et.GetHMACBitLength() / 8), nil
}
