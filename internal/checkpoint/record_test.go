package checkpoint

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// A checkpoint whose record (the high-availability pointer) cannot be
// written does not count: the tasks are told it failed (sinks do not
// commit), it is no restore point, and the previous checkpoint is kept.
func TestCoordinatorRecordBeforeCommit(t *testing.T) {
	var mu sync.Mutex
	var recorded []int64
	fail := false
	h := newHarness(t, func(c *CoordinatorConfig) {
		c.Record = func(_ context.Context, cp *CompletedCheckpoint) error {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return errors.New("not the leader")
			}
			recorded = append(recorded, cp.ID)
			return nil
		}
	})
	h.run(1)
	h.advance(time.Second)
	h.ackAll(1, 1, false, false)
	if rp := h.c.RestorePoint(); rp == nil || rp.ID != 1 {
		t.Fatalf("restore point after a recorded checkpoint: %+v", rp)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	h.advance(time.Second)
	h.ackAll(1, 2, false, false)
	g := h.gw.snapshot()
	if !slices.Equal(g.notifies, []notify{{1, 1, true}, {1, 2, false}}) {
		t.Fatalf("notifies %v: checkpoint 2 must be announced as failed", g.notifies)
	}
	if rp := h.c.RestorePoint(); rp == nil || rp.ID != 1 {
		t.Fatalf("restore point after an unrecorded checkpoint: %+v", rp)
	}
	if !h.exists("chk-1") {
		t.Fatal("the recorded checkpoint was deleted for one that does not count")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(recorded, []int64{1}) {
		t.Fatalf("recorded %v", recorded)
	}
}
