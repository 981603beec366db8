package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-dev/sluice/internal/connectors/egress"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// login is how the sink authenticates, decided once at Open.
type login struct {
	user, password string
	krb            *credentials.Kerberos // nil: no Kerberos login held
	krbErr         error                 // why krb is nil, shown if the server asks for Kerberos
	source         string                // "password", "password file", "token", "kerberos", "none": for errors
}

// resolveLogin decides the user and credential: a password in url (or password=file:PATH, read
// through the job's authorized files) wins; else the TaskManager's credentials for postgres:
// a delegation token (its ID as user, its secret as password) or the Kerberos client of the
// PostgresClient login context.
func resolveLogin(ctx context.Context, rc *dataflow.RuntimeContext, set map[string]string) (login, error) {
	l := login{user: set["user"], source: "none"}
	if pw, ok := set["password"]; ok {
		if path, isFile := strings.CutPrefix(pw, "file:"); isFile {
			b, err := rc.Files.ReadFile(rc.Operator, path)
			if err != nil {
				return l, fmt.Errorf("url: password=file:%s: %w", path, err)
			}
			l.password, l.source = strings.TrimRight(string(b), "\r\n"), "password file "+path
		} else {
			l.password, l.source = pw, "password"
		}
	} else if rc.Credentials != nil {
		c, err := rc.Credentials.Credentials(ctx, credentials.Postgres)
		switch c := c.(type) {
		case *credentials.Token:
			l.user, l.password, l.source = c.ID, c.Secret, "token"
		case *credentials.Kerberos:
			l.krb, l.source = c, "kerberos"
			if l.user == "" {
				l.user = shortName(c.Principal)
			}
		default:
			l.krbErr = err
		}
	}
	if l.user == "" {
		return l, errors.New("url: no user: give user=NAME (or postgresql://NAME@...), or log the TaskManager in to Kerberos with the PostgresClient login context")
	}
	return l, nil
}

// shortName is the first component of a principal: alice for alice@REALM or alice/admin@REALM,
// the role name a server with include_realm=0 expects.
func shortName(principal string) string {
	name, _, _ := strings.Cut(principal, "@")
	name, _, _ = strings.Cut(name, "/")
	return name
}

// tlsFiles are the contents of the url's certificate files.
type tlsFiles struct {
	roots *x509.CertPool // sslrootcert; nil: none given (or system)
	cert  *tls.Certificate
}

// loadTLSFiles reads sslrootcert, sslcert and sslkey through the job's authorized files, so a
// job cannot make its TaskManager use a certificate or key that is not the job's.
func loadTLSFiles(rc *dataflow.RuntimeContext, set map[string]string) (tlsFiles, error) {
	var f tlsFiles
	if p := set["sslrootcert"]; p != "" && p != "system" {
		b, err := rc.Files.ReadFile(rc.Operator, p)
		if err != nil {
			return f, fmt.Errorf("url: sslrootcert: %w", err)
		}
		f.roots = x509.NewCertPool()
		if !f.roots.AppendCertsFromPEM(b) {
			return f, fmt.Errorf("url: sslrootcert %s holds no PEM certificate", p)
		}
	}
	cert, key := set["sslcert"], set["sslkey"]
	if set["sslcertmode"] == "disable" || (cert == "" && key == "") {
		return f, nil
	}
	if cert == "" || key == "" {
		return f, errors.New("url: sslcert and sslkey go together: give both, or neither")
	}
	cb, err := rc.Files.ReadFile(rc.Operator, cert)
	if err != nil {
		return f, fmt.Errorf("url: sslcert: %w", err)
	}
	kb, err := rc.Files.ReadFile(rc.Operator, key)
	if err != nil {
		return f, fmt.Errorf("url: sslkey: %w", err)
	}
	pair, err := tls.X509KeyPair(cb, kb)
	if err != nil {
		return f, fmt.Errorf("url: sslcert %s and sslkey %s: %w", cert, key, err)
	}
	f.cert = &pair
	return f, nil
}

// pinned are the values of every parameter pgconn would otherwise take from the
// TaskManager's environment (PGHOST, PGPASSWORD, PGSSLROOTCERT...) or its OS user's home
// (~/.pgpass, ~/.postgresql/postgresql.crt): a job connects with what its url says and
// libpq's defaults, never with the TaskManager's own settings.
var pinned = map[string]string{
	"host": "localhost", "port": "5432", "passfile": "", "servicefile": "", "sslmode": "prefer",
	"sslrootcert": "", "sslcert": "", "sslkey": "", "sslpassword": "", "sslcertmode": "allow",
	"sslsni": "1", "sslnegotiation": "postgres", "connect_timeout": "30", "target_session_attrs": "any",
	"min_protocol_version": "3.0", "max_protocol_version": "3.0", "channel_binding": "prefer", "require_auth": "",
}

// runtimeParams are the url parameters sent to the server in the startup message.
var runtimeParams = []string{"application_name", "client_encoding", "options"}

