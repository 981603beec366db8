package taskmanager

import (
	"context"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
	"github.com/sluice-dev/sluice/internal/security/sealed"
)

// Validate runs what a TaskManager's start-up runs on cfg before it binds
// a port or joins a cluster, with the same functions, and returns the
// first error start-up would stop with: the internal TLS material and
// identity (internaltls.SetupTaskManager's checks; tmID and joinToken are
// the --id and --join-token flags, "" when not given) and the security of
// the metrics endpoint (newMetricsSecurity, which Run calls), and the
// checkpoint key (LoadCheckpointKey, which New calls), and the Kerberos login (kerberos.Start,
// which Run calls). It binds
// nothing and leaves nothing running.
//
// `sluice security check` calls it, so the check refuses exactly what
// start-up refuses.
func Validate(cfg *config.Config, tmID, joinToken string) error {
	if _, err := LoadCheckpointKey(cfg); err != nil {
		return err
	}
	if err := internaltls.ValidateTaskManager(cfg, tmID, joinToken); err != nil {
		return err
	}
	if _, err := newMetricsSecurity(cfg, SettingsFromConfig(cfg).Metrics, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	_, err := kerberos.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	return err
}

// LoadCheckpointKey loads the key that seals checkpoint and savepoint files
// (state.checkpoints.encryption.key-file), nil when unset. A TaskManager
// checks it before it joins a cluster: a missing, short or group- or
// world-readable key stops it at start-up, not at its first checkpoint.
func LoadCheckpointKey(cfg *config.Config) (*sealed.Key, error) {
	path := cfg.String(sealed.KeyFileKey)
	if path == "" {
		return nil, nil
	}
	return sealed.LoadKey(path)
}
