package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// TestCheckpointSettingsAtStartup: the checkpoint key and directories are checked when a
// JobManager or TaskManager starts, before it binds a port or joins a cluster, and a bad one
// stops it with an error naming the key and what to do. A good key starts both.
func TestCheckpointSettingsAtStartup(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, size), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.key", 32, 0o600)
	loose := write("loose.key", 32, 0o644)
	groupReadable := write("group.key", 32, 0o640)
	short := write("short.key", 16, 0o600)
	hex := write("hex.key", 64, 0o600)
	const keyFile = "state.checkpoints.encryption.key-file"
	errLine := regexp.MustCompile(`(?m)^error: .*$`)
	for _, tc := range []struct {
		define, key, want string
	}{
		{keyFile + "=" + loose, keyFile, "mode 0644 lets group or others access the checkpoint key: run chmod 600"},
		{keyFile + "=" + groupReadable, keyFile, "mode 0640"},
		{keyFile + "=" + short, keyFile, "16 bytes, want exactly 32 raw bytes"},
		{keyFile + "=" + hex, keyFile, "looks like hex text"},
		{keyFile + "=" + filepath.Join(dir, "none.key"), keyFile, "no such file or directory"},
		{keyFile + "=" + dir, keyFile, "not a regular file"},
		{"state.checkpoints.dir=s3://bucket/ckpt", "state.checkpoints.dir", "NFS"},
		{"state.savepoints.dir=hdfs://nn/sp", "state.savepoints.dir", "NFS"},
		{"state.checkpoints.dir=ckpt", "state.checkpoints.dir", "not an absolute path"},
	} {
		for _, role := range []string{"jobmanager", "taskmanager"} {
			args := []string{role, "--work-dir", t.TempDir(), "-D", "rest.port=0", "-D", "jobmanager.rpc.port=1", "-D", "blob.server.port=0",
				"-D", "taskmanager.registration.timeout=2 s", "-D", tc.define}
			p := startProc(t, role, args...)
			if code := waitExit(t, p, 30*time.Second); code == 0 {
				t.Errorf("%s -D %s started", role, tc.define)
				continue
			}
			msg := errLine.FindString(p.Log())
			if !config.NamesKey(msg, tc.key) || !strings.Contains(msg, tc.want) {
				t.Errorf("%s -D %s: want an error naming %s and saying %q:\n%s", role, tc.define, tc.key, tc.want, p.Log())
			}
			if rep := config.RepeatedKeys(msg); len(rep) > 0 {
				t.Errorf("%s -D %s: the error names %s more than once: %s", role, tc.define, strings.Join(rep, ", "), msg)
			}
			if strings.Contains(p.Log(), "started") || strings.Contains(p.Log(), "registered") {
				t.Errorf("%s -D %s: started before refusing:\n%s", role, tc.define, p.Log())
			}
		}
	}

	// A checkpoint interval for every job on a cluster with nowhere to write checkpoints.
	p := startProc(t, "jobmanager", "jobmanager", "--work-dir", t.TempDir(), "-D", "rest.port=0", "-D", "jobmanager.rpc.port=0",
		"-D", "blob.server.port=0", "-D", "execution.checkpointing.interval=1 s")
	if code := waitExit(t, p, 30*time.Second); code == 0 || !strings.Contains(errLine.FindString(p.Log()),
		"execution.checkpointing.interval is set in the cluster's configuration but state.checkpoints.dir is not") {
		t.Errorf("a cluster interval without state.checkpoints.dir: exit %d:\n%s", code, p.Log())
	} else if rep := config.RepeatedKeys(errLine.FindString(p.Log())); len(rep) > 0 {
		t.Errorf("a cluster interval without state.checkpoints.dir: the error names %s more than once", strings.Join(rep, ", "))
	}

	// A private key of 32 bytes: the cluster starts and its TaskManagers register.
	startCluster(t, 1, 1, keyFile+"="+good, "state.checkpoints.dir="+filepath.Join(dir, "ckpt"))
}
