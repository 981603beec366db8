package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigEnv names the environment variable that points at the client
// configuration file, as KUBECONFIG does for kubectl.
const ConfigEnv = "SLUICECONFIG"

// Config is the client configuration file (~/.sluice/config.yaml): named
// contexts, each a JobManager and the credentials to use with it.
type Config struct {
	CurrentContext string    `yaml:"current-context"`
	Contexts       []Context `yaml:"contexts"`

	// Path is the file the configuration was read from.
	Path string `yaml:"-"`
}

// Context is one JobManager and how to reach it. Relative paths in the
// file are made absolute against the file's directory at load.
type Context struct {
	Name       string `yaml:"name"`
	JobManager string `yaml:"jobmanager"`
	CACert     string `yaml:"cacert"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	// Token is an inline bearer token; TokenFile is preferred so that the
	// configuration can be shared or shown without the secret.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token-file"`
	// Kerberos authenticates with the user's Kerberos ticket cache
	// (SPNEGO), as --kerberos; KerberosSPN overrides the service principal.
	Kerberos    bool   `yaml:"kerberos"`
	KerberosSPN string `yaml:"kerberos-spn"`
}

// Secret is a string that never prints or marshals its value.
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalYAML hides the secret, so a dumped configuration is safe to share.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// DefaultConfigPath is $SLUICECONFIG, else ~/.sluice/config.yaml.
// explicit reports whether the path came from the environment, where a
// missing file is a mistake rather than the absence of a configuration.
func DefaultConfigPath(getenv func(string) string) (path string, explicit bool) {
	if p := getenv(ConfigEnv); p != "" {
		return p, true
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", false
	}
	return filepath.Join(home, ".sluice", "config.yaml"), false
}

// LoadConfig reads and validates a client configuration file. Unknown
// fields are errors: a misspelled "token-file" would otherwise silently
// send no credentials.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client config %s: %w", path, err)
	}
	cfg := &Config{Path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("client config %s: %s", path, yamlErrorText(err))
	}
	cfg.Path = path
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	seen := map[string]bool{}
	for i := range cfg.Contexts {
		c := &cfg.Contexts[i]
		if c.Name == "" {
			return nil, fmt.Errorf("client config %s: contexts[%d] has no name", path, i)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("client config %s: context %q is defined twice", path, c.Name)
		}
		seen[c.Name] = true
		if c.Token != "" && c.TokenFile != "" {
			return nil, fmt.Errorf("client config %s: context %q sets both token and token-file: keep one (token-file is preferred)", path, c.Name)
		}
		if c.Kerberos && (c.Token != "" || c.TokenFile != "") {
			return nil, fmt.Errorf("client config %s: context %q sets both kerberos and a token: keep one (both use the Authorization header)", path, c.Name)
		}
		if c.Key != "" && c.Cert == "" {
			return nil, fmt.Errorf("client config %s: context %q sets key without cert", path, c.Name)
		}
		for _, p := range []*string{&c.CACert, &c.Cert, &c.Key, &c.TokenFile} {
			*p = resolvePath(dir, *p)
		}
	}
	return cfg, nil
}

// Names lists the contexts' names, sorted.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Contexts))
	for _, x := range c.Contexts {
		names = append(names, x.Name)
	}
	sort.Strings(names)
	return names
}

// Context returns the context called name, or the current context when
// name is empty. It returns nil and no error when neither is set.
func (c *Config) Context(name string) (*Context, error) {
	from := "--context"
	if name == "" {
		name, from = c.CurrentContext, "current-context in "+c.Path
	}
	if name == "" {
		return nil, nil
	}
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i], nil
		}
	}
	known := "it defines none"
	if len(c.Contexts) > 0 {
		known = "known contexts: " + strings.Join(c.Names(), ", ")
	}
	return nil, fmt.Errorf("%s: no context %q in %s (%s)", from, name, c.Path, known)
}

// resolvePath makes a path from the file absolute against the file's
// directory, and expands a leading ~/.
func resolvePath(dir, p string) string {
	switch {
	case p == "":
		return ""
	case p == "~" || strings.HasPrefix(p, "~/"):
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
		return p
	case filepath.IsAbs(p):
		return p
	}
	return filepath.Join(dir, p)
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type client\.(\w+)`)

// yamlErrorText rewords yaml's "field x not found in type client.Context"
// into something that names the fields the user may write.
func yamlErrorText(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	lines := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		if m := unknownField.FindStringSubmatch(e); m != nil {
			known := "current-context, contexts"
			where := "at the top level"
			if m[2] == "Context" {
				known = "name, jobmanager, cacert, cert, key, token, token-file, kerberos, kerberos-spn"
				where = "in a context"
			}
			e = strings.Replace(e, m[0], fmt.Sprintf("unknown field %q %s (known: %s)", m[1], where, known), 1)
		}
		lines = append(lines, e)
	}
	return strings.Join(lines, "; ")
}

// looseMode reports whether a file is readable by group or others, as a
// file that holds a secret must not be. Windows has no such bits.
func looseMode(path string) (os.FileMode, bool) {
	if runtime.GOOS == "windows" {
		return 0, false
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	return st.Mode().Perm(), st.Mode().Perm()&0o044 != 0
}
