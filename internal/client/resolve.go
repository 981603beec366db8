package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Environment variables the CLI reads, below its flags and above the
// client configuration file.
const (
	JobManagerEnv = "SLUICE_JOBMANAGER"
	TokenEnv      = "SLUICE_TOKEN"
)

// Settings are what the command line asked for; empty fields are unset.
type Settings struct {
	JobManager string
	CACert     string
	Cert, Key  string
	Token      string
	TokenFile  string
	Context    string
	// Kerberos is --kerberos; KerberosSPN is --kerberos-spn.
	Kerberos    bool
	KerberosSPN string
	// Config is the cluster configuration's layer (--config, -D): the
	// lowest, below the context, the environment and the flags.
	Config *ConfigLayer
}

// Resolved are the Options to use and where they came from.
type Resolved struct {
	Options Options
	// Context is the context used, empty when none.
	Context string
	// ConfigPath is the client configuration file read, empty when none.
	ConfigPath string
	// Warnings are worth telling the user (loose file modes, withheld
	// credentials) but do not stop the command.
	Warnings []string
}

// Resolve merges the settings field by field: flags over the environment
// (SLUICE_JOBMANAGER, SLUICE_TOKEN) over the selected context of the
// client configuration file ($SLUICECONFIG or ~/.sluice/config.yaml) over
// the cluster configuration (rest.address, rest.port, security.ssl.rest.*
// from --config and -D, as Flink's CLI reads them).
//
// A context's token and client certificate belong to its JobManager: when
// --jobmanager or SLUICE_JOBMANAGER points elsewhere and the context was
// not named with --context, they are withheld, so that a stray
// SLUICE_JOBMANAGER does not hand the production token to another server.
func Resolve(flags Settings, getenv func(string) string) (*Resolved, error) {
	if flags.Token != "" && flags.TokenFile != "" {
		return nil, errors.New("--token and --token-file are exclusive: pass one")
	}
	if flags.Key != "" && flags.Cert == "" {
		return nil, errors.New("--key is set without --cert: pass the client certificate with --cert")
	}
	if flags.Kerberos && (flags.Token != "" || flags.TokenFile != "") {
		return nil, errors.New("--kerberos and --token/--token-file are exclusive: pass one")
	}
	r := &Resolved{}
	ctx, err := r.loadContext(flags.Context, getenv)
	if err != nil {
		return nil, err
	}
	o := &r.Options
	o.URL = first(flags.JobManager, getenv(JobManagerEnv))
	if ctx != nil {
		o.URL = first(o.URL, ctx.JobManager)
	}
	layer := flags.Config
	if layer == nil {
		layer = &ConfigLayer{}
	}
	o.URL = first(o.URL, layer.URL, DefaultURL)
	o.SkipHostnameCheck = layer.SkipHostnameCheck
	o.RetryAttempts, o.RetryDelay = layer.RetryAttempts, layer.RetryDelay

	useCreds := false
	if ctx != nil {
		useCreds = flags.Context != "" || ctx.JobManager == "" || sameOrigin(o.URL, ctx.JobManager)
		o.CACert = ctx.CACert // a trust anchor is no secret: it goes wherever the context's settings go
		hasCreds := ctx.Cert != "" || ctx.Token != "" || ctx.TokenFile != ""
		if hasCreds && !useCreds && flags.Cert == "" && flags.Token == "" && flags.TokenFile == "" && getenv(TokenEnv) == "" {
			r.Warnings = append(r.Warnings, fmt.Sprintf(
				"not sending the credentials of context %q (for %s) to %s: pass --context %s to send them anyway, or --token-file/--cert",
				ctx.Name, ctx.JobManager, o.URL, ctx.Name))
		}
	}
	o.CACert = first(flags.CACert, o.CACert)

	if o.CACert == "" {
		o.RootCAs = layer.RootCAs
	}

	switch {
	case flags.Cert != "":
		// --key pairs with --cert only: a context's key does not fit a
		// certificate given on the command line.
		o.Cert, o.Key = flags.Cert, flags.Key
	case useCreds:
		o.Cert, o.Key = ctx.Cert, ctx.Key
	}
	// The configuration's keystore is a credential for the JobManager the
	// configuration names, like a context's.
	if o.Cert == "" && layer.Certificate != nil && (layer.URL == "" || sameOrigin(o.URL, layer.URL)) {
		o.Certificate = layer.Certificate
	}

	switch {
	case flags.Token != "":
		o.Token = flags.Token
	case flags.TokenFile != "":
		if o.Token, err = r.readTokenFile(flags.TokenFile, "--token-file"); err != nil {
			return nil, err
		}
	case getenv(TokenEnv) != "":
		o.Token = strings.TrimSpace(getenv(TokenEnv))
	case useCreds && ctx.TokenFile != "":
		if o.Token, err = r.readTokenFile(ctx.TokenFile, fmt.Sprintf("token-file of context %q", ctx.Name)); err != nil {
			return nil, err
		}
	case useCreds && ctx.Token != "":
		o.Token = string(ctx.Token)
		if mode, loose := looseMode(r.ConfigPath); loose {
			r.Warnings = append(r.Warnings, fmt.Sprintf(
				"%s holds the token of context %q and is readable by group or others (mode %04o): chmod 600 %s, or move the token to a token-file",
				r.ConfigPath, ctx.Name, mode, r.ConfigPath))
		}
	}
	// Kerberos: the flag wins over a token from the environment or the
	// context (it names the method explicitly); a context's kerberos: true
	// goes only where its other credentials would.
	switch {
	case flags.Kerberos:
		o.Kerberos, o.Token = true, ""
	case o.Token == "" && useCreds && ctx.Kerberos:
		o.Kerberos = true
	}
	if o.Kerberos {
		o.KerberosSPN = flags.KerberosSPN
		if o.KerberosSPN == "" && useCreds {
			o.KerberosSPN = ctx.KerberosSPN
		}
	}
	return r, nil
}

