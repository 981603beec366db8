// Package checkpoint holds what checkpoints and savepoints are made of:
// the directory layout, the _metadata document, and the assignment of a
// snapshot's state to the subtasks of a restored job (at any parallelism).
//
// Layout (docs/architecture.md, "Layout and permissions"):
//
//	<state.checkpoints.dir>/<job-id>/        0700, one job's checkpoints
//	    chk-17/_metadata                     written last, by the JobManager
//	    chk-17/3-0-keyed  chk-17/3-0-operator  chk-17/5-1-pebble/…
//	    shared/9f3c21aa-000123.sst           referenced by several checkpoints
//	<savepoint dir>/savepoint-<job id[:6]>-<12 hex>/
//	    _metadata  3-0-keyed  3-0-operator   self-contained, relocatable
//
// Paths in _metadata are relative to the snapshot's root (the job directory
// for a checkpoint, the savepoint directory for a savepoint) and are
// checked component by component wherever they are read.
package checkpoint

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	// MetadataName is the name of a snapshot's _metadata file.
	MetadataName = "_metadata"
	// SharedDir is the job directory's directory of files shared by
	// several checkpoints (pebble incremental SSTs).
	SharedDir = "shared"
	// checkpointPrefix starts a checkpoint's directory name: chk-<id>.
	checkpointPrefix = "chk-"
	// savepointPrefix starts a savepoint's directory name.
	savepointPrefix = "savepoint-"

	maxJobIDLen = 64
	// MaxPathLen bounds a relative path in _metadata.
	MaxPathLen = 1024
	// maxComponentLen is NAME_MAX on Linux.
	maxComponentLen = 255
)

// CheckJobID checks that a job id can name the job's directory: 1 to 64
// letters, digits, '-' or '_', not starting with '-'. The JobManager's ids
// (32 hex digits) always are; anything else is refused rather than
// interpreted as a path.
func CheckJobID(id string) error {
	if id == "" || len(id) > maxJobIDLen || id[0] == '-' {
		return fmt.Errorf("job id %q: want 1..%d letters, digits, '-' or '_'", id, maxJobIDLen)
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return fmt.Errorf("job id %q: want 1..%d letters, digits, '-' or '_'", id, maxJobIDLen)
		}
	}
	return nil
}

// JobDir is a job's checkpoint directory: <root>/<job-id>. root is
// state.checkpoints.dir, absolute (a file:// URI is resolved by the caller).
func JobDir(root, jobID string) (string, error) {
	if !filepath.IsAbs(root) {
		return "", fmt.Errorf("state.checkpoints.dir %q is not an absolute path: use file:///path or /path", root)
	}
	if err := CheckJobID(jobID); err != nil {
		return "", err
	}
	return filepath.Join(filepath.Clean(root), jobID), nil
}

// CheckpointDir is the name of checkpoint id's directory in the job
// directory: chk-<id>.
func CheckpointDir(id int64) string { return checkpointPrefix + strconv.FormatInt(id, 10) }

// ParseCheckpointDir returns the id of a chk-<id> directory name, or false
// if name is not one (temporary files, shared/, anything else).
func ParseCheckpointDir(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, checkpointPrefix)
	if !ok || s == "" || s[0] == '0' || s[0] == '+' {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// CheckpointFile is the path, relative to the job directory, of a file of
// checkpoint id: chk-<id>/<name>.
func CheckpointFile(id int64, name string) string { return CheckpointDir(id) + "/" + name }

// SharedFile is the path, relative to the job directory, of a shared file.
func SharedFile(name string) string { return SharedDir + "/" + name }

// File kinds of StateFile.
const (
	KindKeyed    = "keyed"    // kg-stream keyed state
	KindOperator = "operator" // operator list states
	KindPebble   = "pebble"   // a directory of pebble's private files
)

// StateFile names a subtask's state file in a snapshot directory:
// <operator index>-<subtask>-<kind>, e.g. 3-0-keyed. The index is the
// operator's position in the spec.
func StateFile(operatorIndex, subtask int, kind string) string {
	return strconv.Itoa(operatorIndex) + "-" + strconv.Itoa(subtask) + "-" + kind
}

// SavepointDir is a new savepoint directory name for a job:
// savepoint-<job id[:6]>-<12 random hex digits>, as Flink names them.
func SavepointDir(jobID string) (string, error) {
	if err := CheckJobID(jobID); err != nil {
		return "", err
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return savepointPrefix + jobID[:min(6, len(jobID))] + "-" + hex.EncodeToString(b), nil
}

// CheckRelPath checks a path of _metadata (or of an acknowledgement)
// component by component: relative, slash-separated, no empty, "." or ".."
// component, no NUL or backslash, bounded. Nothing else is ever joined to a
// snapshot's root.
func CheckRelPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	if len(p) > MaxPathLen {
		return fmt.Errorf("path of %d bytes: at most %d", len(p), MaxPathLen)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is absolute: paths are relative to the snapshot's directory", p)
	}
	for _, c := range strings.Split(p, "/") {
		if err := checkComponent(c); err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
	}
	return nil
}

func checkComponent(c string) error {
	switch {
	case c == "" || c == "." || c == "..":
		return fmt.Errorf("component %q is empty, \".\" or \"..\"", c)
	case len(c) > maxComponentLen:
		return fmt.Errorf("component of %d bytes: at most %d", len(c), maxComponentLen)
	case strings.ContainsAny(c, "\x00\\"):
		return fmt.Errorf("component %q contains NUL or a backslash", c)
	}
	for _, r := range c {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("component %q contains a control character", c)
		}
	}
	return nil
}

// CheckSnapshotPath checks that a state file path belongs to checkpoint
// id of the job directory — under chk-<id>/ or shared/ — or, for a
// savepoint, is a plain name (possibly a pebble directory's file below one
// plain name: savepoints are canonical, so in practice plain names). The
// JobManager checks every path an acknowledgement carries with it before
// the path enters _metadata.
func CheckSnapshotPath(p string, id int64, savepoint bool) error {
	if err := CheckRelPath(p); err != nil {
		return err
	}
	if p == MetadataName || strings.HasSuffix(p, "/"+MetadataName) {
		return fmt.Errorf("path %q: %s is written by the JobManager only", p, MetadataName)
	}
	if savepoint {
		if strings.Contains(p, "/") {
			return fmt.Errorf("path %q: a savepoint's files are plain names in its directory", p)
		}
		return nil
	}
	first, rest, _ := strings.Cut(p, "/")
	if rest == "" || (first != CheckpointDir(id) && first != SharedDir) {
		return fmt.Errorf("path %q: want %s/<file> or %s/<file> for checkpoint %d", p, CheckpointDir(id), SharedDir, id)
	}
	return nil
}
