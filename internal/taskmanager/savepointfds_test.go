package taskmanager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestSavepointsDoNotAccumulate: a user may take savepoints of a running
// job again and again. Each used to leave, on every TaskManager of the
// job, the savepoint's directory in the attempt's map and one open
// descriptor per task until the task ended, so a loop of POST
// /jobs/{id}/savepoints exhausted the TaskManager's descriptors (and every
// job on it failed). Now a directory is closed when the task has
// acknowledged or declined that savepoint, and a trigger forgets older ones.
func TestSavepointsDoNotAccumulate(t *testing.T) {
	const job = "5d1f2a0c9e7b4411"
	jr := &jobRun{key: attemptKey{job, 1}, tasks: map[[2]int]*runningTask{}, targets: map[int64]string{}}
	tm := &TaskManager{id: "tm-1", log: slog.New(slog.NewTextHandler(io.Discard, nil)), jobs: map[attemptKey]*jobRun{{job, 1}: jr}}
	task := &runningTask{job: job, attempt: 1}
	tc, cleanup, err := tm.taskCheckpointing(jr, task, &controlpb.TaskDeployment{JobId: job, Checkpoints: &controlpb.CheckpointSettings{}})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	rpc := &rpcServer{tm: tm}
	root := t.TempDir()
	before := openFDs(t)
	for id := int64(1); id <= 100; id++ {
		dir := filepath.Join(root, fmt.Sprintf("savepoint-%d", id))
		if _, err := rpc.TriggerCheckpoint(context.Background(), &controlpb.TriggerCheckpointRequest{
			JobId: job, Attempt: 1, CheckpointId: id, TimestampMs: time.Now().UnixMilli(), Type: controlpb.SnapshotType(event.Savepoint), Target: dir,
		}); err != nil {
			t.Fatal(err)
		}
		info := checkpoint.Info{ID: id, Timestamp: time.Now(), Type: event.Savepoint}
		files, err := tc.Files(info)
		if err != nil {
			t.Fatalf("savepoint %d: %v", id, err)
		}
		w, err := files.Create(checkpoint.StateFile(0, 0, checkpoint.KindOperator))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("state"))
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		if id%2 == 0 {
			tc.Ack(info, nil, dataflow.CheckpointMetrics{})
		} else {
			tc.Decline(id, "test")
		}
	}
	if n := openFDs(t) - before; n > 2 {
		t.Errorf("%d more descriptors open after 100 savepoints", n)
	}
	jr.mu.Lock()
	n := len(jr.targets)
	jr.mu.Unlock()
	if n > 1 {
		t.Errorf("the attempt keeps %d savepoint directories, want the current one at most", n)
	}
}
