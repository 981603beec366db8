package dataflowtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// drainOrder checks a drained source's output: per target, END_OF_DATA once and before
// the barrier of id, and no record after it.
func drainOrder(t *testing.T, items []Item, id int64, targets int) {
	t.Helper()
	if n := recordsAfter(items, id); n != 0 {
		t.Errorf("%d records after the terminating savepoint's barrier", n)
	}
	eod := map[int]int{}
	for _, it := range items {
		switch {
		case it.Event != nil && it.Event.Kind == event.KindEndOfData:
			eod[it.Target]++
		case it.Event != nil && it.Event.Kind == event.KindBarrier && it.Event.Barrier.ID == id:
			if eod[it.Target] != 1 {
				t.Errorf("target %d: the barrier of %d came after %d END_OF_DATA, want 1 (drain ends the input first)", it.Target, id, eod[it.Target])
			}
		}
	}
	for tg := range targets {
		if eod[tg] != 1 {
			t.Errorf("target %d got END_OF_DATA %d times, want once", tg, eod[tg])
		}
	}
}

// TestTerminateSavepoint: stop --drain. The source ends its input before the barrier
// (the chain finishes and END_OF_DATA goes downstream first), the savepoint holds it
// finished, and once the savepoint completes the subtask ends its partitions, with
// periodic checkpoints or with savepoints only.
func TestTerminateSavepoint(t *testing.T) {
	for _, periodic := range []bool{true, false} {
		t.Run(fmt.Sprint("periodic=", periodic), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			p := plan(t, unboundedSpec)
			v := vertexOf(t, p, "g")
			c := NewCoordinator(p, nil, v)
			c.Periodic = periodic
			st := Start(t, p, v, 0, c)
			if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(items) > 100 }); err != nil {
				t.Fatal(err)
			}
			id := c.Trigger(event.SavepointTerminate)
			md, err := c.WaitCompleted(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if md == nil {
				r, _ := c.Declined(id)
				t.Fatalf("the terminating savepoint was declined: %s", r)
			}
			if err := st.Wait(wait); err != nil {
				t.Fatalf("subtask after the terminating savepoint completed: %v", err)
			}
			for _, op := range md.Operators {
				for s, sub := range op.Subtasks {
					if !sub.Finished {
						t.Errorf("operator %s subtask %d is not finished in the terminating savepoint", op.Name, s)
					}
				}
			}
			items := st.Out.Items()
			drainOrder(t, items, id, 2)
			if last := items[len(items)-2:]; !last[0].End || !last[1].End {
				t.Errorf("the last items are %v, want the end of both partitions", last)
			}
		})
	}
}

// TestTerminateSavepointAborted: a drained source whose savepoint fails does not poll
// again (its input has ended); it ends as a source whose input ended, on the final
// checkpoint.
func TestTerminateSavepointAborted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p := plan(t, unboundedSpec)
	v := vertexOf(t, p, "g")
	c := NewCoordinator(p, nil, v)
	c.Periodic, c.Manual = true, true
	st := Start(t, p, v, 0, c)
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(items) > 100 }); err != nil {
		t.Fatal(err)
	}
	id := c.Trigger(event.SavepointTerminate)
	if err := c.WaitAcknowledged(ctx, id); err != nil {
		t.Fatal(err)
	}
	c.Manual = false
	c.decline(id, "test: aborted")
	// The source reports its end of data; the coordinator's final checkpoint ends it.
	if err := st.Wait(wait); err != nil {
		t.Fatalf("drained subtask after its savepoint was aborted: %v", err)
	}
	drainOrder(t, st.Out.Items(), id, 2)
	if len(c.Completed()) == 0 || !c.Completed()[len(c.Completed())-1].Finished {
		t.Errorf("no final checkpoint completed after the aborted drain: %v", c.Completed())
	}
}
