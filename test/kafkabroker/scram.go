package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// A wrong SCRAM password must be answered as Kafka answers it: a SaslAuthenticate response
// with SASL_AUTHENTICATION_FAILED. kfake closes the connection instead, which a client
// takes for a network failure and retries forever. So this hook checks the client's proof
// before kfake sees it: the broker gives every SCRAM user a salt it knows (through
// AlterUserScramCredentials, as the superuser), remembers each client-first message by its
// nonce, and with the client-final message rebuilds kfake's server-first message (nonce,
// salt, 4096 iterations) and verifies the proof. A valid proof goes on to kfake, which
// completes the login; an invalid one, or an unknown user, is refused here.
func init() {
	register(installer{name: "scram", options: noOptions, hooks: installSCRAM})
}

// scramIterations is what kfake's server-first message always says.
const scramIterations = 4096

type scramCred struct {
	mechanism  string
	salt       []byte
	saltedPass []byte
}

type scramChecker struct {
	creds map[string]scramCred // by user

	mu      sync.Mutex
	pending map[string]scramFirst // client-first by client nonce
}

type scramFirst struct {
	user    string
	bare    string
	expires time.Time
}

func installSCRAM(cfg *Config, c *kfake.Cluster) error {
	if cfg.SASL == nil {
		return nil
	}
	var admin *User
	for i, u := range cfg.SASL.Superusers {
		if strings.HasPrefix(u.Mechanism, "SCRAM-") {
			admin = &cfg.SASL.Superusers[i]
			break
		}
	}
	ch := &scramChecker{creds: map[string]scramCred{}, pending: map[string]scramFirst{}}
	var upserts []kadm.UpsertSCRAM
	for _, u := range append(append([]User{}, cfg.SASL.Superusers...), cfg.SASL.Users...) {
		if !strings.HasPrefix(u.Mechanism, "SCRAM-") {
			continue
		}
		salt := make([]byte, 16)
		_, _ = rand.Read(salt)
		h, size := scramHash(u.Mechanism)
		salted, err := pbkdf2.Key(h, u.Password, salt, scramIterations, size)
		if err != nil {
			return err
		}
		ch.creds[u.Name] = scramCred{mechanism: u.Mechanism, salt: salt, saltedPass: salted}
		mech := kadm.ScramSha256
		if u.Mechanism == "SCRAM-SHA-512" {
			mech = kadm.ScramSha512
		}
		upserts = append(upserts, kadm.UpsertSCRAM{User: u.Name, Mechanism: mech, Iterations: scramIterations, Salt: salt, SaltedPassword: salted})
	}
	if len(ch.creds) == 0 {
		return nil
	}
	if admin == nil {
		return fmt.Errorf("SCRAM users need a SCRAM superuser (the broker sets their salts as it)")
	}
	auth := scram.Auth{User: admin.Name, Pass: admin.Password}
	m := auth.AsSha256Mechanism()
	if admin.Mechanism == "SCRAM-SHA-512" {
		m = auth.AsSha512Mechanism()
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(m)}
	if cfg.TLS != nil {
		// The broker talks to itself: its own certificate as the client's (the tests' CA
		// signs both), and no need to verify its own.
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return err
		}
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})) //nolint:gosec // dialing itself
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil, upserts)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("set the SCRAM users' salts: %w", err)
	}
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return ch.authenticate(r.(*kmsg.SASLAuthenticateRequest))
	})
	return nil
}

func scramHash(mechanism string) (func() hash.Hash, int) {
	if mechanism == "SCRAM-SHA-512" {
		return sha512.New, sha512.Size
	}
	return sha256.New, sha256.Size
}

func (ch *scramChecker) authenticate(req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error, bool) {
	msg := string(req.SASLAuthBytes)
	switch {
	case strings.HasPrefix(msg, "n,") || strings.HasPrefix(msg, "y,") || strings.HasPrefix(msg, "p="):
		return ch.clientFirst(req, msg)
	case strings.HasPrefix(msg, "c="):
		return ch.clientFinal(req, msg)
	}
	return nil, nil, false
}

