package jobmanager

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/authz"
	"github.com/sluice-dev/sluice/internal/security/fsguard"
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
// and returns its directory. It opens the _metadata as a restore reads
// checkpoint files (fsguard's ReadTree: no symbolic link anywhere on the
// path), so an authorized path cannot be used to learn what lies behind a
// link. Its contents are checked when the job is restored.
func resolveSavepoint(raw string) (string, error) {
	dir, err := savepointDir(raw)
	if err != nil {
		return "", err
	}
	err = openMetadata(dir)
	var link *fsguard.SymlinkError
	switch {
	case err == nil:
		return dir, nil
	case errors.As(err, &link):
		return "", fmt.Errorf("savepoint %s: %s is a symbolic link, and no link is followed to read a savepoint: give the real path", raw, link.Link)
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return "", fmt.Errorf("savepoint %s: no %s there (is it the savepoint directory printed by sluice savepoint?)", raw, checkpoint.MetadataName)
	case errors.Is(err, fs.ErrPermission):
		return "", fmt.Errorf("savepoint %s: cannot read its %s: permission denied: the JobManager and every TaskManager must be able to read the savepoint", raw, checkpoint.MetadataName)
	}
	return "", fmt.Errorf("savepoint %s: %w (is it the savepoint directory printed by sluice savepoint?)", raw, err)
}

// openMetadata opens dir/_metadata through a ReadTree grant on dir.
func openMetadata(dir string) error {
	g, err := fsguard.New([]fsguard.Grant{{Path: dir, Mode: fsguard.ReadTree}})
	if err != nil {
		return err
	}
	tree, err := g.OpenTree(dir, fsguard.ReadTree)
	if err != nil {
		return err
	}
	defer tree.Close()
	f, err := tree.Open(checkpoint.MetadataName)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkSavepointTarget refuses a savepoint target directory a request
// names inside the cluster's own storage: state.checkpoints.dir (every
// job's checkpoints: a savepoint there would sit in another job's private
// directory and be deleted with its checkpoints) and the JobManager's
// working directory. The data-level check decides who may write where;
// this holds even for a caller allowed to write there, since no job's
// data belongs in them. Links are not followed when the savepoint is
// created, so the paths compared are the ones written to.
func (jm *JobManager) checkSavepointTarget(target string, j *job) error {
	for _, d := range []struct{ dir, what string }{
		{jm.set.CheckpointsDir, config.CheckpointsDirKey + " (the cluster's checkpoints)"},
		{j.checkpoints.Dir, config.CheckpointsDirKey + " (the job's checkpoints)"},
		{jm.workDir, "the JobManager's working directory"},
	} {
		if d.dir != "" && within(target, d.dir) {
			return fmt.Errorf("target-directory %s is inside %s %s: savepoints go to a directory of their own; give another target-directory or leave it out to use %s", target, d.what, d.dir, config.SavepointsDirKey)
		}
	}
	return nil
}

// within reports whether the clean absolute path p is dir or below it (a
// relative dir, as --work-dir may be, is taken from the current directory).
func within(p, dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// mayRestoreCheckpoint decides a restore from inside state.checkpoints.dir
// (a retained checkpoint, <dir>/<job id>/chk-N): that is another job's
// state, so besides read on the path (decided before) the caller must be
// allowed to view that job, as for its other data through the REST API. A
// path there that names no job the JobManager knows is refused: restore a
// savepoint instead.
func (rs *restServer) mayRestoreCheckpoint(r *http.Request, dir string) (bool, string, error) {
	root := rs.jm.set.CheckpointsDir
	if root == "" || !within(dir, root) {
		return true, "", nil
	}
	rel, _ := filepath.Rel(root, dir)
	jobID, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	acl := rs.jm.jobACL(jobID)
	if jobID == "." || acl == nil {
		return false, fmt.Sprintf("savepointPath %s is inside %s %s but is no checkpoint of a job this JobManager knows: restore from a savepoint (sluice savepoint, sluice stop) instead", dir, config.CheckpointsDirKey, root), nil
	}
	a := attributes(r, authz.VerbView, "job/"+jobID)
	a.Job = acl
	ok, reason, _, err := rs.sec.authz.decide(r.Context(), a, true)
	if err != nil || ok {
		return ok, "", err
	}
	return false, fmt.Sprintf("savepointPath %s is a checkpoint of job %s, whose state %s may not view: %s", dir, jobID, a.User, reason), nil
}
