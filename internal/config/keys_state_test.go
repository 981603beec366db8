package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStateBackendKeys(t *testing.T) {
	base := New()
	if got := base.String("state.backend.type"); got != "hashmap" {
		t.Errorf("state.backend.type default = %q, want hashmap", got)
	}
	if base.Bool("state.backend.incremental") {
		t.Error("state.backend.incremental defaults to true")
	}
	for _, v := range []string{"hashmap", "pebble", "rocksdb", "RocksDB"} {
		c, err := base.WithJobSettings(map[string]string{"state.backend.type": v, "state.backend.incremental": "true"})
		if err != nil {
			t.Fatalf("job setting state.backend.type=%s: %v", v, err)
		}
		if got := c.String("state.backend.type"); got != strings.ToLower(v) {
			t.Errorf("state.backend.type=%s read back as %q", v, got)
		}
		if !c.Bool("state.backend.incremental") {
			t.Errorf("state.backend.incremental not applied as a job setting")
		}
	}
	if _, err := base.WithJobSettings(map[string]string{"state.backend.type": "memory"}); err == nil || !strings.Contains(err.Error(), "state.backend.type") {
		t.Errorf("unknown backend: %v, want an error naming state.backend.type", err)
	}
}

func TestCheckpointKeys(t *testing.T) {
	base := New()
	if base.IsSet(CheckpointIntervalKey) || base.Duration(CheckpointIntervalKey) != 0 {
		t.Errorf("%s has a value by default: checkpointing must be off unless asked for", CheckpointIntervalKey)
	}
	defaults := map[string]string{
		"execution.checkpointing.mode":                                     "EXACTLY_ONCE",
		"execution.checkpointing.timeout":                                  "600000",
		"execution.checkpointing.min-pause":                                "0",
		"execution.checkpointing.tolerable-failed-checkpoints":             "0",
		"execution.checkpointing.externalized-checkpoint-retention":        "DELETE_ON_CANCELLATION",
		"state.checkpoints.num-retained":                                   "1",
		"restart-strategy.exponential-delay.backoff-multiplier":            "1.5",
		"restart-strategy.exponential-delay.jitter-factor":                 "0.1",
		"restart-strategy.exponential-delay.initial-backoff":               "1000",
		"restart-strategy.exponential-delay.max-backoff":                   "60000",
		"restart-strategy.exponential-delay.reset-backoff-threshold":       "3600000",
		"restart-strategy.exponential-delay.attempts-before-reset-backoff": "2147483647",
	}
	for k, want := range defaults {
		ki, ok := Lookup(k)
		if !ok {
			t.Errorf("%s is not registered", k)
			continue
		}
		var got string
		switch ki.Type {
		case Duration:
			got = fmt.Sprint(base.Duration(k).Milliseconds())
		case Float:
			got = fmt.Sprint(base.Float(k))
		default:
			got = base.String(k)
		}
		if got != want {
			t.Errorf("%s default %s, want %s", k, got, want)
		}
	}

	// Job-level keys travel with a submission (sluice run -D, REST config); the
	// directories and the key file are the cluster's.
	job := map[string]string{
		CheckpointIntervalKey:                                       "1 s",
		"execution.checkpointing.mode":                              "at_least_once",
		"execution.checkpointing.timeout":                           "2 min",
		"execution.checkpointing.min-pause":                         "500 ms",
		"execution.checkpointing.tolerable-failed-checkpoints":      "3",
		"execution.checkpointing.externalized-checkpoint-retention": "retain_on_cancellation",
		"restart-strategy.type":                                     "ExponentialDelay",
		"restart-strategy.exponential-delay.backoff-multiplier":     "2",
		"restart-strategy.exponential-delay.jitter-factor":          "0",
	}
	c, err := base.WithJobSettings(job)
	if err != nil {
		t.Fatal(err)
	}
	if c.Duration(CheckpointIntervalKey) != time.Second || c.String("execution.checkpointing.mode") != "AT_LEAST_ONCE" ||
		c.String("execution.checkpointing.externalized-checkpoint-retention") != "RETAIN_ON_CANCELLATION" ||
		c.String("restart-strategy.type") != "exponentialdelay" || c.Float("restart-strategy.exponential-delay.backoff-multiplier") != 2 ||
		c.Int("execution.checkpointing.tolerable-failed-checkpoints") != 3 {
		t.Errorf("job settings read back wrong: %v", c.Entries())
	}
	for _, k := range []string{CheckpointsDirKey, SavepointsDirKey, "state.checkpoints.num-retained", "state.checkpoints.encryption.key-file"} {
		if _, err := base.WithJobSettings(map[string]string{k: "/x"}); err == nil || !strings.Contains(err.Error(), "cluster setting") {
			t.Errorf("job setting %s: %v, want it refused as a cluster setting", k, err)
		}
	}

	// Flink 2's names are aliases, Flink's older ones deprecated.
	for alias, canon := range map[string]string{
		"execution.checkpointing.dir": CheckpointsDirKey, "execution.checkpointing.savepoint-dir": SavepointsDirKey,
		"execution.checkpointing.num-retained": "state.checkpoints.num-retained", "execution.checkpointing.incremental": "state.backend.incremental",
		"state.backend.fs.checkpointdir": CheckpointsDirKey, "savepoints.state.backend.fs.dir": SavepointsDirKey,
	} {
		if k, ok := Lookup(alias); !ok || k.Name != canon {
			t.Errorf("%s: %v %v, want a name of %s", alias, k.Name, ok, canon)
		}
	}
}

