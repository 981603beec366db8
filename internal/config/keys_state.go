package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Keyed state backends (docs/architecture.md, "Engine", §5 and §6.1).
// Both keys are job-level: a job picks its backend with sluice run -D,
// as with flink run -D.
func init() {
	for _, k := range []Key{
		// rocksdb is accepted for Flink users' configurations: sluice has
		// no RocksDB and runs pebble, an LSM store of the same family, for
		// it (the TaskManager says so once in its log).
		{Name: "state.backend.type", Job: true, Type: String, Default: "hashmap",
			Enum: []string{"hashmap", "pebble", "rocksdb"},
			Doc:  "Keyed state backend of a job's operators: hashmap (in memory, the default), pebble (on disk), or rocksdb (an alias of pebble; RocksDB options are ignored)."},
		// execution.checkpointing.incremental is Flink 2's name.
		{Name: "state.backend.incremental", Job: true, Type: Bool, Default: "false", Aliases: []string{"execution.checkpointing.incremental"},
			Doc: "Incremental checkpoints: upload only the files not in the previous checkpoint (pebble only; hashmap ignores it and says so)."},
	} {
		Register(k)
	}
}

// MinCheckpointInterval is the shortest execution.checkpointing.interval.
// Flink's is 10 ms; a submitter must not be able to make the JobManager
// and the shared checkpoint file system take a checkpoint every few
// milliseconds.
const MinCheckpointInterval = 100 * time.Millisecond

// CheckpointIntervalKey turns checkpointing on for a job.
const CheckpointIntervalKey = "execution.checkpointing.interval"

// CheckpointsDirKey is the cluster's checkpoint root directory.
const CheckpointsDirKey = "state.checkpoints.dir"

// SavepointsDirKey is the default target of savepoints.
const SavepointsDirKey = "state.savepoints.dir"

// Checkpoints (docs/architecture.md, "Engine", §6.1). Keys that shape one
// job's checkpoints are job-level (sluice run -D, the submission's config);
// where checkpoints go and the key that seals them are the cluster's.
// Flink 2 renamed several keys (execution.checkpointing.dir and so on):
// those names are accepted as aliases of the Flink 1 names used here.
func init() {
	for _, k := range []Key{
		// Min lets negative values through to Check, which says the minimum
		// rather than "want a duration >= 0".
		{Name: CheckpointIntervalKey, Job: true, Type: Duration, Min: new(int64(math.MinInt64)), Check: checkIntervalMinimum,
			Doc: "Time between the triggers of periodic checkpoints, at least 100 ms; unset (the default): no periodic checkpoints (savepoints work without them)."},
		{Name: "execution.checkpointing.mode", Job: true, Type: String, Default: "EXACTLY_ONCE",
			Enum: []string{"EXACTLY_ONCE", "AT_LEAST_ONCE"},
			Doc:  "EXACTLY_ONCE aligns the barriers of a task's inputs; AT_LEAST_ONCE does not (records after a barrier may be replayed after a failure)."},
		{Name: "execution.checkpointing.timeout", Job: true, Type: Duration, Default: "10 min", Min: new(int64(1)),
			Doc: "A checkpoint not completed within this time is aborted (and counts as a failed checkpoint)."},
		{Name: "state.ttl", Job: true, Type: Duration, Default: "0 ms",
			Doc: "How long a regular join (a join without window or between) keeps a record of either input, by processing time, when the join sets no ttl of its own; 0 keeps every record (its state grows with the input)."},
		{Name: "execution.checkpointing.min-pause", Job: true, Type: Duration, Default: "0 ms",
			Doc: "Least time between the end of one checkpoint and the trigger of the next."},
		{Name: "execution.checkpointing.tolerable-failed-checkpoints", Job: true, Type: Int, Default: "0", Min: atLeastZero,
			Doc: "Consecutive failed checkpoints tolerated; one more fails the job over (restart strategy)."},
		{Name: "execution.checkpointing.externalized-checkpoint-retention", Job: true, Type: String, Default: "DELETE_ON_CANCELLATION",
			Enum: []string{"DELETE_ON_CANCELLATION", "RETAIN_ON_CANCELLATION"},
			Doc:  "Whether a canceled job's checkpoints are deleted (DELETE_ON_CANCELLATION) or kept (RETAIN_ON_CANCELLATION). A FAILED job keeps its checkpoints, a FINISHED one deletes them."},

		{Name: CheckpointsDirKey, Type: String, Check: checkLocalDir,
			Aliases: []string{"execution.checkpointing.dir"}, Deprecated: []string{"state.backend.fs.checkpointdir"},
			Doc: "Directory of checkpoints, file:///path or an absolute path, shared by the JobManager and every TaskManager (NFS); each job gets <dir>/<job id>, 0700. Required by jobs with execution.checkpointing.interval."},
		{Name: "state.checkpoints.num-retained", Type: Int, Default: "1", Min: atLeastOne, Aliases: []string{"execution.checkpointing.num-retained"},
			Doc: "Completed checkpoints kept per job; 2 or more leaves an older one to recover from when the latest cannot be read."},
		{Name: SavepointsDirKey, Type: String, Check: checkLocalDir,
			Aliases: []string{"execution.checkpointing.savepoint-dir"}, Deprecated: []string{"savepoints.state.backend.fs.dir"},
			Doc: "Default target directory of savepoints (file:///path or an absolute path) when a request names none."},
		{Name: "state.checkpoints.encryption.key-file", Type: String,
			Doc: "File of 32 random bytes (head -c 32 /dev/urandom), mode 0600: checkpoint and savepoint files are sealed with AES-256-GCM under it. Without it they are integrity-checked (SHA-256) but not encrypted. Checked at start-up by the JobManager and the TaskManagers."},
	} {
		Register(k)
	}
}

