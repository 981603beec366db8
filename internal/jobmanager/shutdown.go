package jobmanager

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
)

// WorkDir returns the JobManager's work directory: dir when given (the
// --work-dir flag), else <process.jobmanager.working-dir>/jobmanager (the
// key falls back to process.working-dir; the subdirectory keeps it apart
// from TaskManagers sharing the base, as Flink's jm_<id> does), else a new
// temporary directory. temporary reports the last case: the directory
// holds the blob store and, in automatic mode without
// security.ssl.internal.auto.dir, the cluster CA's private key, so it is
// removed on shutdown. A configured directory is persistent and kept.
func WorkDir(base, dir string) (path string, temporary bool, err error) {
	if dir == "" {
		if base != "" {
			dir = filepath.Join(base, "jobmanager")
		}
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", false, fmt.Errorf("work directory (--work-dir or process.jobmanager.working-dir): %w", err)
		}
		return dir, false, nil
	}
	d, err := os.MkdirTemp("", "sluice-jm-")
	if err != nil {
		return "", false, fmt.Errorf("create a temporary work directory (set process.jobmanager.working-dir or --work-dir to use another): %w", err)
	}
	return d, true, nil
}

// shutdown stops the JobManager once its REST listeners are closed: it
// cancels the running jobs (jobmanager.shutdown.cancel-jobs) and waits for
// them, then stops the control plane after the calls in progress, all
// within jobmanager.shutdown.timeout; then it removes a temporary work
// directory. stopWork cancels the context the blob server, heartbeat
// monitor and calls to TaskManagers run under.
func (jm *JobManager) shutdown(gs *grpc.Server, stopWork func()) {
	timeout := jm.set.ShutdownTimeout
	deadline := time.Now().Add(timeout)
	jm.log.Info("jobmanager stopping: no longer accepting requests", "timeout", timeout)
	jm.settleJobs(deadline)
	stopWork()
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		jm.log.Warn("control-plane calls still running at jobmanager.shutdown.timeout; stopping them", "timeout", timeout)
		gs.Stop()
		<-done
	}
	jm.mu.Lock()
	for _, tm := range jm.tms {
		tm.conn.Close()
	}
	jm.mu.Unlock()
	jm.waitBackground()
	attrs := []any{"cluster-id", jm.clusterID}
	if jm.removeTempWorkDir() {
		attrs = append(attrs, "removed-work-dir", jm.workDir)
	}
	jm.log.Info("jobmanager stopped", attrs...)
}

// removeTempWorkDir removes the work directory if it is temporary and
// reports whether it did. Run calls it on every return, so a start-up that
// fails leaves nothing behind either.
func (jm *JobManager) removeTempWorkDir() bool {
	if !jm.removeWorkDir {
		return false
	}
	if err := os.RemoveAll(jm.workDir); err != nil {
		jm.log.Warn("could not remove the temporary work directory", "dir", jm.workDir, "err", err)
		return false
	}
	return true
}

// settleJobs cancels every job that has not ended and waits until they
// have, or until deadline; with jobmanager.shutdown.cancel-jobs false it
// leaves them to the TaskManagers, which cancel their tasks when they lose
// the JobManager (heartbeat.timeout).
func (jm *JobManager) settleJobs(deadline time.Time) {
	jm.mu.Lock()
	var running []*job
	for _, j := range jm.jobs {
		if !j.state.Terminal() {
			running = append(running, j)
		}
	}
	jm.mu.Unlock()
	if len(running) == 0 {
		return
	}
	if jm.suspending.Load() {
		jm.log.Info("leaving running jobs to the next leader (high-availability): their tasks stop once the taskmanagers register with it", "jobs", len(running))
		return
	}
	if !jm.set.ShutdownCancelJobs {
		jm.log.Warn("leaving running jobs to the taskmanagers, which cancel their tasks once they lose the jobmanager (heartbeat.timeout); set jobmanager.shutdown.cancel-jobs: true to cancel them on shutdown", "jobs", len(running))
		return
	}
	jm.log.Info("cancelling running jobs before shutdown (jobmanager.shutdown.cancel-jobs)", "jobs", len(running))
	for _, j := range running {
		if err := jm.Cancel(j.id); err != nil && !errors.Is(err, ErrJobTerminal) {
			jm.log.Warn("cancel job on shutdown", "job", j.id, "err", err)
		}
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for _, j := range running {
		select {
		case <-j.done:
		case <-timer.C:
			jm.log.Warn("jobs still cancelling at jobmanager.shutdown.timeout; stopping without waiting for them")
			return
		}
	}
}
