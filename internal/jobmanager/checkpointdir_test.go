package jobmanager

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestJobDirError: the refusal says the path, the system's reason and what must hold. (A
// refused mkdir cannot be provoked when the tests run as root, so the error is built here.)
func TestJobDirError(t *testing.T) {
	err := jobDirError("/srv/ckpt", &fs.PathError{Op: "mkdir", Path: "/srv/ckpt/5d1f", Err: syscall.EACCES})
	want := "state.checkpoints.dir /srv/ckpt: cannot create the job's directory: permission denied: the JobManager and every TaskManager must be able to write there"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
}

// TestCreateJobCheckpointDir: an existing job directory is reused only if private.
func TestCreateJobCheckpointDir(t *testing.T) {
	root := t.TempDir()
	dir, err := createJobCheckpointDir(root, "0123abcd")
	if err != nil || dir != filepath.Join(root, "0123abcd") {
		t.Fatalf("%q %v", dir, err)
	}
	if _, err := createJobCheckpointDir(root, "0123abcd"); err != nil {
		t.Errorf("existing private directory: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := createJobCheckpointDir(root, "0123abcd"); err == nil || !strings.Contains(err.Error(), "mode 0755") {
		t.Errorf("existing directory open to others: %v", err)
	}
	if _, err := createJobCheckpointDir(root, "../x"); err == nil || !strings.Contains(err.Error(), "job id") {
		t.Errorf("job id with a path: %v", err)
	}
}
