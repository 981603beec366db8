package dataflowtest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

const wait = 10 * time.Second

// plan parses spec and plans it with max parallelism 16.
func plan(t testing.TB, spec string) *dataflow.Plan {
	t.Helper()
	s, err := dataflow.ParseSpec([]byte(spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.PlanWith(dataflow.PlanOptions{DefaultParallelism: 1, MaxParallelism: 16})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// vertexOf is the vertex whose chain starts with operator name.
func vertexOf(t testing.TB, p *dataflow.Plan, name string) int {
	t.Helper()
	for _, v := range p.Vertices {
		if v.Operators[0] == name {
			return v.ID
		}
	}
	t.Fatalf("no vertex starts with %q", name)
	return -1
}

// filterSpec: a filter reading two channels (the generator at parallelism 2) and sending to
// three print subtasks, so its output is recorded.
const filterSpec = `name: align
operators:
  - {name: g, type: generator, count: 10, parallelism: 2}
  - {name: f, type: filter, input: g, expr: "true", parallelism: 1}
  - {name: p, type: print, input: f, parallelism: 3}
`

func rec(id int64) []dataflow.Value {
	return []dataflow.Value{dataflow.Int(id), dataflow.String("k"), dataflow.Int(id)}
}

// idsBefore returns the ids of the records sent before the first BARRIER id, and after it.
func idsAround(items []Item, id int64) (before, after []string) {
	seen := false
	for _, it := range items {
		switch {
		case it.Event != nil && it.Event.Kind == event.KindBarrier && it.Event.Barrier.ID == id:
			seen = true
		case it.Record != nil && !seen:
			before = append(before, it.Record[0].Text())
		case it.Record != nil:
			after = append(after, it.Record[0].Text())
		}
	}
	return before, after
}

func hasEvent(items []Item, kind event.Kind, id int64) int {
	n := 0
	for _, it := range items {
		if it.Event != nil && it.Event.Kind == kind && it.Event.Barrier.ID == id {
			n++
		}
	}
	return n
}

// TestAlignmentHoldsRecordsAfterBarrier: exactly once, a record that follows barrier 1 on a
// channel is not processed before the snapshot of 1, however long the other channel takes
// to deliver its barrier; records of the other channel before its barrier are.
func TestAlignmentHoldsRecordsAfterBarrier(t *testing.T) {
	p := plan(t, filterSpec)
	c := NewCoordinator(p, nil, vertexOf(t, p, "f"))
	st := Start(t, p, vertexOf(t, p, "f"), 0, c)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id := c.Trigger(event.Checkpoint)
	st.Gate.Record(0, rec(1)...)
	st.Gate.Barrier(0, id)
	st.Gate.Record(0, rec(2)...) // after the barrier: held
	if err := st.Gate.WaitBlocked(0, true, wait); err != nil {
		t.Fatal(err)
	}
	st.Gate.Record(1, rec(3)...)
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(items) >= 1 }); err != nil {
		t.Fatal(err)
	}
	st.Gate.Barrier(1, id)
	if _, err := c.WaitCompleted(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(items) >= 3+3 }); err != nil {
		t.Fatal(err)
	}
	before, after := idsAround(st.Out.Items(), id)
	slices.Sort(before)
	if !slices.Equal(before, []string{"1", "3"}) || !slices.Equal(after, []string{"2"}) {
		t.Fatalf("records before barrier %d: %v, after: %v; want [1 3] and [2]", id, before, after)
	}
	if n := hasEvent(st.Out.Items(), event.KindBarrier, id); n != 3 {
		t.Fatalf("barrier %d went to %d of 3 targets", id, n)
	}
	if st.Gate.Blocked(0) || st.Gate.Blocked(1) {
		t.Fatal("a channel is still blocked after the alignment")
	}
	if m := c.Metrics; len(m) != 1 || m[0].Alignment <= 0 {
		t.Fatalf("metrics %+v: want one acknowledgement with an alignment time", m)
	}
}

// TestSubsumedBarrier: a barrier of a higher id while aligning abandons the lower one (the
// task declines it as subsumed), and the newer checkpoint completes; a late barrier of the
// abandoned id is ignored.
func TestSubsumedBarrier(t *testing.T) {
	p := plan(t, filterSpec)
	c := NewCoordinator(p, nil, vertexOf(t, p, "f"))
	st := Start(t, p, vertexOf(t, p, "f"), 0, c)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	first := c.Trigger(event.Checkpoint)
	st.Gate.Barrier(0, first)
	st.Gate.Record(0, rec(1)...)
	if err := st.Gate.WaitBlocked(0, true, wait); err != nil {
		t.Fatal(err)
	}
	st.Gate.Barrier(1, first+1)
	if err := c.WaitFor(ctx, func(_ []*checkpoint.Metadata, d map[int64]string) bool { _, ok := d[first]; return ok }); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Declined(first); !strings.Contains(r, "subsumed") {
		t.Fatalf("decline of %d: %q, want it subsumed", first, r)
	}
	second := c.Trigger(event.Checkpoint)
	if second != first+1 {
		t.Fatalf("second checkpoint %d, want %d", second, first+1)
	}
	st.Gate.Barrier(1, first) // late: ignored
	st.Gate.Barrier(0, second)
	if _, err := c.WaitCompleted(ctx, second); err != nil {
		t.Fatal(err)
	}
	items := st.Out.Items()
	before, _ := idsAround(items, second)
	if !slices.Equal(before, []string{"1"}) {
		t.Fatalf("records before barrier %d: %v, want [1] (record 1 precedes barrier %d on its channel)", second, before, second)
	}
	if hasEvent(items, event.KindBarrier, first) != 0 {
		t.Fatalf("the subsumed barrier %d went downstream", first)
	}
}

