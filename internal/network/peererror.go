package network

import "errors"

// PeerError is a failure a task sees because the task at the other end of
// a channel failed or went away: a symptom of another failure, not its
// cause. The JobManager prefers any other failure of the same attempt as
// the job's root cause.
type PeerError struct{ Err error }

func (e *PeerError) Error() string { return e.Err.Error() }
func (e *PeerError) Unwrap() error { return e.Err }

// CausedByPeer reports whether err is, or wraps, a PeerError.
func CausedByPeer(err error) bool {
	var pe *PeerError
	return errors.As(err, &pe)
}
