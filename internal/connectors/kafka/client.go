package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/kerberos"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluice-dev/sluice/internal/connectors/egress"
	"github.com/sluice-dev/sluice/internal/security/credentials"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

// Env is what building a client takes from where it runs.
type Env struct {
	// ReadFile reads a file the job may read (its trust store, keytab, password files),
	// through the job's file grants. Nil: the properties may name no file.
	ReadFile func(path string) ([]byte, error)
	// Credentials answers for the "kafka" service when the properties carry no credential:
	// a *credentials.Kerberos (the KafkaClient login context) or a *credentials.Token
	// (a delegation token, used as SCRAM with tokenauth=true). May be nil.
	Credentials credentials.Source
	Logger      *slog.Logger
}

// ClientOptions are the franz-go options for the settings: brokers, TLS, SASL.
func (s *Settings) ClientOptions(ctx context.Context, p Properties, env Env) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(s.Brokers...)}
	if id := p[ClientID]; id != "" {
		opts = append(opts, kgo.ClientID(id))
	} else {
		opts = append(opts, kgo.ClientID("sluice"))
	}
	if d, ok, err := p.Millis(RequestTimeoutMS); err != nil {
		return nil, err
	} else if ok {
		opts = append(opts, kgo.RequestTimeoutOverhead(d))
	}
	var tc *tls.Config
	if s.TLS {
		var err error
		if tc, err = s.tlsConfig(p, env); err != nil {
			return nil, err
		}
	}
	opts = append(opts, kgo.Dialer(dialer(tc)))
	if s.Mechanism != "" {
		m, err := s.mechanism(ctx, env)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// dialer connects to the seed brokers and to those the cluster advertises through the
// egress checks (no metadata service, no Unix socket: package egress), with TLS when tc is
// set, as kgo.DialTLSConfig does (its server name from the address when tc names none).
func dialer(tc *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	nd := egress.Dialer(10*time.Second, 0)
	if tc == nil {
		return nd.DialContext
	}
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		c := tc.Clone()
		if c.ServerName == "" {
			server, _, err := net.SplitHostPort(host)
			if err != nil {
				return nil, fmt.Errorf("broker address %q: %w", host, err)
			}
			c.ServerName = server
		}
		return (&tls.Dialer{NetDialer: nd, Config: c}).DialContext(ctx, network, host)
	}
}

