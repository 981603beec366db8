package jobmanager

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// runTestJM runs jm until the returned stop is called; stop returns once
// Run has.
func runTestJM(t *testing.T, jm *JobManager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- jm.Run(ctx) }()
	select {
	case <-jm.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("the JobManager did not start")
	}
	return func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}

// The work a JobManager schedules (here the restart of a failed job after
// restart-strategy.fixed-delay.delay) belongs to it: once Run has returned
// none of it runs, so nothing changes a job after shutdown.
func TestShutdownStopsScheduledWork(t *testing.T) {
	const delay = 300 * time.Millisecond
	jm := newTestJM(t, map[string]string{
		"rest.port": "0", "jobmanager.rpc.port": "0", "blob.server.port": "0", "rest.address": "127.0.0.1", "jobmanager.bind-host": "127.0.0.1",
		"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "3", "restart-strategy.fixed-delay.delay": "300 ms",
		"jobmanager.shutdown.cancel-jobs": "false",
	})
	addJob(t, jm, "job-a", "spec a", Running, time.Time{})
	j := jm.jobs["job-a"]
	j.plan = &dataflow.Plan{Vertices: []*dataflow.Vertex{{ID: 0, Parallelism: 1}}}
	j.slots, j.held = map[string]int{}, map[slotGroup]map[int]bool{}
	stop := runTestJM(t, jm)
	jm.mu.Lock()
	jm.failLocked(j, &failure{time: time.Now(), attempt: j.attempt, message: "test failure"})
	jm.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for {
		jm.mu.Lock()
		st := j.state
		jm.mu.Unlock()
		if st == Restarting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job is %s, want RESTARTING", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()

	// Watch past the restart delay: a restart left running after Run
	// would start the next attempt now.
	watchUntil := time.Now().Add(3 * delay)
	for time.Now().Before(watchUntil) {
		jm.mu.Lock()
		st, attempt := j.state, j.attempt
		jm.mu.Unlock()
		if st != Restarting || attempt != 0 {
			t.Fatalf("after Run returned, the job went on to %s attempt %d", st, attempt)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
