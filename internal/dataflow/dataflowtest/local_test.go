package dataflowtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
)

func keyedSumSpec(gen, agg int) string {
	return fmt.Sprintf(`name: keyedsum
operators:
  - {name: g, type: generator, count: 20000, rate: 20000, keys: 37, parallelism: %d}
  - {name: k, type: key_by, input: g, key: key}
  - {name: a, type: aggregate, input: k, function: sum, field: value, parallelism: %d}
  - {name: o, type: print, input: a}
`, gen, agg)
}

func sortedOutput(b *bytes.Buffer) []string {
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	slices.Sort(lines)
	return lines
}

// runChecking runs p locally with c's checkpointing, triggering every 20 ms, until it ends
// or stop returns true for the completed checkpoints (the run is then cancelled, as a
// killed job is).
func runChecking(t *testing.T, p *dataflow.Plan, c *Coordinator, out *bytes.Buffer, stop func([]*checkpoint.Metadata) bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, kill := context.WithCancel(ctx)
	defer kill()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Run(runCtx, 20*time.Millisecond)
	}()
	if stop != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.WaitFor(runCtx, func(done []*checkpoint.Metadata, _ map[int64]string) bool { return stop(done) }) == nil {
				kill()
			}
		}()
	}
	err := dataflow.RunLocalWith(runCtx, p, dataflow.LocalOptions{Stdout: out, Task: c.Wire})
	kill()
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("the run took more than 30s")
	}
	return err
}

// TestLocalKillAndRestore runs a keyed sum with periodic checkpoints, kills it after three
// completed checkpoints, restores the last one (at the same and at other parallelisms) and
// checks that the output equals that of an uninterrupted run without checkpointing.
func TestLocalKillAndRestore(t *testing.T) {
	var want bytes.Buffer
	if err := dataflow.RunLocal(context.Background(), plan(t, keyedSumSpec(2, 3)), &want); err != nil {
		t.Fatal(err)
	}
	for _, to := range [][2]int{{2, 3}, {3, 2}, {1, 1}} {
		t.Run(fmt.Sprintf("to%dx%d", to[0], to[1]), func(t *testing.T) {
			p1 := plan(t, keyedSumSpec(2, 3))
			c1 := NewCoordinator(p1, nil)
			var out1 bytes.Buffer
			err := runChecking(t, p1, c1, &out1, func(done []*checkpoint.Metadata) bool { return len(done) >= 3 })
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("first run: %v, want it killed mid-way", err)
			}
			if out1.Len() != 0 {
				t.Fatalf("the killed run printed %q", out1.String())
			}
			done := c1.Completed()
			md := done[len(done)-1]
			if md.Finished {
				t.Fatal("the last checkpoint before the kill is finished: the job had ended")
			}

			p2 := plan(t, keyedSumSpec(to[0], to[1]))
			c2 := NewCoordinator(p2, md).WithStore(c1.Store)
			var out2 bytes.Buffer
			if err := runChecking(t, p2, c2, &out2, nil); err != nil {
				t.Fatalf("restored run: %v", err)
			}
			if got, w := sortedOutput(&out2), sortedOutput(&want); !slices.Equal(got, w) {
				t.Fatalf("restored output differs:\n got %v\nwant %v", got, w)
			}
			last := c2.Completed()
			if len(last) == 0 || !last[len(last)-1].Finished {
				t.Fatal("the restored run did not end on a finished checkpoint")
			}
		})
	}
}

func exactlyOnceSinkSpec(dir string, p int) string {
	return fmt.Sprintf(`name: eos
operators:
  - {name: g, type: generator, count: 20000, rate: 20000, parallelism: %d}
  - {name: f, type: filter, input: g, expr: "id %% 3 != 1", parallelism: 2}
  - {name: o, type: file, input: f, path: %s, parallelism: 3}
`, p, dir)
}

// TestLocalExactlyOnceFileSink kills a job writing through the two-phase-commit file sink
// after three checkpoints and restores it (as attempt 1, at another source parallelism):
// the committed part files hold every record exactly once, and no in-progress file of the
// job is left.
func TestLocalExactlyOnceFileSink(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	job := dataflow.JobInfo{ID: "0123456789abcdef", Name: "eos"}
	p1 := plan(t, exactlyOnceSinkSpec(dir, 2))
	c1 := NewCoordinator(p1, nil)
	c1.Job = job
	err := runChecking(t, p1, c1, new(bytes.Buffer), func(done []*checkpoint.Metadata) bool { return len(done) >= 3 })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v, want it killed mid-way", err)
	}
	done := c1.Completed()
	p2 := plan(t, exactlyOnceSinkSpec(dir, 3))
	c2 := NewCoordinator(p2, done[len(done)-1]).WithStore(c1.Store)
	c2.Job = job
	c2.Job.Attempt = 1
	if err := runChecking(t, p2, c2, new(bytes.Buffer), nil); err != nil {
		t.Fatalf("restored run: %v", err)
	}
	visible, hidden := listDir(t, dir)
	if len(hidden) != 0 {
		t.Fatalf("in-progress files left: %v", hidden)
	}
	seen := map[string]int{}
	for _, name := range visible {
		for _, line := range strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, name))), "\n") {
			if line != "" {
				id, _, _ := strings.Cut(line, " ")
				seen[id]++
			}
		}
	}
	n := 0
	for i := range 20000 {
		want := 1
		if i%3 == 1 {
			want = 0
		}
		if got := seen[strconv.Itoa(i)]; got != want {
			t.Fatalf("id %d committed %d times, want %d (%d files)", i, got, want, len(visible))
		}
		n += want
	}
	if len(seen) != n {
		t.Fatalf("%d distinct ids committed, want %d", len(seen), n)
	}
}
