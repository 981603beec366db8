// Package ha holds the JobManager's high-availability services: leader
// election, the store of submitted jobs, the pointers to each job's latest
// completed checkpoint and the publication of the leader's address, behind
// interfaces with one implementation per coordination system
// (high-availability.type: kubernetes in ha/kubernetes).
//
// The model is Flink's: small metadata (the leader's address, which jobs
// exist, which checkpoint is the latest) lives in the coordination system,
// large state (the submitted jobs' specs and files) in files under
// high-availability.storageDir, and every write is guarded by leadership so
// a deposed leader cannot overwrite what its successor recovered.
package ha

import (
	"context"
	"errors"
	"time"
)

// ErrNotLeader is returned by a write of a JobManager that does not lead
// (any more): another JobManager owns the metadata now.
var ErrNotLeader = errors.New("not the leader: another JobManager holds leadership of this cluster (high-availability)")

// LeaderInfo is what the leading JobManager publishes about itself, for
// TaskManagers and clients to find it.
type LeaderInfo struct {
	// Identity is the leader's election identity (its pod name and a
	// random suffix), unique per process.
	Identity string `json:"identity"`
	// RPCAddress is the control plane's host:port (TaskManagers register
	// and join there).
	RPCAddress string `json:"rpcAddress"`
	// RESTAddress is the first REST listener's host:port.
	RESTAddress string `json:"restAddress,omitempty"`
}

// CheckpointPointer points at a job's latest completed checkpoint: its
// directory (holding _metadata) under state.checkpoints.dir.
type CheckpointPointer struct {
	ID   int64  `json:"id"`
	Path string `json:"path"`
}

// JobResult records that a job ended for good: Flink's JobResultStore
// entry. A successor never runs a job that has one, even when the job's
// submission is still stored (the leader died between the end and the
// clean-up) or its application cluster submits it again.
type JobResult struct {
	ID    string    `json:"id"`
	State string    `json:"state"`
	Cause string    `json:"cause,omitempty"`
	Ended time.Time `json:"ended"`
}

// Services are the high-availability services of one cluster
// (high-availability.cluster-id).
type Services interface {
	// Campaign blocks until this process leads the cluster, or ctx ends.
	// The Leadership's context is cancelled when leadership is lost.
	Campaign(ctx context.Context, identity string) (Leadership, error)
	// Leader returns the address the current leader published; ok is
	// false when none is published yet.
	Leader(ctx context.Context) (info LeaderInfo, ok bool, err error)
}

// Leadership is held by the leading JobManager. Every write checks that it
// still leads and fails with ErrNotLeader otherwise.
type Leadership interface {
	// Context is cancelled when leadership is lost (or resigned): the
	// JobManager must stop acting as the leader.
	Context() context.Context
	// Claim takes over the metadata of the cluster and of every job after
	// an election, so that writes of the previous leader still in flight
	// are refused from now on. Call it before reading jobs or pointers.
	Claim(ctx context.Context) error
	// PublishLeader publishes the leader's addresses.
	PublishLeader(ctx context.Context, info LeaderInfo) error
	// PutJob stores a submitted job (its encoding is the JobManager's).
	PutJob(ctx context.Context, id string, data []byte) error
	// RemoveJob forgets a job that reached a terminal state, with its
	// checkpoint pointer.
	RemoveJob(ctx context.Context, id string) error
	// Jobs returns every stored job by id.
	Jobs(ctx context.Context) (map[string][]byte, error)
	// PutCheckpoint records cp as the latest completed checkpoint of job.
	// A checkpoint counts as completed for recovery only once this
	// returned nil: its completion is not announced to the tasks (sinks do
	// not commit) before.
	PutCheckpoint(ctx context.Context, job string, cp CheckpointPointer) error
	// LatestCheckpoint returns the latest completed checkpoint of job.
	LatestCheckpoint(ctx context.Context, job string) (cp CheckpointPointer, ok bool, err error)
	// PutJobResult records the job's result and then forgets the job (its
	// stored submission and checkpoint pointer): once it returned nil, no
	// successor runs the job again.
	PutJobResult(ctx context.Context, r JobResult) error
	// JobResults returns the recorded results by job id.
	JobResults(ctx context.Context) (map[string]JobResult, error)
	// PutCARegistry stores the automatic cluster CA's registry (join-token
	// records and revoked certificates, encoded by the CA), so a successor
	// honours its predecessor's revocations and tokens.
	PutCARegistry(ctx context.Context, data []byte) error
	// CARegistry reads what PutCARegistry stored; ok is false when nothing is.
	CARegistry(ctx context.Context) (data []byte, ok bool, err error)
	// Resign gives leadership up (on shutdown), so a standby takes over at
	// once instead of after the lease expires.
	Resign()
}