// loadContext reads the client configuration file, if any, and selects a
// context. A missing default file is no configuration; a missing file
// named by $SLUICECONFIG is an error, as is --context without a file.
func (r *Resolved) loadContext(name string, getenv func(string) string) (*Context, error) {
	path, explicit := DefaultConfigPath(getenv)
	if path == "" {
		if name != "" {
			return nil, fmt.Errorf("--context %q: no client config file (cannot find the home directory; set %s)", name, ConfigEnv)
		}
		return nil, nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		switch {
		case explicit:
			return nil, fmt.Errorf("%s=%s: the client config file does not exist", ConfigEnv, path)
		case name != "":
			return nil, fmt.Errorf("--context %q: no client config file (%s does not exist; create it or set %s)", name, path, ConfigEnv)
		}
		return nil, nil
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	r.ConfigPath = path
	ctx, err := cfg.Context(name)
	if err != nil || ctx == nil {
		return nil, err
	}
	r.Context = ctx.Name
	return ctx, nil
}

// readTokenFile reads a token, warning when others may read it too.
func (r *Resolved) readTokenFile(path, what string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("%s: %s is empty", what, path)
	}
	if mode, loose := looseMode(path); loose {
		r.Warnings = append(r.Warnings, fmt.Sprintf("token file %s is readable by group or others (mode %04o): chmod 600 %s", path, mode, path))
	}
	return tok, nil
}

// sameOrigin reports whether two JobManager URLs name the same scheme,
// host and port.
func sameOrigin(a, b string) bool {
	ua, err1 := parseURL(a)
	ub, err2 := parseURL(b)
	if err1 != nil || err2 != nil {
		return false
	}
	port := func(scheme, p string) string {
		if p != "" {
			return p
		}
		if scheme == "https" {
			return "443"
		}
		return "80"
	}
	return ua.Scheme == ub.Scheme &&
		strings.EqualFold(strings.TrimSuffix(ua.Hostname(), "."), strings.TrimSuffix(ub.Hostname(), ".")) &&
		port(ua.Scheme, ua.Port()) == port(ub.Scheme, ub.Port())
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
