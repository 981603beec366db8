package dataflowtest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

func sinkSpec(dir string) string {
	return `name: sink
operators:
  - {name: g, type: generator, count: 10, parallelism: 1}
  - {name: o, type: file, input: g, path: ` + dir + `, parallelism: 2}
`
}

func listDir(t *testing.T, dir string) (visible, hidden []string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".") {
			hidden = append(hidden, e.Name())
		} else {
			visible = append(visible, e.Name())
		}
	}
	return visible, hidden
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTwoPhaseFileSink: records become visible only when their checkpoint completes, as
// part-<op>-<job id[:8]>-<subtask>-<checkpoint>; a checkpoint that completed while its
// tasks were gone is committed by the restore (by every subtask, idempotently, once); a
// restore removes this job's in-progress files of earlier attempts and no other job's.
func TestTwoPhaseFileSink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "out")
	p := plan(t, sinkSpec(dir))
	v := vertexOf(t, p, "o")
	job := dataflow.JobInfo{ID: "abcdef0123456789", Name: "sink"}
	c := NewCoordinator(p, nil, v)
	c.Manual, c.Job = true, job
	sts := []*Subtask{Start(t, p, v, 0, c), Start(t, p, v, 1, c)}
	for _, id := range []int64{1, 2, 3} {
		sts[0].Gate.Record(0, rec(id)...)
	}
	sts[1].Gate.Record(0, rec(4)...)

	// Checkpoint 1: acknowledged, not yet complete: nothing visible.
	id1 := c.Trigger(0)
	for _, st := range sts {
		st.Gate.Barrier(0, id1)
	}
	if err := c.WaitAcknowledged(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if vis, _ := listDir(t, dir); len(vis) != 0 {
		t.Fatalf("visible before checkpoint %d completed: %v", id1, vis)
	}
	if _, err := c.CompleteNow(); err != nil {
		t.Fatal(err)
	}
	part0, part1 := filepath.Join(dir, "part-o-abcdef01-0-1"), filepath.Join(dir, "part-o-abcdef01-1-1")
	for _, f := range []string{part0, part1} {
		if err := waitFile(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFile(t, part0); got != "1 k 1\n2 k 2\n3 k 3\n" {
		t.Fatalf("%s: %q", part0, got)
	}

	// Checkpoint 2 completes after its tasks died: its notification is lost.
	sts[0].Gate.Record(0, rec(6)...)
	sts[0].Gate.Record(0, rec(7)...)
	id2 := c.Trigger(0)
	for _, st := range sts {
		st.Gate.Barrier(0, id2)
	}
	if err := c.WaitAcknowledged(ctx, id2); err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		st.Kill()
	}
	md, err := c.CompleteNow()
	if err != nil {
		t.Fatal(err)
	}
	if vis, _ := listDir(t, dir); len(vis) != 2 {
		t.Fatalf("visible after the tasks died: %v", vis)
	}
	// Leftovers: an in-progress file of this job's attempt 0, one of another job.
	stale := ".part-o-abcdef01-0-0-9.123.inprogress"
	other := ".part-o-otherjob-0-0-1.456.inprogress"
	for _, n := range []string{stale, other} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Two restores in a row (attempts 1 and 2): each commits checkpoint 2's pending files;
	// the second finds them committed.
	for attempt := 1; attempt <= 2; attempt++ {
		c2 := NewCoordinator(p, md, v).WithStore(c.Store)
		c2.Job = job
		c2.Job.Attempt = attempt
		r := []*Subtask{Start(t, p, v, 0, c2), Start(t, p, v, 1, c2)}
		part2 := filepath.Join(dir, "part-o-abcdef01-0-2")
		if err := waitFile(ctx, part2); err != nil {
			t.Fatal(err)
		}
		if attempt == 1 {
			for _, st := range r {
				st.Kill()
			}
			continue
		}
		// The last attempt runs to its end: one more record, end of input, the final
		// checkpoint commits it.
		r[1].Gate.Record(0, rec(8)...)
		for _, st := range r {
			st.Gate.EndOfData(0)
		}
		checkpointAll(t, c2, r)
		for i, st := range r {
			st.Gate.End(0)
			if err := st.Wait(wait); err != nil {
				t.Fatalf("subtask %d: %v", i, err)
			}
		}
		if got := readFile(t, part2); got != "6 k 6\n7 k 7\n" {
			t.Fatalf("%s: %q", part2, got)
		}
	}
	vis, hidden := listDir(t, dir)
	want := []string{"part-o-abcdef01-0-1", "part-o-abcdef01-0-2", "part-o-abcdef01-1-1", "part-o-abcdef01-1-3"}
	if !slices.Equal(vis, want) {
		t.Fatalf("visible files %v, want %v (a subtask without records in a checkpoint adds no file)", vis, want)
	}
	if !slices.Equal(hidden, []string{other}) {
		t.Fatalf("hidden files %v, want only the other job's %s", hidden, other)
	}
	if got := readFile(t, filepath.Join(dir, "part-o-abcdef01-1-3")); got != "8 k 8\n" {
		t.Fatalf("last part file: %q", got)
	}
}

// waitFile waits until path exists.
func waitFile(ctx context.Context, path string) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		pollPause()
	}
}

// TestSinkWithoutPeriodicCheckpoints: a task that takes part in savepoints only ends at the
// end of its input as without checkpointing, its sink committing part-<op>-<subtask>.
func TestSinkWithoutPeriodicCheckpoints(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	p := plan(t, sinkSpec(dir))
	v := vertexOf(t, p, "o")
	c := NewCoordinator(p, nil, v)
	c.Periodic = false
	st := Start(t, p, v, 0, c)
	st.Gate.Record(0, rec(1)...)
	st.Gate.EndOfData(0)
	st.Gate.End(0)
	if err := st.Wait(wait); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "part-o-0")); got != "1 k 1\n" {
		t.Fatalf("part-o-0: %q", got)
	}
	// The bounded source ends too, without waiting for a final checkpoint.
	g := vertexOf(t, p, "g")
	cg := NewCoordinator(p, nil, g)
	cg.Periodic = false
	src := Start(t, p, g, 0, cg)
	if err := src.Wait(wait); err != nil {
		t.Fatal(err)
	}
}
