package checkpointbench

import (
	"context"
	"fmt"
	"time"
)

// recoveryMethod says in the result how recovery_ms was measured.
const recoveryMethod = "in-process TaskManager killed (its context cancelled: tasks cancelled, listeners and connections closed, no deregistration) " +
	"after a completed checkpoint; recovery_ms = time the bench first saw, in GET /jobs/{id}, the new attempt RUNNING with records read by the keyed sum, " +
	"minus the job's FAILING timestamp (the JobManager's detection); restart-strategy fixed-delay with delay 0"

// recovery kills the TaskManager that runs the keyed job's tasks once a
// checkpoint has completed and measures how long the job takes from the
// JobManager's detection of the failure to the first record its new
// attempt processes.
func (b *bench) recovery(ctx context.Context, res *Result) error {
	conf := map[string]string{
		"state.backend.type":                    "hashmap",
		"execution.checkpointing.interval":      b.o.Interval.String(),
		"restart-strategy.type":                 "fixed-delay",
		"restart-strategy.fixed-delay.attempts": "3",
		"restart-strategy.fixed-delay.delay":    "0 s",
	}
	id, err := b.submit(keyedJob(b.o.ThroughputKeys, 0, ""), conf)
	if err != nil {
		return err
	}
	// On an error path the job must not run on into the next run; after
	// the cancel at the end this does nothing.
	defer func() { _ = b.cancel(context.WithoutCancel(ctx), id) }()
	var before *jobView
	if err := poll(ctx, time.Minute, 20*time.Millisecond, "the recovery job to run and complete a checkpoint", func() (bool, error) {
		v, err := b.job(ctx, id)
		if err != nil || v.State != "RUNNING" || v.summed() == 0 {
			return false, err
		}
		st, err := b.checkpoints(ctx, id)
		if err != nil {
			return false, err
		}
		before = v
		return st.Counts.Completed > 0, nil
	}); err != nil {
		return err
	}
	victim, err := b.busyTaskManager(ctx)
	if err != nil {
		return err
	}
	killed := time.Now()
	done := make(chan error, 1)
	// Owned by recovery: it waits for the kill to have finished below.
	go func() { done <- b.c.KillTaskManager(context.WithoutCancel(ctx), victim) }()
	var after *jobView
	var first time.Time
	err = poll(ctx, 2*time.Minute, 5*time.Millisecond, "the job's new attempt to process records", func() (bool, error) {
		v, err := b.job(ctx, id)
		if err != nil {
			return false, err
		}
		first, after = time.Now(), v
		return v.Attempt > before.Attempt && v.State == "RUNNING" && v.summed() > 0, nil
	})
	if kerr := <-done; err == nil {
		err = kerr
	}
	if err != nil {
		return err
	}
	failing, ok := after.Timestamps["FAILING"]
	if !ok || failing < killed.UnixMilli()-1 {
		return fmt.Errorf("job %s: no FAILING timestamp after the kill (timestamps %v)", id, after.Timestamps)
	}
	st, err := b.checkpoints(ctx, id)
	if err != nil {
		return err
	}
	if st.Latest.Restored == nil {
		return fmt.Errorf("job %s recovered without restoring a checkpoint", id)
	}
	res.RecoveryMS = first.UnixMilli() - failing
	res.RecoveryDetectionMS = failing - killed.UnixMilli()
	res.RecoveryResolutionMS = heartbeat.Milliseconds()
	res.RecoveryRestoredFrom = st.Latest.Restored.ID
	res.RecoveryMethod = recoveryMethod
	return b.cancel(ctx, id)
}

// busyTaskManager is the index in the cluster of a TaskManager that runs
// tasks (fewer free slots than slots), from GET /taskmanagers.
func (b *bench) busyTaskManager(ctx context.Context) (int, error) {
	var tms struct {
		TaskManagers []struct {
			ID        string `json:"id"`
			Slots     int    `json:"slotsNumber"`
			FreeSlots int    `json:"freeSlots"`
		} `json:"taskmanagers"`
	}
	if err := b.get(ctx, "/taskmanagers", &tms); err != nil {
		return 0, err
	}
	for _, t := range tms.TaskManagers {
		if t.FreeSlots >= t.Slots {
			continue
		}
		for i, tm := range b.c.TMs {
			if tm.ID() == t.ID {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("no TaskManager of the cluster runs a task (GET /taskmanagers: %+v)", tms.TaskManagers)
}
