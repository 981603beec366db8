package internaltls

import (
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/transport"
)

// Settings are the keys of internal security other than the TLS material
// (which tlsconf.InternalOptions reads), read once by SettingsFromConfig.
type Settings struct {
	Auto    bool // security.ssl.internal.auto
	Enabled bool // security.ssl.internal.enabled
	// Kinds: which internal connections use TLS when it is on
	// (rpc.ssl.enabled, taskmanager.data.ssl.enabled, blob.service.ssl.enabled).
	Kinds            map[transport.Kind]bool
	HandshakeTimeout time.Duration // security.ssl.internal.handshake-timeout

	AutoDir          string        // security.ssl.internal.auto.dir
	CertTTL          time.Duration // security.ssl.internal.auto.cert-ttl
	JoinTokenTTL     time.Duration // security.cluster.join-token.ttl
	JoinTokenMaxUses int           // security.ssl.internal.auto.join-token.max-uses
	JoinToken        string        // security.cluster.join-token (a secret)
	JoinTokenFile    string        // security.cluster.join-token-file

	JobManagerAddress   string        // jobmanager.rpc.address
	JobManagerPort      int           // jobmanager.rpc.port
	TaskManagerHost     string        // taskmanager.host
	ResourceID          string        // taskmanager.resource-id
	RegistrationTimeout time.Duration // taskmanager.registration.timeout
}

// SettingsFromConfig reads the keys of internal security from cfg.
func SettingsFromConfig(cfg *config.Config) Settings {
	return Settings{
		Auto:    cfg.Bool("security.ssl.internal.auto"),
		Enabled: cfg.Bool("security.ssl.internal.enabled"),
		Kinds: map[transport.Kind]bool{
			transport.RPC:  cfg.Bool("rpc.ssl.enabled"),
			transport.Data: cfg.Bool("taskmanager.data.ssl.enabled"),
			transport.Blob: cfg.Bool("blob.service.ssl.enabled"),
		},
		HandshakeTimeout:    cfg.Duration("security.ssl.internal.handshake-timeout"),
		AutoDir:             cfg.String("security.ssl.internal.auto.dir"),
		CertTTL:             cfg.Duration("security.ssl.internal.auto.cert-ttl"),
		JoinTokenTTL:        cfg.Duration("security.cluster.join-token.ttl"),
		JoinTokenMaxUses:    cfg.Int("security.ssl.internal.auto.join-token.max-uses"),
		JoinToken:           cfg.Secret("security.cluster.join-token").Value(),
		JoinTokenFile:       cfg.String("security.cluster.join-token-file"),
		JobManagerAddress:   cfg.String("jobmanager.rpc.address"),
		JobManagerPort:      cfg.Int("jobmanager.rpc.port"),
		TaskManagerHost:     cfg.String("taskmanager.host"),
		ResourceID:          cfg.String("taskmanager.resource-id"),
		RegistrationTimeout: cfg.Duration("taskmanager.registration.timeout"),
	}
}

// Mode is the internal security mode the settings select.
func (s Settings) Mode() Mode {
	switch {
	case s.Auto:
		return Auto
	case s.Enabled:
		return Configured
	}
	return Off
}
