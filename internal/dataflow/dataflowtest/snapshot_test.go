package dataflowtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

const unboundedSpec = `name: unbounded
operators:
  - {name: g, type: generator, parallelism: 1}
  - {name: o, type: print, input: g, parallelism: 2}
`

func recordsAfter(items []Item, id int64) int {
	_, after := idsAround(items, id)
	return len(after)
}

// TestSuspendSavepoint: after a suspending savepoint's barrier the source polls no more;
// when the savepoint is aborted it resumes, and when one completes the task ends its
// partitions without END_OF_DATA and without finishing.
func TestSuspendSavepoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p := plan(t, unboundedSpec)
	v := vertexOf(t, p, "g")
	c := NewCoordinator(p, nil, v)
	c.Manual = true
	st := Start(t, p, v, 0, c)
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(items) > 100 }); err != nil {
		t.Fatal(err)
	}
	id := c.Trigger(event.SavepointSuspend)
	if err := c.WaitAcknowledged(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := recordsAfter(st.Out.Items(), id); n != 0 {
		t.Fatalf("%d records after the suspending savepoint's barrier", n)
	}
	c.decline(id, "test: aborted")
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return recordsAfter(items, id) > 0 }); err != nil {
		t.Fatalf("the source did not resume after the abort: %v", err)
	}

	c.Manual = false
	id2 := c.Trigger(event.SavepointSuspend)
	if _, err := c.WaitCompleted(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if err := st.Wait(wait); err != nil {
		t.Fatalf("subtask after the savepoint completed: %v", err)
	}
	items := st.Out.Items()
	if n := recordsAfter(items, id2); n != 0 {
		t.Fatalf("%d records after the completed savepoint's barrier", n)
	}
	for _, it := range items {
		if it.Event != nil && it.Event.Kind == event.KindEndOfData {
			t.Fatal("a stopped source sent END_OF_DATA: downstream would finish on partial input")
		}
	}
	ends := 0
	for _, it := range items[len(items)-2:] {
		if it.End {
			ends++
		}
	}
	if ends != 2 {
		t.Fatalf("the last items are %v, want the end of both partitions", items[len(items)-2:])
	}
}

// TestSnapshotFailureDeclines: a snapshot file that cannot be written declines the
// checkpoint, naming the file, and cancels it downstream; the task goes on.
func TestSnapshotFailureDeclines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p := plan(t, unboundedSpec)
	v := vertexOf(t, p, "g")
	c := NewCoordinator(p, nil, v)
	c.Store.FailCreate = func(name string) bool { return strings.HasSuffix(name, "-operator") }
	st := Start(t, p, v, 0, c)
	id := c.Trigger(event.Checkpoint)
	if err := c.WaitFor(ctx, func(_ []*checkpoint.Metadata, d map[int64]string) bool { _, ok := d[id]; return ok }); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Declined(id); !strings.Contains(r, "0-0-operator") {
		t.Fatalf("decline reason %q does not name the file", r)
	}
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return hasEvent(items, event.KindCancelBarrier, id) == 2 }); err != nil {
		t.Fatal(err)
	}
	c.Store.FailCreate = nil
	id2 := c.Trigger(event.Checkpoint)
	if _, err := c.WaitCompleted(ctx, id2); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefusesTamperedFile: a keyed state file that fails verification fails the
// restore, naming the file.
func TestRestoreRefusesTamperedFile(t *testing.T) {
	p1 := plan(t, aggSpec(2))
	v := vertexOf(t, p1, "a")
	c1 := NewCoordinator(p1, nil, v)
	sts := []*Subtask{Start(t, p1, v, 0, c1), Start(t, p1, v, 1, c1)}
	feed(sts, 0, 100)
	md := checkpointAll(t, c1, sts)
	for _, st := range sts {
		st.Kill()
	}
	path := md.Operator("a").Subtasks[0].Keyed.Files[0].Path
	c1.Store.Corrupt(path)
	c2 := NewCoordinator(p1, md, v).WithStore(c1.Store)
	st := Start(t, p1, v, 0, c2)
	err := st.Wait(wait)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("restore of a tampered file: %v, want an error naming %s", err, path)
	}
}

func fileSourceSpec(in string, p int) string {
	return fmt.Sprintf(`name: lines
operators:
  - {name: f, type: file, path: %s, parallelism: %d}
  - {name: o, type: print, input: f, parallelism: 5}
`, in, p)
}

// TestFileSourceRestore checkpoints a file source at parallelism 2 before its end and
// restores it at 2, 3 and 1: every line is read exactly once over both runs.
func TestFileSourceRestore(t *testing.T) {
	const lines = 20000
	in := filepath.Join(t.TempDir(), "in.txt")
	var b strings.Builder
	for i := range lines {
		fmt.Fprintf(&b, "line-%d\n", i)
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, to := range []int{2, 3, 1} {
		t.Run(fmt.Sprintf("2to%d", to), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			p1 := plan(t, fileSourceSpec(in, 2))
			v := vertexOf(t, p1, "f")
			c1 := NewCoordinator(p1, nil, v)
			c1.Manual = true // the run is killed before the checkpoint completes for it
			sts := []*Subtask{Start(t, p1, v, 0, c1), Start(t, p1, v, 1, c1)}
			id := c1.Trigger(event.Checkpoint)
			if err := c1.WaitAcknowledged(ctx, id); err != nil {
				t.Fatal(err)
			}
			for _, st := range sts {
				st.Kill()
			}
			md, err := c1.CompleteNow()
			if err != nil {
				t.Fatal(err)
			}
			if md.Finished {
				t.Fatal("the sources had ended before the checkpoint: nothing to restore")
			}
			seen := map[string]int{}
			for _, st := range sts {
				before, _ := idsAround(st.Out.Items(), id)
				for _, l := range before {
					seen[l]++
				}
			}
			p2 := plan(t, fileSourceSpec(in, to))
			c2 := NewCoordinator(p2, md, v).WithStore(c1.Store)
			var sts2 []*Subtask
			for s := range to {
				sts2 = append(sts2, Start(t, p2, v, s, c2))
			}
			for i, st := range sts2 {
				if err := st.Wait(wait); err != nil {
					t.Fatalf("subtask %d: %v", i, err)
				}
				for _, r := range st.Out.Records() {
					seen[r]++
				}
			}
			for i := range lines {
				if n := seen["line-"+strconv.Itoa(i)]; n != 1 {
					t.Fatalf("line %d read %d times (%d distinct lines)", i, n, len(seen))
				}
			}
		})
	}
}
