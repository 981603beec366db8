package jobmanager_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/minicluster"
)

func TestCheckpointSettingsFromConfig(t *testing.T) {
	cfg := config.New()
	for k, v := range map[string]string{
		"execution.checkpointing.dir": "file:///srv/ckpt/", "state.savepoints.dir": "/srv/sp", "state.checkpoints.num-retained": "3",
	} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	job, err := cfg.WithJobSettings(map[string]string{
		"execution.checkpointing.interval": "2 s", "execution.checkpointing.mode": "at_least_once", "state.backend.type": "rocksdb",
		"state.backend.incremental": "true", "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := jobmanager.CheckpointSettingsFromConfig(job)
	if err != nil {
		t.Fatal(err)
	}
	want := jobmanager.CheckpointSettings{
		Interval: 2e9, Mode: jobmanager.AtLeastOnce, Timeout: 600e9, Retention: jobmanager.RetainOnCancellation,
		Dir: "/srv/ckpt", NumRetained: 3, SavepointsDir: "/srv/sp", Backend: "pebble", BackendAlias: "rocksdb", Incremental: true,
	}
	if s != want || !s.Enabled() {
		t.Errorf("settings:\n got %+v\nwant %+v", s, want)
	}
	if s, _ := jobmanager.CheckpointSettingsFromConfig(config.New()); s.Enabled() || s.Mode != jobmanager.ExactlyOnce || s.Dir != "" {
		t.Errorf("defaults: %+v", s)
	}
}

// submitGenerator submits a small bounded job with the given job settings.
func submitGenerator(t *testing.T, base string, settings map[string]string, extra map[string]any) (int, string) {
	t.Helper()
	req := map[string]any{"spec": "name: x\noperators:\n  - {name: g, type: generator, count: 10}\n  - {name: s, type: blackhole, input: g}\n", "config": settings}
	for k, v := range extra {
		req[k] = v
	}
	body, _ := json.Marshal(req)
	return do(t, "POST", base+"/jobs", "application/json", body)
}

// TestSubmitCheckpointChecks: what makes checkpoints impossible is refused at submit, each
// naming the key or path to fix; a job with checkpointing gets its private directory.
func TestSubmitCheckpointChecks(t *testing.T) {
	// No state.checkpoints.dir on the cluster.
	_, base := startCluster(t, nil)
	code, out := submitGenerator(t, base, map[string]string{"execution.checkpointing.interval": "1 s"}, nil)
	if code != http.StatusBadRequest || !strings.Contains(out, "execution.checkpointing.interval is 1 s but the cluster has no state.checkpoints.dir") {
		t.Errorf("interval without a checkpoint directory: %d %s", code, out)
	} else if rep := config.RepeatedKeys(out); len(rep) > 0 {
		t.Errorf("interval without a checkpoint directory: the error names %v more than once: %s", rep, out)
	}
	for _, iv := range []string{"50 ms", "0", "-5 s"} {
		code, out = submitGenerator(t, base, map[string]string{"execution.checkpointing.interval": iv}, nil)
		if code != http.StatusBadRequest || !strings.Contains(out, "execution.checkpointing.interval: ") || !strings.Contains(out, "is below the minimum of 100 ms") {
			t.Errorf("interval %s: %d %s", iv, code, out)
		}
	}
	// Without an interval nothing is needed.
	if code, out = submitGenerator(t, base, nil, nil); code != http.StatusAccepted {
		t.Errorf("job without checkpointing: %d %s", code, out)
	}

	// A checkpoint root that cannot be created: its parent is a file.
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.New()
	if err := cfg.Set("state.checkpoints.dir", "file://"+blocker+"/ckpt"); err != nil {
		t.Fatal(err)
	}
	_, base = startCluster(t, cfg)
	code, out = submitGenerator(t, base, map[string]string{"execution.checkpointing.interval": "1 s"}, nil)
	want := "state.checkpoints.dir " + blocker + "/ckpt: cannot create the job's directory: not a directory: the JobManager and every TaskManager must be able to write there"
	if code != http.StatusBadRequest || !strings.Contains(out, want) {
		t.Errorf("unusable checkpoint directory: %d %s\nwant %s", code, out, want)
	}

	// A usable one: the root and the job's directory are created 0700.
	root := filepath.Join(dir, "ckpt")
	cfg = config.New()
	if err := cfg.Set("state.checkpoints.dir", root); err != nil {
		t.Fatal(err)
	}
	_, base = startCluster(t, cfg)
	code, out = submitGenerator(t, base, map[string]string{"execution.checkpointing.interval": "1 s"}, nil)
	if code != http.StatusAccepted {
		t.Fatalf("job with checkpointing: %d %s", code, out)
	}
	var sub struct{ JobID string }
	_ = json.Unmarshal([]byte(out), &sub)
	for _, d := range []string{root, filepath.Join(root, sub.JobID)} {
		st, err := os.Stat(d)
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want a directory of mode 0700", d, st, err)
		}
	}
}

// TestSubmitSavepointPath: the submission fields are taken in both submission forms; a path
// without a _metadata is a 400 that says what to give instead.
func TestSubmitSavepointPath(t *testing.T) {
	_, base := startCluster(t, nil)
	missing := filepath.Join(t.TempDir(), "x")
	for _, p := range []string{missing, "file://" + missing, missing + "/_metadata"} {
		code, out := submitGenerator(t, base, nil, map[string]any{"savepointPath": p, "allowNonRestoredState": true})
		want := "savepoint " + p + ": no _metadata there (is it the savepoint directory printed by sluice savepoint?)"
		if code != http.StatusBadRequest || !strings.Contains(out, want) {
			t.Errorf("savepoint %s: %d %s\nwant %s", p, code, out, want)
		}
	}
	// A file where a directory is expected is no savepoint either.
	if code, out := submitGenerator(t, base, nil, map[string]any{"savepointPath": "/etc/hostname"}); code != http.StatusBadRequest || !strings.Contains(out, "no _metadata there") {
		t.Errorf("savepoint /etc/hostname: %d %s", code, out)
	}
	for _, p := range []string{"relative/sp", "s3://bucket/sp"} {
		if code, out := submitGenerator(t, base, nil, map[string]any{"savepointPath": p}); code != http.StatusBadRequest || !strings.Contains(out, `savepointPath: \"`+p+`\"`) {
			t.Errorf("savepoint %s: %d %s", p, code, out)
		}
	}
	sp := t.TempDir()
	if err := os.WriteFile(filepath.Join(sp, "_metadata"), []byte("metadata"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its content is read and verified at submit: garbage is refused, naming the file.
	if code, out := submitGenerator(t, base, nil, map[string]any{"savepointPath": sp}); code != http.StatusBadRequest || !strings.Contains(out, "checkpoint file _metadata") {
		t.Errorf("savepoint %s with a garbage _metadata: %d %s", sp, code, out)
	}
	// No symbolic link is followed to find it: not in the path, not as the _metadata, and a
	// _metadata that is no regular file is no savepoint.
	links := t.TempDir()
	if err := os.Symlink(sp, filepath.Join(links, "sp")); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(links, "linked-metadata")
	if err := os.Mkdir(linked, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(sp, "_metadata"), filepath.Join(linked, "_metadata")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(links, "sp"), filepath.Join(links, "sp", "_metadata"), linked} {
		if code, out := submitGenerator(t, base, nil, map[string]any{"savepointPath": p}); code != http.StatusBadRequest || !strings.Contains(out, "symbolic link") {
			t.Errorf("savepoint through a link %s: %d %s", p, code, out)
		}
	}
	dirMetadata := filepath.Join(links, "dir-metadata")
	if err := os.MkdirAll(filepath.Join(dirMetadata, "_metadata"), 0o700); err != nil {
		t.Fatal(err)
	}
	if code, out := submitGenerator(t, base, nil, map[string]any{"savepointPath": dirMetadata}); code != http.StatusBadRequest || !strings.Contains(out, "not a regular file") {
		t.Errorf("savepoint whose _metadata is a directory: %d %s", code, out)
	}
	if code, out := submitGenerator(t, base, nil, map[string]any{"allowNonRestoredState": "yes"}); code != http.StatusBadRequest {
		t.Errorf("allowNonRestoredState as a string: %d %s", code, out)
	}
}

// TestLocalClusterCheckpointsDir: sluice local's cluster keeps checkpoints in its work
// directory when state.checkpoints.dir is not set, and in the configured one when it is.
func TestLocalClusterCheckpointsDir(t *testing.T) {
	start := func(cfg *config.Config) string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := minicluster.Start(ctx, minicluster.Options{Config: cfg, TaskManagers: 1, Slots: 1, Stdout: io.Discard, DefaultCheckpointsDir: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		return "http://" + c.JM.RESTAddress()
	}
	if code, out := submitGenerator(t, start(nil), map[string]string{"execution.checkpointing.interval": "1 s"}, nil); code != http.StatusAccepted {
		t.Errorf("local cluster without state.checkpoints.dir: %d %s", code, out)
	}
	root := filepath.Join(t.TempDir(), "mine")
	cfg := config.New()
	if err := cfg.Set("state.checkpoints.dir", root); err != nil {
		t.Fatal(err)
	}
	code, out := submitGenerator(t, start(cfg), map[string]string{"execution.checkpointing.interval": "1 s"}, nil)
	var sub struct{ JobID string }
	_ = json.Unmarshal([]byte(out), &sub)
	if code != http.StatusAccepted || sub.JobID == "" {
		t.Fatalf("local cluster with state.checkpoints.dir: %d %s", code, out)
	}
	if st, err := os.Stat(filepath.Join(root, sub.JobID)); err != nil || !st.IsDir() {
		t.Errorf("the job's directory is not under the configured state.checkpoints.dir: %v", err)
	}
}

// TestSubmitSavepointPathParsedOnce: the path a submission names is
// authorized as file:<dir> after one parse (a file: URI's %-escapes
// decoded, then cleaned); the restore must read that directory, not parse
// the raw path again another way. Here the raw path decodes to in/sp, but
// read literally it is a directory below secret/ whose name is "%2e%2e".
func TestSubmitSavepointPathParsedOnce(t *testing.T) {
	_, base := startCluster(t, nil)
	root := t.TempDir()
	authorized := filepath.Join(root, "in", "sp")
	literal := filepath.Join(root, "secret", "%2e%2e", "in", "sp")
	if err := os.MkdirAll(authorized, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(authorized, "_metadata"), []byte("metadata"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Read literally, the path has a _metadata that is a directory.
	if err := os.MkdirAll(filepath.Join(literal, "_metadata"), 0o700); err != nil {
		t.Fatal(err)
	}
	raw := "file://" + filepath.Join(root, "secret") + "/%2e%2e/in/sp"
	code, out := submitGenerator(t, base, nil, map[string]any{"savepointPath": raw})
	if code != http.StatusBadRequest || !strings.Contains(out, "checkpoint file _metadata") || strings.Contains(out, "not a regular file") {
		t.Errorf("savepoint %s: %d %s\nwant the refusal of %s's garbage _metadata (the directory authorized), not of %s", raw, code, out, authorized, literal)
	}
}