// TestCancelBarrier: CANCEL_BARRIER of the checkpoint being aligned unblocks the channels
// and goes downstream once; the cancelled checkpoint's later barriers are ignored.
func TestCancelBarrier(t *testing.T) {
	p := plan(t, filterSpec)
	c := NewCoordinator(p, nil, vertexOf(t, p, "f"))
	st := Start(t, p, vertexOf(t, p, "f"), 0, c)
	id := c.Trigger(event.Checkpoint)
	st.Gate.Barrier(0, id)
	st.Gate.Record(0, rec(1)...)
	if err := st.Gate.WaitBlocked(0, true, wait); err != nil {
		t.Fatal(err)
	}
	st.Gate.Cancel(1, id)
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return hasEvent(items, event.KindCancelBarrier, id) == 3 }); err != nil {
		t.Fatal(err)
	}
	if err := st.Gate.WaitBlocked(0, false, wait); err != nil {
		t.Fatal(err)
	}
	st.Gate.Cancel(0, id)  // a second cancel of the same id: not forwarded again
	st.Gate.Barrier(1, id) // late barrier of the cancelled checkpoint: ignored
	st.Gate.Record(1, rec(2)...)
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return countRecords(items) >= 2 }); err != nil {
		t.Fatal(err)
	}
	items := st.Out.Items()
	if n := hasEvent(items, event.KindCancelBarrier, id); n != 3 {
		t.Fatalf("CANCEL_BARRIER %d sent %d times over 3 targets, want once each", id, n)
	}
	if n := hasEvent(items, event.KindBarrier, id); n != 0 {
		t.Fatalf("barrier %d of a cancelled checkpoint went downstream", id)
	}
	if st.Gate.Blocked(1) {
		t.Fatal("channel 1 blocked by a cancelled checkpoint's barrier")
	}
}

// TestAtLeastOnce: barriers are counted, no channel is blocked, so a record after the
// barrier on one channel may be processed before the snapshot; the snapshot is taken when
// the last channel's barrier arrives.
func TestAtLeastOnce(t *testing.T) {
	p := plan(t, filterSpec)
	c := NewCoordinator(p, nil, vertexOf(t, p, "f"))
	c.Mode = dataflow.AtLeastOnce
	st := Start(t, p, vertexOf(t, p, "f"), 0, c)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id := c.Trigger(event.Checkpoint)
	st.Gate.Barrier(0, id)
	st.Gate.Record(0, rec(2)...)
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(items) >= 1 }); err != nil {
		t.Fatal(err) // processed although its channel delivered the barrier: not blocked
	}
	st.Gate.Barrier(1, id)
	if _, err := c.WaitCompleted(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st.Gate.Blocks() != 0 {
		t.Fatalf("%d channels blocked at least once", st.Gate.Blocks())
	}
	before, _ := idsAround(st.Out.Items(), id)
	if !slices.Equal(before, []string{"2"}) {
		t.Fatalf("records before the barrier: %v, want [2]", before)
	}
}

// TestEndedChannelNotWaitedFor: a channel that ends while the task aligns is not waited for.
func TestEndedChannelNotWaitedFor(t *testing.T) {
	p := plan(t, filterSpec)
	c := NewCoordinator(p, nil, vertexOf(t, p, "f"))
	st := Start(t, p, vertexOf(t, p, "f"), 0, c)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id := c.Trigger(event.Checkpoint)
	st.Gate.Barrier(0, id)
	if err := st.Gate.WaitBlocked(0, true, wait); err != nil {
		t.Fatal(err)
	}
	st.Gate.End(1)
	if _, err := c.WaitCompleted(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// TestOneChannelNeverBlocks: a task with a single input channel snapshots at its barrier
// without blocking.
func TestOneChannelNeverBlocks(t *testing.T) {
	p := plan(t, strings.NewReplacer("count: 10, parallelism: 2", "count: 10, parallelism: 1", `"true", parallelism: 1`, `"true", parallelism: 2`).Replace(filterSpec))
	c := NewCoordinator(p, nil, vertexOf(t, p, "f"))
	st := Start(t, p, vertexOf(t, p, "f"), 0, c)
	other := Start(t, p, vertexOf(t, p, "f"), 1, c) // the coordinator waits for both subtasks
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id := c.Trigger(event.Checkpoint)
	st.Gate.Barrier(0, id)
	other.Gate.Barrier(0, id)
	if _, err := c.WaitCompleted(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st.Gate.Blocks() != 0 {
		t.Fatal("a single channel was blocked")
	}
}

// TestBarrierWithoutCheckpointingFails: a task without checkpointing refuses a barrier.
func TestBarrierWithoutCheckpointingFails(t *testing.T) {
	p := plan(t, filterSpec)
	st := Start(t, p, vertexOf(t, p, "f"), 0, nil)
	st.Gate.Barrier(0, 1)
	err := st.Wait(wait)
	if err == nil || !strings.Contains(err.Error(), "checkpointing is not enabled") {
		t.Fatalf("err = %v", err)
	}
}

func countRecords(items []Item) int {
	n := 0
	for _, it := range items {
		if it.Record != nil {
			n++
		}
	}
	return n
}

// pollPause is the interval of a condition polled against a deadline.
func pollPause() { time.Sleep(2 * time.Millisecond) }
