package jobmanager

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-dev/sluice/internal/config"
)

// Listener is one named REST listener (Kafka's listener model): its own
// address, TLS, client-certificate mode and authentication methods, so
// secured and unsecured clients are served at once.
type Listener struct {
	Name           string   `yaml:"name" json:"name"`
	Address        string   `yaml:"address" json:"address"`
	TLS            bool     `yaml:"tls" json:"tls"`
	ClientAuth     string   `yaml:"client-auth" json:"client-auth"`
	Authentication []string `yaml:"authentication" json:"authentication"`
}

var listenerName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// listenersFromConfig reads rest.listeners, or builds the one listener
// that rest.* and security.ssl.rest.* describe when it is unset (Flink's
// settings). It is part of SettingsFromConfig.
func listenersFromConfig(cfg *config.Config) ([]Listener, error) {
	raw, ok := cfg.Raw("rest.listeners")
	if !ok || raw == nil {
		l := defaultListener(cfg)
		// Without a certificate every TLS handshake would fail: refuse
		// at start rather than serve a listener nobody can reach.
		if l.TLS && cfg.String("security.ssl.rest.keystore") == "" {
			return nil, fmt.Errorf("security.ssl.rest.enabled is true but security.ssl.rest.keystore is not set: set it to the key store holding the REST server certificate (sluice security create-certs writes rest.pem), or set security.ssl.rest.enabled: false")
		}
		return []Listener{l}, nil
	}
	data, err := yaml.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("rest.listeners: %w", err)
	}
	var ls []Listener
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&ls); err != nil {
		return nil, fmt.Errorf("rest.listeners: want a list of {name, address, tls, client-auth, authentication}: %w", err)
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("rest.listeners: empty list: remove the key to use rest.address/rest.port, or list at least one listener")
	}
	seen := map[string]bool{}
	addrs := map[string]string{}
	for i := range ls {
		l := &ls[i]
		if l.ClientAuth == "" {
			l.ClientAuth = "none"
		}
		if err := validateListener(cfg, l); err != nil {
			return nil, fmt.Errorf("rest.listeners[%d] (%s): %w", i, l.Name, err)
		}
		if seen[l.Name] {
			return nil, fmt.Errorf("rest.listeners: name %q used twice", l.Name)
		}
		seen[l.Name] = true
		if _, port, _ := net.SplitHostPort(l.Address); port == "0" {
			continue // a free port each: no clash
		}
		if other, dup := addrs[l.Address]; dup {
			return nil, fmt.Errorf("rest.listeners: %s and %s both listen on %s", other, l.Name, l.Address)
		}
		addrs[l.Address] = l.Name
	}
	return ls, nil
}

// defaultListener is Flink's single REST endpoint: open to anyone unless
// client certificates (security.ssl.rest.authentication-enabled) or a token
// file are configured.
func defaultListener(cfg *config.Config) Listener {
	l := Listener{
		Name:       "default",
		Address:    net.JoinHostPort(cfg.String("rest.bind-address"), fmt.Sprint(cfg.Int("rest.port"))),
		TLS:        cfg.Bool("security.ssl.rest.enabled"),
		ClientAuth: "none",
	}
	if l.TLS && cfg.Bool("security.ssl.rest.authentication-enabled") {
		l.ClientAuth = "require"
		l.Authentication = append(l.Authentication, "x509")
	}
	if cfg.String("security.rest.authentication.token.file") != "" {
		l.Authentication = append(l.Authentication, "token")
	}
	if len(l.Authentication) == 0 {
		l.Authentication = []string{"anonymous"}
	}
	return l
}

var knownMethods = []string{"x509", "token", "kerberos", "anonymous"}

func validateListener(cfg *config.Config, l *Listener) error {
	if !listenerName.MatchString(l.Name) {
		return fmt.Errorf("name %q: want lowercase letters, digits and '-', starting with a letter", l.Name)
	}
	host, port, err := net.SplitHostPort(l.Address)
	if err != nil {
		return fmt.Errorf("address %q: want host:port (e.g. 127.0.0.1:8081 or 0.0.0.0:8443)", l.Address)
	}
	_ = host
	if port == "" {
		return fmt.Errorf("address %q: no port", l.Address)
	}
	switch l.ClientAuth {
	case "none", "request", "require":
	default:
		return fmt.Errorf("client-auth %q: want none, request or require", l.ClientAuth)
	}
	if l.ClientAuth != "none" && !l.TLS {
		return fmt.Errorf("client-auth %s needs tls: true", l.ClientAuth)
	}
	if l.TLS && cfg.String("security.ssl.rest.keystore") == "" {
		return fmt.Errorf("tls: true needs a server certificate: set security.ssl.rest.keystore")
	}
	if len(l.Authentication) == 0 {
		return fmt.Errorf("authentication: list at least one of %s", strings.Join(knownMethods, ", "))
	}
	for _, m := range l.Authentication {
		switch m {
		case "x509":
			if l.ClientAuth == "none" {
				return fmt.Errorf("authentication x509 needs client-auth: request or require")
			}
		case "token":
			if cfg.String("security.rest.authentication.token.file") == "" {
				return fmt.Errorf("authentication token needs security.rest.authentication.token.file")
			}
		case "kerberos":
			if cfg.String("security.rest.authentication.kerberos.keytab") == "" {
				return fmt.Errorf("authentication kerberos needs security.rest.authentication.kerberos.keytab (and .principal, e.g. HTTP/host@REALM)")
			}
		case "anonymous":
		default:
			return fmt.Errorf("authentication method %q: want one of %s", m, strings.Join(knownMethods, ", "))
		}
	}
	if slices.Contains(l.Authentication, "anonymous") && l.Authentication[len(l.Authentication)-1] != "anonymous" {
		return fmt.Errorf("authentication: anonymous must come last (it always succeeds)")
	}
	return nil
}

// Exposure describes, for the start-up log, what a listener lets in.
func (l Listener) Exposure() (secured bool, what string) {
	var parts []string
	if !l.TLS {
		parts = append(parts, "plaintext")
	}
	if slices.Contains(l.Authentication, "anonymous") {
		parts = append(parts, "anonymous access")
	}
	if len(parts) == 0 {
		return true, fmt.Sprintf("TLS, client-auth %s, authentication %s", l.ClientAuth, strings.Join(l.Authentication, ", "))
	}
	return false, strings.Join(parts, " and ")
}
