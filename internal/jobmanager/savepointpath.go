package jobmanager

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/config"
)

// savepointDir is the directory of the savepoint a submission names
// (sluice run --fromSavepoint PATH): PATH is the savepoint's directory (or
// a retained checkpoint's chk-N), its _metadata, or a file: URI of either.
// It reads nothing: the caller authorizes reading the directory first, so
// the answer cannot tell a caller what exists where it may not read.
func savepointDir(raw string) (string, error) {
	p, err := config.LocalDir(raw)
	if err != nil {
		// LocalDir's error quotes the path; this names the field that holds it.
		return "", fmt.Errorf("savepointPath: %w", err)
	}
	if filepath.Base(p) == checkpoint.MetadataName {
		p = filepath.Dir(p)
	}
	return p, nil
}

// resolveSavepoint checks that the savepoint a submission names is there
// and returns its directory. Its contents are checked when the job is
// restored.
func resolveSavepoint(raw string) (string, error) {
	dir, err := savepointDir(raw)
	if err != nil {
		return "", err
	}
	st, err := os.Lstat(filepath.Join(dir, checkpoint.MetadataName))
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return "", fmt.Errorf("savepoint %s: no %s there (is it the savepoint directory printed by sluice savepoint?)", raw, checkpoint.MetadataName)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("savepoint %s: cannot read its %s: %w: the JobManager and every TaskManager must be able to read the savepoint", raw, checkpoint.MetadataName, err)
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("savepoint %s: its %s is not a regular file (a link or a directory): give the directory sluice savepoint printed", raw, checkpoint.MetadataName)
	}
	return dir, nil
}
