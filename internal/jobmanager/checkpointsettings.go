package jobmanager

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/sealed"
)

// Checkpointing modes (execution.checkpointing.mode).
const (
	ExactlyOnce = "EXACTLY_ONCE"
	AtLeastOnce = "AT_LEAST_ONCE"
)

// Retention of a canceled job's checkpoints
// (execution.checkpointing.externalized-checkpoint-retention).
const (
	DeleteOnCancellation = "DELETE_ON_CANCELLATION"
	RetainOnCancellation = "RETAIN_ON_CANCELLATION"
)

// CheckpointSettings are a job's checkpoint and state keys, read once from
// its configuration (the cluster's with the job's own settings) by
// CheckpointSettingsFromConfig. The checkpoint coordinator, the REST
// checkpoint config and the deployments read these fields, never the keys.
type CheckpointSettings struct {
	Interval          time.Duration // execution.checkpointing.interval; 0: no periodic checkpoints
	Mode              string        // execution.checkpointing.mode: ExactlyOnce or AtLeastOnce
	Timeout           time.Duration // execution.checkpointing.timeout
	MinPause          time.Duration // execution.checkpointing.min-pause
	TolerableFailures int           // execution.checkpointing.tolerable-failed-checkpoints
	Retention         string        // execution.checkpointing.externalized-checkpoint-retention
	Dir               string        // state.checkpoints.dir as a clean absolute path; "" when unset
	NumRetained       int           // state.checkpoints.num-retained
	SavepointsDir     string        // state.savepoints.dir as a clean absolute path; "" when unset
	KeyFile           string        // state.checkpoints.encryption.key-file; "" when unset
	Backend           string        // state.backend.type: "hashmap" or "pebble" (rocksdb runs as pebble)
	BackendAlias      string        // "rocksdb" when the job asked for rocksdb, for the log
	Incremental       bool          // state.backend.incremental
}

// Enabled reports whether the job takes periodic checkpoints.
func (s CheckpointSettings) Enabled() bool { return s.Interval > 0 }

// CheckpointSettingsFromConfig reads a job's checkpoint settings from its
// effective configuration. The keys' own checks (the interval's minimum,
// local directories only) ran when they were set; errors here name the
// key to fix.
func CheckpointSettingsFromConfig(cfg *config.Config) (CheckpointSettings, error) {
	s := CheckpointSettings{
		Mode:              cfg.String("execution.checkpointing.mode"),
		Timeout:           cfg.Duration("execution.checkpointing.timeout"),
		MinPause:          cfg.Duration("execution.checkpointing.min-pause"),
		TolerableFailures: cfg.Int("execution.checkpointing.tolerable-failed-checkpoints"),
		Retention:         cfg.String("execution.checkpointing.externalized-checkpoint-retention"),
		NumRetained:       cfg.Int("state.checkpoints.num-retained"),
		KeyFile:           cfg.String(sealed.KeyFileKey),
		Backend:           cfg.String("state.backend.type"),
		Incremental:       cfg.Bool("state.backend.incremental"),
	}
	if cfg.IsSet(config.CheckpointIntervalKey) {
		s.Interval = cfg.Duration(config.CheckpointIntervalKey)
	}
	if s.Backend == "rocksdb" {
		s.Backend, s.BackendAlias = "pebble", "rocksdb"
	}
	var err error
	if s.Dir, err = localDirSetting(cfg, config.CheckpointsDirKey); err != nil {
		return s, err
	}
	if s.SavepointsDir, err = localDirSetting(cfg, config.SavepointsDirKey); err != nil {
		return s, err
	}
	return s, nil
}

// localDirSetting reads a directory key as a clean absolute path, "" when unset.
func localDirSetting(cfg *config.Config, key string) (string, error) {
	raw := cfg.String(key)
	if raw == "" {
		return "", nil
	}
	dir, err := config.LocalDir(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return dir, nil
}

// checkCheckpointing refuses at submit a job whose checkpoints could not be
// written: an interval on a cluster without state.checkpoints.dir.
func checkCheckpointing(s CheckpointSettings) error {
	if s.Enabled() && s.Dir == "" {
		return fmt.Errorf("%s is %s but the cluster has no %s: set that directory in the cluster's configuration (file:///path or /path, one the JobManager and every TaskManager can write, shared over NFS between hosts), or submit the job without the interval",
			config.CheckpointIntervalKey, config.FormatDuration(s.Interval), config.CheckpointsDirKey)
	}
	return nil
}

// createJobCheckpointDir creates <state.checkpoints.dir>/<job id>, 0700 (and
// the root, 0700, when missing), at submit: a directory the JobManager
// cannot create is a refusal naming it, not a failure of the first
// checkpoint. An existing job directory that group or others may enter is
// refused: checkpoint files are private.
func createJobCheckpointDir(root, jobID string) (string, error) {
	dir, err := checkpoint.JobDir(root, jobID)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", config.CheckpointsDirKey, root, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", jobDirError(root, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return "", jobDirError(root, err)
		}
		st, lerr := os.Lstat(dir)
		switch {
		case lerr != nil:
			return "", jobDirError(root, lerr)
		case !st.IsDir():
			return "", fmt.Errorf("%s %s: the job's directory %s exists and is not a directory: remove it", config.CheckpointsDirKey, root, dir)
		case st.Mode().Perm()&0o077 != 0:
			return "", fmt.Errorf("%s %s: the job's directory %s exists with mode %04o: checkpoint directories must be private (0700); remove it or chmod 700 it",
				config.CheckpointsDirKey, root, dir, st.Mode().Perm())
		}
	}
	return dir, nil
}

// jobDirError is the refusal of a job whose checkpoint directory cannot be
// created: the reason as the system gives it (permission denied, read-only
// file system, not a directory), and what must hold.
func jobDirError(root string, err error) error {
	reason := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		reason = pe.Err
	}
	return fmt.Errorf("%s %s: cannot create the job's directory: %w: the JobManager and every TaskManager must be able to write there",
		config.CheckpointsDirKey, root, reason)
}
