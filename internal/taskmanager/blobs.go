package taskmanager

import (
	"fmt"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// blobOwner names a job attempt as an owner of cached blobs: its blobs stay
// in the cache while any task of the attempt runs here.
func blobOwner(d *controlpb.TaskDeployment) string {
	return ownerOf(attemptKey{d.JobId, int(d.Attempt)})
}

func ownerOf(k attemptKey) string { return fmt.Sprintf("%s/%d", k.job, k.attempt) }

// releaseBlobs deletes from the cache the blobs of a job attempt whose last
// task here ended, unless another attempt or job uses them: a TaskManager
// keeps a job's artifacts no longer than it runs the job.
func (tm *TaskManager) releaseBlobs(k attemptKey) {
	if err := tm.cache.Release(ownerOf(k)); err != nil {
		tm.log.Warn("could not delete the cached blobs of a job", "job", k.job, "attempt", k.attempt, "err", err)
	}
}
