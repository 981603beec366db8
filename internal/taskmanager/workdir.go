package taskmanager

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// workDir returns the TaskManager's work directory: dir when given (the
// --work-dir flag), else <process.taskmanager.working-dir>/taskmanager-<id>
// (the key falls back to process.working-dir; the subdirectory keeps
// processes sharing the base apart), else a new temporary directory, which
// temporary reports: it is removed when the TaskManager stops.
func workDir(base, dir, id string) (path string, temporary bool, err error) {
	if dir == "" {
		if base != "" {
			if strings.ContainsAny(id, `/\`) || id == ".." {
				return "", false, fmt.Errorf("process.taskmanager.working-dir: the taskmanager id %q cannot name a directory; use --work-dir or an id without / and \\", id)
			}
			dir = filepath.Join(base, "taskmanager-"+id)
		}
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", false, fmt.Errorf("work directory (--work-dir or process.taskmanager.working-dir): %w", err)
		}
		return dir, false, nil
	}
	d, err := os.MkdirTemp("", "sluice-tm-")
	if err != nil {
		return "", false, fmt.Errorf("create a temporary work directory (set process.taskmanager.working-dir or --work-dir to use another): %w", err)
	}
	return d, true, nil
}

// removeTempDir removes a temporary work directory once every task ended.
func (tm *TaskManager) removeTempDir() {
	if tm.tempDir == "" {
		return
	}
	if err := os.RemoveAll(tm.tempDir); err != nil {
		tm.log.Warn("could not remove the temporary work directory", "dir", tm.tempDir, "err", err)
	}
}
