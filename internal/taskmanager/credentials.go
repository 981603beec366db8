package taskmanager

import (
	"context"
	"fmt"
	"slices"
	"time"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/credentials"
	"github.com/sluice-dev/sluice/internal/security/tokens"
)

// credentialsFor is what the tasks of a job get as their RuntimeContext's Credentials: the
// delegation tokens the JobManager sent for the job first, then the TaskManager's own
// Kerberos login contexts (security.kerberos.login.contexts), which a TaskManager with
// delegation tokens does not need.
func (tm *TaskManager) credentialsFor(jobID string) credentials.Source {
	return credentials.Chain(tm.tokens.For(jobID), credentials.FromLogin(tm.krb))
}

// hasJobLocked reports whether a task of any attempt of job runs here. Call with tm.mu held.
func (tm *TaskManager) hasJobLocked(job string) bool {
	for k := range tm.jobs {
		if k.job == job {
			return true
		}
	}
	return false
}

// installTokens keeps a job's tokens in memory, if a task of the job runs here: this
// TaskManager holds no tokens of jobs it does not run, whatever it is sent.
func (tm *TaskManager) installTokens(p *controlpb.TokenSet) error {
	set := tokens.FromProto(p)
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if !tm.hasJobLocked(set.Job) {
		return fmt.Errorf("delegation tokens for job %s refused: no task of it runs on taskmanager %s", set.Job, tm.id)
	}
	tm.tokens.Install(set)
	return nil
}

// UpdateTokens receives a job's renewed tokens from the JobManager.
func (s *rpcServer) UpdateTokens(_ context.Context, p *controlpb.TokenSet) (*controlpb.Ack, error) {
	if err := s.tm.installTokens(p); err != nil {
		return nil, err
	}
	return &controlpb.Ack{}, nil
}

// catchUpTokens fetches the tokens of the jobs whose version the JobManager's heartbeat
// answer names above the one held: the push of an update did not arrive.
func (tm *TaskManager) catchUpTokens(ctx context.Context, client controlpb.JobManagerClient, versions map[string]int64) {
	var stale []string
	for job, v := range versions {
		if tm.tokens.Version(job) < v {
			stale = append(stale, job)
		}
	}
	if len(stale) == 0 {
		return
	}
	slices.Sort(stale)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := client.FetchTokens(fctx, &controlpb.FetchTokensRequest{TaskmanagerId: tm.id, JobIds: stale})
	if err != nil {
		tm.log.Warn("fetch delegation tokens the jobmanager renewed; retrying at the next heartbeat", "jobs", stale, "err", err)
		return
	}
	for _, set := range resp.Sets {
		if err := tm.installTokens(set); err != nil {
			tm.log.Debug("fetched delegation tokens not installed", "err", err)
		}
	}
	tm.log.Info("fetched delegation tokens missed by a push", "jobs", stale)
}

// dropTokensLocked forgets the tokens of job once no attempt of it runs here. Call with tm.mu
// held.
func (tm *TaskManager) dropTokensLocked(job string) {
	if !tm.hasJobLocked(job) {
		tm.tokens.Drop(job)
	}
}
