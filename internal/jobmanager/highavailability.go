package jobmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/ha"
	"github.com/sluice-dev/sluice/internal/security/authz"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// haJob is a submitted job as the high-availability job store keeps it:
// everything a successor needs to run it again under the same id.
type haJob struct {
	ID                    string            `json:"id"`
	Spec                  []byte            `json:"spec"`
	Params                map[string]string `json:"params,omitempty"`
	Files                 map[string][]byte `json:"files,omitempty"`
	Parallelism           int               `json:"parallelism"`
	ACL                   authz.JobACL      `json:"acl"`
	Config                map[string]string `json:"config,omitempty"`
	SavepointPath         string            `json:"savepointPath,omitempty"`
	AllowNonRestoredState bool              `json:"allowNonRestoredState,omitempty"`
	Submitted             time.Time         `json:"submitted"`
	// ShippedTokens are the services whose delegation tokens the client shipped with the job
	// (kinit-only mode). The tokens themselves are secrets and are never stored: a successor
	// cannot run the job without them.
	ShippedTokens []string `json:"shippedTokens,omitempty"`
}

// haTimeout bounds each call to the high-availability services.
const haTimeout = 30 * time.Second

// recovery is how a stored job is submitted again by a new leader.
type recovery struct {
	// store: the job is new (an application cluster's job under its fixed
	// id) and is stored like any submission.
	store     bool
	id        string
	submitted time.Time
	pointer   *ha.CheckpointPointer // latest completed checkpoint; nil: none
}

// startLeading takes over the cluster's metadata, publishes this
// JobManager's addresses and recovers the stored jobs.
func (jm *JobManager) startLeading(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, haTimeout)
	defer cancel()
	if err := jm.ha.Claim(cctx); err != nil {
		return fmt.Errorf("take over the high-availability metadata: %w", err)
	}
	info := ha.LeaderInfo{RPCAddress: jm.rpcAddr}
	if len(jm.listeners) > 0 {
		info.RESTAddress = jm.RESTAddress()
	}
	if err := jm.ha.PublishLeader(cctx, info); err != nil {
		return fmt.Errorf("publish the leader's address: %w", err)
	}
	jm.log.Info("leading the cluster (high-availability): address published", "rpc", info.RPCAddress, "rest", info.RESTAddress)
	results, err := jm.ha.JobResults(cctx)
	if err != nil {
		return fmt.Errorf("read the results of ended jobs (high-availability): %w", err)
	}
	jm.mu.Lock()
	jm.results = results
	jm.mu.Unlock()
	stored, err := jm.ha.Jobs(cctx)
	if err != nil {
		return fmt.Errorf("read the stored jobs (high-availability): %w", err)
	}
	ids := make([]string, 0, len(stored))
	for id := range stored {
		if r, ended := results[id]; ended {
			// The previous leader recorded the end but died before it
			// forgot the job: finish its clean-up, never run it again.
			jm.log.Info("stored job already ended (its result is recorded); not recovered", "job", id, "state", r.State)
			if err := jm.ha.PutJobResult(cctx, r); err != nil {
				jm.log.Warn("cannot clean up an ended job in the high-availability store", "job", id, "err", err)
			}
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := jm.recoverJob(cctx, id, stored[id]); err != nil {
			// One broken job must not keep the others from running; it
			// stays stored, so an operator can inspect it.
			jm.log.Error("cannot recover a stored job; it is left in the high-availability store", "job", id, "err", err)
		}
	}
	return nil
}

// recoverJob submits a stored job again under its id, restoring its latest
// completed checkpoint (else the savepoint it was submitted with).
func (jm *JobManager) recoverJob(ctx context.Context, id string, data []byte) error {
	var rec haJob
	if err := json.Unmarshal(data, &rec); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if rec.ID != id {
		return fmt.Errorf("stored under %s but names job %s", id, rec.ID)
	}
	if len(rec.ShippedTokens) > 0 {
		// Without the client's tokens the job would fail at its first connection, or run
		// with credentials the client never gave it: end it with the reason instead, once.
		cause := fmt.Sprintf("not recovered after a JobManager failover: its %s delegation tokens were shipped by the client (kinit-only mode) and are not kept in the high-availability store; submit it again with sluice run --kerberos",
			strings.Join(rec.ShippedTokens, ", "))
		jm.log.Error("stored job not recovered", "job", id, "reason", cause)
		return jm.ha.PutJobResult(ctx, ha.JobResult{ID: id, State: string(Failed), Cause: cause, Ended: time.Now()})
	}
	r := &recovery{id: id, submitted: rec.Submitted}
	ptr, ok, err := jm.ha.LatestCheckpoint(ctx, id)
	if err != nil {
		return err
	}
	if ok {
		r.pointer = &ptr
	}
	s := Submission{
		Spec: rec.Spec, Params: rec.Params, Files: rec.Files, Parallelism: rec.Parallelism, ACL: rec.ACL,
		Config: rec.Config, SavepointPath: rec.SavepointPath, AllowNonRestoredState: rec.AllowNonRestoredState,
	}
	if _, _, err := jm.submitWith(s, r); err != nil {
		return err
	}
	from := "its start (no checkpoint completed)"
	if r.pointer != nil {
		from = fmt.Sprintf("checkpoint %d (%s)", r.pointer.ID, r.pointer.Path)
	}
	jm.log.Info("job recovered from the high-availability store", "job", id, "restores", from)
	return nil
}