// secret resolves a password property: file:PATH is read (first line) through the job's
// grants, anything else is the password itself.
func secret(env Env, key, v string) (string, error) {
	path, ok := strings.CutPrefix(v, "file:")
	if !ok {
		return v, nil
	}
	b, err := readFile(env, key, path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

func readFile(env Env, key, path string) ([]byte, error) {
	if env.ReadFile == nil {
		return nil, fmt.Errorf("properties.%s: %s cannot be read here: this task may open no files", key, path)
	}
	b, err := env.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("properties.%s: read %s: %w", key, path, err)
	}
	return b, nil
}

func (s *Settings) tlsConfig(p Properties, env Env) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if loc := p[TruststoreLocation]; loc != "" {
		data, err := readFile(env, TruststoreLocation, loc)
		if err != nil {
			return nil, err
		}
		pass, err := secret(env, TruststorePassword, p[TruststorePassword])
		if err != nil {
			return nil, err
		}
		pool, err := tlsconf.ParseTrustStore(loc, data, p[TruststoreType], pass, "properties.ssl")
		if err != nil {
			return nil, fmt.Errorf("properties.%s: %w", TruststoreLocation, err)
		}
		tc.RootCAs = pool
	}
	if loc := p[KeystoreLocation]; loc != "" {
		data, err := readFile(env, KeystoreLocation, loc)
		if err != nil {
			return nil, err
		}
		storePass, err := secret(env, KeystorePassword, p[KeystorePassword])
		if err != nil {
			return nil, err
		}
		keyPass, err := secret(env, KeyPassword, p[KeyPassword])
		if err != nil {
			return nil, err
		}
		cert, err := tlsconf.ParseKeyStore(loc, data, p[KeystoreType], storePass, keyPass, "properties.ssl")
		if err != nil {
			return nil, fmt.Errorf("properties.%s: %w", KeystoreLocation, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if !s.Verify {
		// ssl.endpoint.identification.algorithm="": the chain is verified, the host name is
		// not (Kafka's meaning of the empty value).
		roots := tc.RootCAs
		tc.InsecureSkipVerify = true
		tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs[i] = c
			}
			if len(certs) == 0 {
				return errors.New("the broker sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return tc, nil
}

func (s *Settings) mechanism(ctx context.Context, env Env) (sasl.Mechanism, error) {
	j := s.JAAS
	switch s.Mechanism {
	case MechPlain, MechSCRAM256, MechSCRAM512:
		if j == nil {
			return s.tokenMechanism(ctx, env)
		}
		pass, err := secret(env, SASLJAASConfig, j.Password)
		if err != nil {
			return nil, err
		}
		switch s.Mechanism {
		case MechPlain:
			return plain.Auth{User: j.Username, Pass: pass}.AsMechanism(), nil
		case MechSCRAM256:
			return scram.Auth{User: j.Username, Pass: pass, IsToken: j.TokenAuth}.AsSha256Mechanism(), nil
		default:
			return scram.Auth{User: j.Username, Pass: pass, IsToken: j.TokenAuth}.AsSha512Mechanism(), nil
		}
	}
	// GSSAPI
	service := s.Service
	if j != nil && j.ServiceName != "" {
		service = j.ServiceName
	}
	if j != nil && j.UseKeyTab {
		return s.keytabMechanism(ctx, env, service)
	}
	if env.Credentials == nil {
		return nil, fmt.Errorf("properties.%s: GSSAPI without a keytab in the JAAS string takes the TaskManager's KafkaClient login context, and this task has none: configure security.kerberos.login.* and list KafkaClient in security.kerberos.login.contexts, or give useKeyTab=true keyTab=\"...\" principal=\"...\"", SASLJAASConfig)
	}
	c, err := env.Credentials.Credentials(ctx, credentials.Kafka)
	if err != nil {
		if errors.Is(err, credentials.ErrNone) {
			return nil, fmt.Errorf("GSSAPI: the TaskManager holds no Kafka credentials: list KafkaClient in security.kerberos.login.contexts (with security.kerberos.login.keytab/principal or a ticket cache), enable Kafka delegation tokens, or give a keytab in properties.%s", SASLJAASConfig)
		}
		return nil, fmt.Errorf("GSSAPI: Kafka credentials: %w", err)
	}
	switch c := c.(type) {
	case *credentials.Kerberos:
		return kerberos.Kerberos(func(context.Context) (kerberos.Auth, error) {
			cl, err := c.Client()
			if err != nil {
				return kerberos.Auth{}, fmt.Errorf("login context %s (Kerberos): %w", c.Context, err)
			}
			// The login service owns the client and replaces it at relogin: never destroy it.
			return kerberos.Auth{Client: cl, Service: service, PersistAfterAuth: true}, nil
		}), nil
	case *credentials.Token:
		return tokenSCRAM(c, s.Mechanism, env.Credentials), nil
	}
	return nil, fmt.Errorf("GSSAPI: unexpected Kafka credential %T", c)
}

// tokenMechanism is SCRAM without a JAAS string: a delegation token the JobManager obtained
// for the job.
func (s *Settings) tokenMechanism(ctx context.Context, env Env) (sasl.Mechanism, error) {
	missing := fmt.Errorf("properties.%s: sasl.mechanism %s needs a username and password: set it to %s required username=\"...\" password=\"...\"; (or enable Kafka delegation tokens)", SASLJAASConfig, s.Mechanism, moduleFor(s.Mechanism))
	if env.Credentials == nil || s.Mechanism == MechPlain {
		return nil, missing
	}
	c, err := env.Credentials.Credentials(ctx, credentials.Kafka)
	if err != nil {
		if errors.Is(err, credentials.ErrNone) {
			return nil, missing
		}
		return nil, fmt.Errorf("credentials for Kafka: %w", err)
	}
	t, ok := c.(*credentials.Token)
	if !ok {
		return nil, missing
	}
	return tokenSCRAM(t, s.Mechanism, env.Credentials), nil
}

// tokenSCRAM logs in with a delegation token: SCRAM with the token id as user name, its
// HMAC as password, and tokenauth=true. The token is asked for again at each login (src), so
// a connection opened or re-authenticated after the JobManager replaced the token uses the new
// one; first is the token held when the client was built.
func tokenSCRAM(first *credentials.Token, mech string, src credentials.Source) sasl.Mechanism {
	if first.Mechanism != "" {
		mech = first.Mechanism
	}
	auth := func(ctx context.Context) (scram.Auth, error) {
		t := first
		if src != nil {
			c, err := src.Credentials(ctx, credentials.Kafka)
			if err != nil {
				return scram.Auth{}, fmt.Errorf("delegation token for Kafka: %w", err)
			}
			if tk, ok := c.(*credentials.Token); ok {
				t = tk
			}
		}
		return scram.Auth{User: t.ID, Pass: t.Secret, IsToken: true}, nil
	}
	if mech == MechSCRAM256 {
		return scram.Sha256(auth)
	}
	return scram.Sha512(auth)
}

func (s *Settings) keytabMechanism(ctx context.Context, env Env, service string) (sasl.Mechanism, error) {
	j := s.JAAS
	b, err := readFile(env, SASLJAASConfig, j.KeyTab)
	if err != nil {
		return nil, err
	}
	kt := keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("properties.%s: keytab %s: %w", SASLJAASConfig, j.KeyTab, err)
	}
	cfg, err := s.krb5Config(ctx, env)
	if err != nil {
		return nil, err
	}
	user, realm, _ := strings.Cut(j.Principal, "@")
	if realm == "" {
		realm = cfg.LibDefaults.DefaultRealm
	}
	cl := krbclient.NewWithKeytab(user, realm, kt, cfg, krbclient.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		return nil, fmt.Errorf("the Kerberos login of %s with keytab %s (properties.%s): %w", j.Principal, j.KeyTab, SASLJAASConfig, err)
	}
	return kerberos.Auth{Client: cl, Service: service}.AsMechanismWithClose(), nil
}

// krb5Config is the krb5.conf of the TaskManager's login service, else KRB5_CONFIG or
// /etc/krb5.conf.
func (s *Settings) krb5Config(ctx context.Context, env Env) (*krbconfig.Config, error) {
	if env.Credentials != nil {
		if c, err := env.Credentials.Credentials(ctx, credentials.Kafka); err == nil {
			if k, ok := c.(*credentials.Kerberos); ok && k.Config != nil {
				return k.Config, nil
			}
		}
	}
	path := os.Getenv("KRB5_CONFIG")
	if path == "" {
		path = "/etc/krb5.conf"
	}
	cfg, err := krbconfig.Load(path)
	if err != nil {
		return nil, fmt.Errorf("GSSAPI with a keytab needs a krb5.conf (security.kerberos.krb5-conf.path, KRB5_CONFIG or /etc/krb5.conf): %w", err)
	}
	return cfg, nil
}
