package jobmanager

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// runJobStore removes finished jobs after jobstore.expiration-time, and the
// oldest finished jobs beyond jobstore.max-capacity, with their blobs. It
// first deletes the blobs no job uses, left by an earlier JobManager in a
// persistent work directory: jobs are not kept across restarts.
func (jm *JobManager) runJobStore(ctx context.Context) {
	defer jm.bg.Done()
	jm.collectBlobs()
	// Check often enough that a job outlives its expiration by at most a
	// quarter of it (and never more than a second).
	period := min(max(jm.jobExpiration/4, 50*time.Millisecond), time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if jm.expireJobs(now) > 0 {
				jm.collectBlobs()
			}
		}
	}
}

// expireJobs removes the finished jobs that expired or exceed the capacity
// and returns how many it removed.
func (jm *JobManager) expireJobs(now time.Time) int {
	type removal struct {
		id, name, state, why string
	}
	var removed []removal
	jm.mu.Lock()
	var finished []*job
	for _, j := range jm.jobs {
		if j.state.Terminal() {
			finished = append(finished, j)
		}
	}
	// Oldest first, so capacity evicts the job that ended first.
	slices.SortFunc(finished, func(a, b *job) int {
		if c := a.end.Compare(b.end); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	kept := finished[:0]
	for _, j := range finished {
		if now.Sub(j.end) >= jm.jobExpiration {
			delete(jm.jobs, j.id)
			removed = append(removed, removal{j.id, j.name, string(j.state), fmt.Sprintf("ended %s ago (jobstore.expiration-time %s)", now.Sub(j.end).Round(time.Millisecond), jm.jobExpiration)})
			continue
		}
		kept = append(kept, j)
	}
	for len(kept) > jm.jobCapacity {
		j := kept[0]
		kept = kept[1:]
		delete(jm.jobs, j.id)
		removed = append(removed, removal{j.id, j.name, string(j.state), fmt.Sprintf("more than %d finished jobs (jobstore.max-capacity)", jm.jobCapacity)})
	}
	jm.mu.Unlock()
	for _, r := range removed {
		jm.log.Info("job removed from the job store", "job", r.id, "name", r.name, "state", r.state, "reason", r.why)
	}
	return len(removed)
}

// collectBlobs deletes every blob that no job the JobManager knows uses.
// blobMu keeps a submission's blobs from being collected between their
// storing and the job's registration.
func (jm *JobManager) collectBlobs() {
	jm.blobMu.Lock()
	defer jm.blobMu.Unlock()
	keys, err := jm.blobs.Keys()
	if err != nil {
		jm.log.Warn("could not list the blob store to delete the blobs of removed jobs", "err", err)
		return
	}
	used := map[string]bool{}
	jm.mu.Lock()
	for _, j := range jm.jobs {
		for k := range j.blobKeys() {
			used[k] = true
		}
	}
	jm.mu.Unlock()
	deleted := 0
	for _, k := range keys {
		if used[k] {
			continue
		}
		if err := jm.blobs.Delete(k); err != nil {
			jm.log.Warn("could not delete an unused blob", "blob", k, "err", err)
			continue
		}
		deleted++
	}
	if deleted > 0 {
		jm.log.Info("deleted blobs no job uses", "blobs", deleted, "dir", jm.blobs.Dir())
	}
}

// blobKeys returns the keys of the blobs a job uses: its spec and its
// attached files.
func (j *job) blobKeys() map[string]bool {
	keys := map[string]bool{j.specKey: true}
	for _, k := range j.files {
		keys[k] = true
	}
	return keys
}