// storeJob records a new submission for a successor (before it runs).
func (jm *JobManager) storeJob(id string, s Submission, now time.Time) error {
	data, err := json.Marshal(haJob{
		ID: id, Spec: s.Spec, Params: s.Params, Files: s.Files, Parallelism: s.Parallelism, ACL: s.ACL,
		Config: s.Config, SavepointPath: s.SavepointPath, AllowNonRestoredState: s.AllowNonRestoredState, Submitted: now,
		ShippedTokens: shippedServices(s.Tokens),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(jm.ctx, haTimeout)
	defer cancel()
	if err := jm.ha.PutJob(ctx, id, data); err != nil {
		return fmt.Errorf("store the job for high availability: %w", err)
	}
	return nil
}

// forgetWhenDone removes a job from the high-availability store once it
// ended for good; not when this JobManager only stops leading.
func (jm *JobManager) forgetWhenDone(j *job) {
	jm.spawn(func() {
		select {
		case <-j.done:
		case <-jm.ctx.Done():
			return
		}
		if jm.suspending.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(jm.ctx, haTimeout)
		defer cancel()
		jm.mu.Lock()
		res := ha.JobResult{ID: j.id, State: string(j.state), Cause: j.cause, Ended: time.Now().UTC()}
		jm.mu.Unlock()
		// The result first (with the job's removal, in one write): a
		// successor that finds it never runs the job again, even an
		// application cluster's job its Deployment would submit anew.
		if err := jm.ha.PutJobResult(ctx, res); err != nil {
			if errors.Is(err, ha.ErrNotLeader) {
				// The next leader runs the job again from its latest
				// checkpoint; a finished job's sinks committed already.
				jm.log.Warn("ended job left in the high-availability store: this JobManager no longer leads", "job", j.id, "err", err)
				return
			}
			jm.log.Warn("cannot remove an ended job from the high-availability store", "job", j.id, "err", err)
			return
		}
		jm.mu.Lock()
		if jm.results == nil {
			jm.results = map[string]ha.JobResult{}
		}
		jm.results[j.id] = res
		if jm.resultRecorded != nil {
			close(jm.resultRecorded)
			jm.resultRecorded = nil
		}
		jm.mu.Unlock()
		jm.log.Info("ended job's result recorded and the job removed from the high-availability store", "job", j.id, "state", res.State)
	})
}

// recordCheckpoint is the coordinator's Record hook under high
// availability: the checkpoint counts once its pointer is stored.
func (jm *JobManager) recordCheckpoint(jobID string) func(context.Context, *checkpoint.CompletedCheckpoint) error {
	return func(ctx context.Context, cp *checkpoint.CompletedCheckpoint) error {
		return jm.ha.PutCheckpoint(ctx, jobID, ha.CheckpointPointer{ID: cp.ID, Path: cp.ExternalPath()})
	}
}

// loadRecoveredCheckpoint reads the checkpoint a recovered job restores.
func (jm *JobManager) loadRecoveredCheckpoint(p *ha.CheckpointPointer) (*checkpoint.CompletedCheckpoint, error) {
	root, md, err := checkpoint.Resolve(p.Path)
	if err != nil {
		return nil, fmt.Errorf("the job's latest checkpoint %d (%s, from the high-availability store): %w", p.ID, p.Path, err)
	}
	cp, err := checkpoint.ReadCompleted(root, md, jm.set.CheckpointKey)
	if err != nil {
		return nil, fmt.Errorf("the job's latest checkpoint %d (%s, from the high-availability store): %w", p.ID, p.Path, err)
	}
	return cp, nil
}

// SubmitApplication submits the job of an application cluster
// (sluice run --target kubernetes-application) under its fixed id, unless
// a job with that id is known already: recovered from the high-availability
// store after a failover, or ended with its result recorded (then Wait
// returns that result).
func (jm *JobManager) SubmitApplication(s Submission, id string) error {
	jm.mu.Lock()
	_, known := jm.jobs[id]
	res, ended := jm.results[id]
	jm.mu.Unlock()
	if ended {
		jm.log.Info("application job ended under a previous leader (its result is recorded); not run again", "job", id, "state", res.State)
		return nil
	}
	if known {
		jm.log.Info("application job recovered; not submitted again", "job", id)
		return nil
	}
	_, _, err := jm.submitWith(s, &recovery{id: id, store: true})
	return err
}

// WaitResultRecorded waits until the result of the ended job id is in the
// high-availability store (at once without high availability), so an
// application cluster removes itself only once no successor would run its
// job again.
func (jm *JobManager) WaitResultRecorded(ctx context.Context, id string) error {
	if jm.ha == nil {
		return nil
	}
	for {
		jm.mu.Lock()
		_, ok := jm.results[id]
		if jm.resultRecorded == nil {
			jm.resultRecorded = make(chan struct{})
		}
		ch := jm.resultRecorded
		jm.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("job %s: its result was not recorded in the high-availability store: %w", id, ctx.Err())
		}
	}
}

// shippedServices names the services of a job's shipped tokens, sorted, without the tokens.
func shippedServices(ts []credentials.Token) []string {
	var out []string
	for _, t := range ts {
		if !slices.Contains(out, t.Service) {
			out = append(out, t.Service)
		}
	}
	slices.Sort(out)
	return out
}
