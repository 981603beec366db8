package dataflow

import (
	"errors"
	"io/fs"

	"github.com/sluice-dev/sluice/internal/security/fsguard"
)

// UnrecoverableError marks a failure that restarting the job cannot cure
// (Flink's SuppressRestartsException): a missing input, a path the job may
// not open, a refused credential. The job fails at once instead of
// spending its restart attempts.
type UnrecoverableError struct{ Err error }

func (e *UnrecoverableError) Error() string { return e.Err.Error() }
func (e *UnrecoverableError) Unwrap() error { return e.Err }

// Unrecoverable wraps err as an UnrecoverableError.
func Unrecoverable(err error) error {
	if err == nil {
		return nil
	}
	return &UnrecoverableError{err}
}

// IsUnrecoverable reports whether a task's failure would happen again on
// restart: an UnrecoverableError, or a job data file that does not exist,
// may not be opened, or is refused by the job's grants.
func IsUnrecoverable(err error) bool {
	var ue *UnrecoverableError
	return errors.As(err, &ue) ||
		errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) ||
		errors.Is(err, fsguard.ErrSymlink) || errors.Is(err, fsguard.ErrNotGranted)
}