// checkIntervalMinimum refuses a checkpoint interval below the minimum.
func checkIntervalMinimum(v any) error {
	if d := v.(time.Duration); d < MinCheckpointInterval {
		return fmt.Errorf("%s is below the minimum of %s: set at least %s, or leave the key unset for no periodic checkpoints",
			FormatDuration(d), FormatDuration(MinCheckpointInterval), FormatDuration(MinCheckpointInterval))
	}
	return nil
}

// FormatDuration writes d as a user writes a duration: "50 ms", "2 s",
// "1 min"; durations that are not whole milliseconds in Go's form.
func FormatDuration(d time.Duration) string {
	switch {
	case d%time.Millisecond != 0:
		return d.String()
	case d != 0 && d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d != 0 && d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	case d != 0 && d%time.Second == 0:
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return fmt.Sprintf("%d ms", d/time.Millisecond)
}

// checkLocalDir refuses a directory key's value that LocalDir refuses;
// empty is unset.
func checkLocalDir(v any) error {
	s := v.(string)
	if strings.TrimSpace(s) == "" {
		return nil
	}
	_, err := LocalDir(s)
	return err
}

// errRemoteFS is a directory on a file system sluice cannot write.
var errRemoteFS = errors.New("remote file systems are not supported")

// LocalDir turns the value of a directory key (state.checkpoints.dir,
// state.savepoints.dir, a savepoint target) into a clean absolute path:
// "file:///srv/ckpt", "file:/srv/ckpt" (as Flink prints paths) and
// "/srv/ckpt" are accepted. Other schemes (s3://, hdfs://, ...) and
// relative paths are refused with an error that says what to use; the
// caller names the key or option the value came from.
func LocalDir(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("empty: want file:///path or an absolute path")
	}
	if strings.HasPrefix(s, "/") {
		return filepath.Clean(s), nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("%q is not an absolute path: want file:///path or /path (every process resolves it alike only if it is absolute)", raw)
	}
	if !strings.EqualFold(u.Scheme, "file") {
		return "", fmt.Errorf("%q: %w (%s://): the directory must be a local path every process reaches, a shared file system such as NFS mounted at the same path on the JobManager and every TaskManager: use file:///path or /path",
			raw, errRemoteFS, u.Scheme)
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("%q: the file URI names host %q: want file:///path (mount the shared directory locally, e.g. NFS)", raw, u.Host)
	}
	if u.RawQuery != "" || u.Fragment != "" || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("%q: want file:///path or an absolute path", raw)
	}
	return filepath.Clean(u.Path), nil
}

// Restart strategies (docs/architecture.md, "Engine", §7), with Flink's
// keys. The fixed-delay keys and restart-strategy.type itself are in
// keys.go; exponential-delay is Flink's default when checkpointing is on
// and no strategy is set.
func init() {
	for _, k := range []Key{
		{Name: "restart-strategy.exponential-delay.initial-backoff", Job: true, Type: Duration, Default: "1 s", Min: new(int64(1)),
			Doc: "Delay before the first restart (exponential-delay)."},
		{Name: "restart-strategy.exponential-delay.max-backoff", Job: true, Type: Duration, Default: "1 min", Min: new(int64(1)),
			Doc: "Longest delay between restarts, before jitter (exponential-delay); at least initial-backoff."},
		{Name: "restart-strategy.exponential-delay.backoff-multiplier", Job: true, Type: Float, Default: "1.5", Check: checkAtLeast(1),
			Doc: "Factor the delay grows by with each restart (exponential-delay); at least 1."},
		{Name: "restart-strategy.exponential-delay.reset-backoff-threshold", Job: true, Type: Duration, Default: "1 h", Min: new(int64(1)),
			Doc: "A job that ran this long before it failed starts again from initial-backoff, and its restarts are counted afresh (exponential-delay)."},
		{Name: "restart-strategy.exponential-delay.jitter-factor", Job: true, Type: Float, Default: "0.1", Check: checkFraction,
			Doc: "Each delay is moved by a random amount of up to this fraction of it, either way, so jobs failing together do not restart together (exponential-delay); 0 to 1."},
		{Name: "restart-strategy.exponential-delay.attempts-before-reset-backoff", Job: true, Type: Int, Default: "2147483647", Min: atLeastOne,
			Doc: "Restarts without a reset (see reset-backoff-threshold) after which the job fails (exponential-delay); unbounded by default."},
	} {
		Register(k)
	}
}

func checkAtLeast(least float64) func(any) error {
	return func(v any) error {
		if f := v.(float64); f < least {
			return fmt.Errorf("%g is below the minimum of %g", f, least)
		}
		return nil
	}
}

func checkFraction(v any) error {
	if f := v.(float64); f < 0 || f > 1 {
		return fmt.Errorf("%g is out of range: want a number from 0 to 1", f)
	}
	return nil
}