func (ch *scramChecker) clientFirst(req *kmsg.SASLAuthenticateRequest, msg string) (kmsg.Response, error, bool) {
	// gs2-header "n,," (or with an authzid), then client-first-message-bare "n=USER,r=NONCE".
	i := strings.Index(msg, ",")
	j := strings.Index(msg[i+1:], ",")
	if i < 0 || j < 0 {
		return nil, nil, false
	}
	bare := msg[i+1+j+1:]
	if strings.Contains(bare, "tokenauth=true") {
		// A delegation-token login: left to the hook that knows tokens.
		return nil, nil, false
	}
	var user, nonce string
	for _, attr := range strings.Split(bare, ",") {
		switch {
		case strings.HasPrefix(attr, "n="):
			user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(attr[2:])
		case strings.HasPrefix(attr, "r="):
			nonce = attr[2:]
		}
	}
	if _, ok := ch.creds[user]; !ok {
		return scramRefused(req, "unknown user")
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	now := time.Now()
	for n, p := range ch.pending {
		if p.expires.Before(now) {
			delete(ch.pending, n)
		}
	}
	ch.pending[nonce] = scramFirst{user: user, bare: bare, expires: now.Add(time.Minute)}
	return nil, nil, false
}

func (ch *scramChecker) clientFinal(req *kmsg.SASLAuthenticateRequest, msg string) (kmsg.Response, error, bool) {
	pi := strings.LastIndex(msg, ",p=")
	if pi < 0 {
		return scramRefused(req, "no proof")
	}
	withoutProof, proofB64 := msg[:pi], msg[pi+3:]
	var nonce string
	for _, attr := range strings.Split(withoutProof, ",") {
		if strings.HasPrefix(attr, "r=") {
			nonce = attr[2:]
		}
	}
	ch.mu.Lock()
	var first scramFirst
	found := false
	for cn, p := range ch.pending {
		if strings.HasPrefix(nonce, cn) {
			first, found = p, true
			delete(ch.pending, cn)
			break
		}
	}
	ch.mu.Unlock()
	if !found {
		return nil, nil, false // not an exchange this hook saw begin: kfake decides
	}
	cred := ch.creds[first.user]
	h, _ := scramHash(cred.mechanism)
	serverFirst := fmt.Sprintf("r=%s,s=%s,i=%d", nonce, base64.StdEncoding.EncodeToString(cred.salt), scramIterations)
	authMsg := first.bare + "," + serverFirst + "," + withoutProof
	mac := func(key []byte, data string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	clientKey := mac(cred.saltedPass, "Client Key")
	sum := h()
	sum.Write(clientKey)
	storedKey := sum.Sum(nil)
	sig := mac(storedKey, authMsg)
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != len(sig) {
		return scramRefused(req, "malformed proof")
	}
	for i := range proof {
		proof[i] ^= sig[i]
	}
	sum = h()
	sum.Write(proof)
	if !bytes.Equal(sum.Sum(nil), storedKey) {
		return scramRefused(req, "wrong password for "+first.user)
	}
	return nil, nil, false
}

// scramRefused answers as Kafka does when SCRAM credentials are wrong.
func scramRefused(req *kmsg.SASLAuthenticateRequest, why string) (kmsg.Response, error, bool) {
	return saslRefused(req, "SCRAM", why)
}

// saslRefused is Kafka's answer to wrong credentials: SASL_AUTHENTICATION_FAILED with its
// message; why goes to the broker's log only.
func saslRefused(req *kmsg.SASLAuthenticateRequest, mechanism, why string) (kmsg.Response, error, bool) {
	fmt.Printf("kafkabroker: %s authentication failed: %s\n", mechanism, why)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
	msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism
	resp.ErrorMessage = &msg
	return resp, nil, true
}
