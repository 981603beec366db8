package taskmanager

import (
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/authn"
)

// Settings are the TaskManager's own configuration keys, read once by
// SettingsFromConfig; the rest of the package reads these fields, never the
// keys. (TLS material is read by tlsconf, the join by internaltls.)
type Settings struct {
	Slots      int    // taskmanager.numberOfTaskSlots
	ResourceID string // taskmanager.resource-id
	BindHost   string // taskmanager.bind-host
	Host       string // taskmanager.host: what peers dial; empty means detect
	DataPort   int    // taskmanager.data.port
	RPCPort    int    // taskmanager.rpc.port
	WorkingDir string // process.taskmanager.working-dir (falls back to process.working-dir)

	JobManagerAddress string // jobmanager.rpc.address
	JobManagerPort    int    // jobmanager.rpc.port

	RegistrationTimeout time.Duration // taskmanager.registration.timeout
	ShutdownGrace       time.Duration // taskmanager.shutdown.grace-period

	BufferSize        int           // taskmanager.network.memory.buffer-size
	CreditsPerChannel int           // taskmanager.network.memory.buffers-per-channel
	BufferTimeout     time.Duration // execution.buffer-timeout

	Metrics MetricsSettings
}

// MetricsSettings are the keys of the metrics endpoint: where it binds and,
// off loopback, the REST keys that secure it.
type MetricsSettings struct {
	BindHost       string // taskmanager.metrics.bind-host
	Port           int    // taskmanager.metrics.port
	TLS            bool   // security.ssl.rest.enabled
	ClientCerts    bool   // security.ssl.rest.authentication-enabled
	PrincipalRules string // security.rest.authentication.x509.principal-mapping-rules
	TokenFile      string // security.rest.authentication.token.file
}

// SettingsFromConfig reads the TaskManager's keys from cfg.
func SettingsFromConfig(cfg *config.Config) Settings {
	return Settings{
		Slots:               cfg.Int("taskmanager.numberOfTaskSlots"),
		ResourceID:          cfg.String("taskmanager.resource-id"),
		BindHost:            cfg.String("taskmanager.bind-host"),
		Host:                cfg.String("taskmanager.host"),
		DataPort:            cfg.Int("taskmanager.data.port"),
		RPCPort:             cfg.Int("taskmanager.rpc.port"),
		WorkingDir:          cfg.String("process.taskmanager.working-dir"),
		JobManagerAddress:   cfg.String("jobmanager.rpc.address"),
		JobManagerPort:      cfg.Int("jobmanager.rpc.port"),
		RegistrationTimeout: cfg.Duration("taskmanager.registration.timeout"),
		ShutdownGrace:       cfg.Duration("taskmanager.shutdown.grace-period"),
		BufferSize:          int(cfg.Bytes("taskmanager.network.memory.buffer-size")),
		CreditsPerChannel:   cfg.Int("taskmanager.network.memory.buffers-per-channel"),
		BufferTimeout:       cfg.Duration("execution.buffer-timeout"),
		Metrics: MetricsSettings{
			BindHost:       cfg.String("taskmanager.metrics.bind-host"),
			Port:           cfg.Int("taskmanager.metrics.port"),
			TLS:            cfg.Bool("security.ssl.rest.enabled"),
			ClientCerts:    cfg.Bool("security.ssl.rest.authentication-enabled"),
			PrincipalRules: cfg.String(authn.RulesKey),
			TokenFile:      cfg.String(authn.TokenFileKey),
		},
	}
}