// TestCheckpointIntervalMinimum: every value below 100 ms, however written, is refused with
// the same message naming the key and the minimum.
func TestCheckpointIntervalMinimum(t *testing.T) {
	for in, shown := range map[string]string{"50 ms": "50 ms", "50ms": "50 ms", "0": "0 ms", "-1 ms": "-1 ms", "99999 us": "99.999ms", "0.05s": "50 ms"} {
		err := New().Set(CheckpointIntervalKey, in)
		want := CheckpointIntervalKey + ": " + shown + " is below the minimum of 100 ms"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("interval %q: %v, want %q", in, err, want)
		}
		_, err = New().WithJobSettings(map[string]string{CheckpointIntervalKey: in})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("job setting interval %q: %v, want %q", in, err, want)
		}
	}
	for _, in := range []string{"100 ms", "1 s", "100000 us"} {
		if err := New().Set(CheckpointIntervalKey, in); err != nil {
			t.Errorf("interval %q: %v", in, err)
		}
	}
}

func TestLocalDir(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/ckpt": "/srv/ckpt", "/srv/ckpt/": "/srv/ckpt", "file:///srv/ckpt": "/srv/ckpt", "file:/srv/ckpt": "/srv/ckpt",
		"FILE:///srv/x/../ckpt": "/srv/ckpt", "file://localhost/srv/ckpt": "/srv/ckpt", " /srv/ckpt ": "/srv/ckpt",
	} {
		if got, err := LocalDir(in); err != nil || got != want {
			t.Errorf("LocalDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"s3://bucket/ckpt": "NFS", "hdfs://nn:8020/ckpt": "NFS", "S3A://b/c": "NFS", "gs://b": "NFS",
		"ckpt": "not an absolute path", "./ckpt": "not an absolute path", "file://nfs-server/ckpt": "names host",
		"file:ckpt": "want file:///path", "": "empty",
	} {
		if _, err := LocalDir(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LocalDir(%q): %v, want an error containing %q", in, err, want)
		}
	}
}

// TestStateKeysDocumented: every key of state, checkpoints, savepoints and restarts, and each
// of its other names, is in docs/configuration.md.
func TestStateKeysDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ki := range allKeys() {
		if !strings.HasPrefix(ki.Name, "state.") && !strings.HasPrefix(ki.Name, "execution.checkpointing.") &&
			!strings.HasPrefix(ki.Name, "restart-strategy.") && ki.Name != "pipeline.max-parallelism" &&
			ki.Name != "pipeline.auto-watermark-interval" {
			continue
		}
		n++
		if !strings.Contains(string(doc), "| `"+ki.Name+"` |") {
			t.Errorf("docs/configuration.md has no row for %s", ki.Name)
		}
		for _, other := range append(append([]string{}, ki.Aliases...), ki.Deprecated...) {
			if other != "restart-strategy" && !strings.Contains(string(doc), "`"+other+"`") {
				t.Errorf("docs/configuration.md does not name %s, another name of %s", other, ki.Name)
			}
		}
	}
	if n < 20 {
		t.Errorf("found %d state and checkpoint keys, want at least 20", n)
	}
}
