// Package kafka turns the Kafka client properties a job spec gives (`properties.*`, under
// Kafka's own names: bootstrap.servers, security.protocol, sasl.jaas.config, ssl.*) into a
// franz-go client configuration, with the credentials of the login contexts or delegation
// tokens when the properties carry none. It is also the operator type `kafka` (operator.go),
// a source and a sink registered with dataflow when the package is imported
// (docs/connectors.md).
package kafka

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/sluice-dev/sluice/internal/config"
)

// Properties are Kafka client properties, by Kafka's names (without the spec's
// `properties.` prefix). Values of sensitive keys (config.IsSensitive: sasl.jaas.config,
// every *.password) never print, marshal or log.
type Properties map[string]string

// Masked returns a copy with the sensitive values replaced by "******".
func (p Properties) Masked() map[string]string {
	out := make(map[string]string, len(p))
	for k, v := range p {
		if config.IsSensitive(k) && v != "" {
			v = "******"
		}
		out[k] = v
	}
	return out
}

// String shows the properties, masked.
func (p Properties) String() string {
	m := p.Masked()
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// GoString is String, so %#v does not leak either.
func (p Properties) GoString() string { return p.String() }

// MarshalJSON encodes the properties masked.
func (p Properties) MarshalJSON() ([]byte, error) { return json.Marshal(p.Masked()) }

// MarshalYAML encodes the properties masked.
func (p Properties) MarshalYAML() (any, error) { return p.Masked(), nil }

// LogValue logs the properties masked.
func (p Properties) LogValue() slog.Value { return slog.StringValue(p.String()) }

// Property names this connector understands; any other is a warning naming it.
const (
	BootstrapServers     = "bootstrap.servers"
	GroupID              = "group.id"
	ClientID             = "client.id"
	SecurityProtocol     = "security.protocol"
	SASLMechanism        = "sasl.mechanism"
	SASLJAASConfig       = "sasl.jaas.config"
	SASLKerberosService  = "sasl.kerberos.service.name"
	TruststoreLocation   = "ssl.truststore.location"
	TruststoreType       = "ssl.truststore.type"
	TruststorePassword   = "ssl.truststore.password"
	KeystoreLocation     = "ssl.keystore.location"
	KeystoreType         = "ssl.keystore.type"
	KeystorePassword     = "ssl.keystore.password"
	KeyPassword          = "ssl.key.password"
	EndpointIdentify     = "ssl.endpoint.identification.algorithm"
	TransactionTimeoutMS = "transaction.timeout.ms"
	IsolationLevel       = "isolation.level"
	RequestTimeoutMS     = "request.timeout.ms"
	LingerMS             = "linger.ms"
	CompressionType      = "compression.type"
	MaxPartitionFetch    = "max.partition.fetch.bytes"
	FetchMaxBytes        = "fetch.max.bytes"
	AutoOffsetReset      = "auto.offset.reset"
)

var known = []string{
	BootstrapServers, GroupID, ClientID, SecurityProtocol, SASLMechanism, SASLJAASConfig,
	SASLKerberosService, TruststoreLocation, TruststoreType, TruststorePassword, KeystoreLocation,
	KeystoreType, KeystorePassword, KeyPassword, EndpointIdentify, TransactionTimeoutMS,
	IsolationLevel, RequestTimeoutMS, LingerMS, CompressionType, MaxPartitionFetch, FetchMaxBytes, AutoOffsetReset,
}

// Unknown lists the properties this connector does not understand, sorted: they are ignored,
// and the job says so rather than failing (a Flink job may carry properties for its Java
// client that mean nothing here).
func (p Properties) Unknown() []string {
	var out []string
	for k := range p {
		if !slices.Contains(known, k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Security protocols and SASL mechanisms, as Kafka names them.
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"

	MechPlain    = "PLAIN"
	MechSCRAM256 = "SCRAM-SHA-256"
	MechSCRAM512 = "SCRAM-SHA-512"
	MechGSSAPI   = "GSSAPI"
)

// Settings are the properties checked and interpreted, without any I/O: what a spec can be
// refused for at submit.
type Settings struct {
	Brokers   []string
	Protocol  string
	Mechanism string // when Protocol is SASL_*
	JAAS      *JAAS  // nil when sasl.jaas.config is not set
	Service   string // sasl.kerberos.service.name
	TLS       bool
	Verify    bool // ssl.endpoint.identification.algorithm is https (the default)
	// Files the client reads, absolute: trust store, key store, keytab, file: passwords.
	Files []string
}

// Check validates the properties; key is the spec's prefix for messages ("properties.").
func (p Properties) Check() (*Settings, error) {
	s := &Settings{Protocol: Plaintext, Service: "kafka", Verify: true}
	for _, b := range strings.Split(p[BootstrapServers], ",") {
		if b = strings.TrimSpace(b); b != "" {
			s.Brokers = append(s.Brokers, b)
		}
	}
	if len(s.Brokers) == 0 {
		return nil, fmt.Errorf("properties.%s: missing required property: the brokers to connect to (host:port, comma-separated)", BootstrapServers)
	}
	if v := p[SecurityProtocol]; v != "" {
		s.Protocol = strings.ToUpper(v)
	}
	switch s.Protocol {
	case Plaintext, SASLPlaintext:
	case SSL, SASLSSL:
		s.TLS = true
	default:
		return nil, fmt.Errorf("properties.%s: unknown protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", SecurityProtocol, p[SecurityProtocol])
	}
	sasl := s.Protocol == SASLPlaintext || s.Protocol == SASLSSL
	if v := p[SASLKerberosService]; v != "" {
		s.Service = v
	}
	if v, ok := p[EndpointIdentify]; ok {
		switch strings.ToLower(v) {
		case "", "none":
			s.Verify = false
		case "https":
		default:
			return nil, fmt.Errorf("properties.%s: %q: want https (verify the broker's host name, the default) or an empty value (do not)", EndpointIdentify, v)
		}
	}
	if jaas := p[SASLJAASConfig]; jaas != "" {
		j, err := ParseJAAS(jaas)
		if err != nil {
			return nil, fmt.Errorf("properties.%s: %w", SASLJAASConfig, err)
		}
		s.JAAS = j
	}
	if sasl {
		s.Mechanism = strings.ToUpper(p[SASLMechanism])
		if s.Mechanism == "" {
			s.Mechanism = MechGSSAPI // Kafka's default
		}
		switch s.Mechanism {
		case MechPlain, MechSCRAM256, MechSCRAM512:
			if s.JAAS == nil || s.JAAS.Module == ModuleKrb5 {
				// Without a JAAS string a delegation token may still answer (SCRAM).
				if s.Mechanism == MechPlain || s.JAAS != nil {
					return nil, fmt.Errorf("properties.%s: sasl.mechanism %s needs a username and password: set it to %s required username=\"...\" password=\"...\";", SASLJAASConfig, s.Mechanism, moduleFor(s.Mechanism))
				}
			}
		case MechGSSAPI:
			if s.JAAS != nil && s.JAAS.Module != ModuleKrb5 {
				return nil, fmt.Errorf("properties.%s: sasl.mechanism GSSAPI needs the %s (or no JAAS string: the KafkaClient login context), not %s", SASLJAASConfig, ModuleKrb5, s.JAAS.Module)
			}
		default:
			return nil, fmt.Errorf("properties.%s: unknown mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or GSSAPI", SASLMechanism, p[SASLMechanism])
		}
	} else if p[SASLMechanism] != "" || p[SASLJAASConfig] != "" {
		return nil, fmt.Errorf("properties.%s is %s: SASL settings (sasl.mechanism, sasl.jaas.config) need SASL_PLAINTEXT or SASL_SSL", SecurityProtocol, s.Protocol)
	}
	if err := p.checkBounds(); err != nil {
		return nil, err
	}
	for _, k := range []string{TruststoreType, KeystoreType} {
		switch strings.ToUpper(p[k]) {
		case "", "PEM", "PKCS12", "JKS":
		default:
			return nil, fmt.Errorf("properties.%s: unknown type %q: want PEM, PKCS12 or JKS", k, p[k])
		}
	}
	if !s.TLS {
		for _, k := range []string{TruststoreLocation, KeystoreLocation} {
			if p[k] != "" {
				return nil, fmt.Errorf("properties.%s is set but properties.%s is %s: use SSL or SASL_SSL", k, SecurityProtocol, s.Protocol)
			}
		}
	}
	for _, k := range []string{TruststoreLocation, KeystoreLocation} {
		if p[k] != "" {
			s.Files = append(s.Files, p[k])
		}
	}
	for _, k := range []string{TruststorePassword, KeystorePassword, KeyPassword} {
		if f, ok := strings.CutPrefix(p[k], "file:"); ok {
			s.Files = append(s.Files, f)
		}
	}
	if s.JAAS != nil {
		if s.JAAS.KeyTab != "" {
			s.Files = append(s.Files, s.JAAS.KeyTab)
		}
		if f, ok := strings.CutPrefix(s.JAAS.Password, "file:"); ok {
			s.Files = append(s.Files, f)
		}
	}
	return s, nil
}

func moduleFor(mech string) string {
	if mech == MechPlain {
		return ModulePlain
	}
	return ModuleSCRAM
}