// pgConfig builds the pgconn configuration of one connection.
func pgConfig(set map[string]string, l login, files tlsFiles) (*pgconn.Config, func(), error) {
	kv := maps.Clone(pinned)
	for k, v := range set {
		switch k {
		case "gssencmode", "gsslib", "sslrootcert", "sslcert", "sslkey":
			// gssencmode: pgconn has no GSSAPI encryption; the dialer below does it. The
			// files were read through the job's grants (files).
		default:
			kv[k] = v
		}
	}
	if set["sslrootcert"] == "system" {
		kv["sslrootcert"] = "system"
	} else if files.roots != nil && kv["sslmode"] == "require" {
		kv["sslmode"] = "verify-ca" // libpq: require with a root certificate verifies the chain
	}
	kv["user"], kv["password"] = l.user, l.password
	cfg, err := pgconn.ParseConfig(keywordValue(kv))
	if err != nil {
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) {
			err = errors.Unwrap(pe) // its text quotes the connection string
			if err == nil {
				err = errors.New("invalid connection parameters")
			}
		}
		return nil, nil, fmt.Errorf("url: %w", err)
	}
	// Every dial goes through the egress checks: never a Unix socket or a metadata address,
	// whatever the url's host names or resolves to.
	cfg.DialFunc = egress.Dialer(0, 5*time.Minute).DialContext
	cfg.RuntimeParams = map[string]string{"application_name": "sluice"}
	for _, k := range runtimeParams {
		if v, ok := set[k]; ok {
			cfg.RuntimeParams[k] = v
		}
	}
	patch := func(t *tls.Config) {
		if t == nil {
			return
		}
		if files.roots != nil {
			t.RootCAs = files.roots // verify-ca reads it at handshake time as well
		}
		if files.cert != nil {
			t.Certificates = []tls.Certificate{*files.cert}
		}
	}
	patch(cfg.TLSConfig)
	for _, fb := range cfg.Fallbacks {
		patch(fb.TLSConfig)
	}
	srv := set["krbsrvname"]
	if srv == "" {
		srv = "postgres"
	}
	mode := set["gssencmode"]
	if mode == "" {
		mode = "prefer" // libpq's default
	}
	switch {
	case mode == "require" && l.krb == nil:
		return nil, nil, errors.New("url: gssencmode=require needs a Kerberos login: log the TaskManager in (security.kerberos.login.*) with PostgresClient in security.kerberos.login.contexts, and give no password in url")
	case mode != "disable" && l.krb != nil:
		// As libpq: with Kerberos credentials, try GSSAPI encryption first, without TLS
		// on it; with prefer, a server that refuses it gets the url's other attempts.
		host, port, dial := cfg.Host, cfg.Port, cfg.DialFunc
		var tried atomic.Bool
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if tried.CompareAndSwap(false, true) {
				return dialGSSEnc(ctx, dial, network, addr, host, srv, l.krb)
			}
			return dial(ctx, network, addr)
		}
		rest := append([]*pgconn.FallbackConfig{{Host: host, Port: port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
		cfg.TLSConfig, cfg.Fallbacks = nil, rest
		if mode == "require" {
			cfg.Fallbacks = nil
		}
	}
	name, unregister := registerGSS(srv, &gssLogin{krb: l.krb, err: l.krbErr})
	cfg.KerberosSrvName = name
	return cfg, unregister, nil
}

// explainConnect turns a connection failure into what to fix.
func explainConnect(err error, set map[string]string, l login) error {
	var pe *pgconn.PgError
	where := fmt.Sprintf("connect to %s:%s database %s as %s", orDefault(set["host"], "localhost"), orDefault(set["port"], "5432"), set["dbname"], l.user)
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "28000" && strings.Contains(pe.Message, "pg_hba.conf"):
			return fmt.Errorf("%s: %s: the server accepts no connection like this one: check sslmode in url (a hostssl line needs TLS), user and dbname, or the server's pg_hba.conf", where, pe.Message)
		case pe.Code == "28000" && l.krb != nil:
			return fmt.Errorf("%s: the server refused the Kerberos principal %s as role %s (%s): the TaskManager's login (security.kerberos.login.principal) must be the role in url's user, or map to it in the server's pg_ident.conf",
				where, l.krb.Principal, l.user, pe.Message)
		case pe.Code == "28P01" || pe.Code == "28000":
			return fmt.Errorf("%s: authentication failed (%s): check the user and password in url (%s), and the server's pg_hba.conf", where, pe.Message, l.source)
		case pe.Code == "3D000":
			return fmt.Errorf("%s: %s: fix dbname in url", where, pe.Message)
		}
		return fmt.Errorf("%s: %s (SQLSTATE %s)", where, pe.Message, pe.Code)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		return fmt.Errorf("%s: TLS: %w (check sslrootcert in url: the CA that signed the server's certificate; with sslmode=verify-full the url's host must be a name in the certificate)", where, err)
	case strings.Contains(msg, "server refused TLS connection"):
		return fmt.Errorf("%s: the server does not offer TLS: enable ssl on the server or change sslmode in url", where)
	}
	return fmt.Errorf("%s: %w", where, err)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
