package dataflowtest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

func nexmarkSpec(p int) string {
	return fmt.Sprintf(`name: nx
operators:
  - {name: n, type: nexmark, events: 3000, rate: 3000, seed: 11, parallelism: %d}
  - {name: o, type: print, input: n, parallelism: 5}
`, p)
}

// nexmarkWant is the encoding of every event of nexmarkSpec, counted: events are told apart
// by content (ids, prices and random text make each one distinct).
func nexmarkWant(t *testing.T) map[string]int {
	want, _ := nexmarkEvents(t)
	return want
}

func nexmarkEvents(t *testing.T) (map[string]int, []string) {
	cfg, err := dataflow.NexmarkConfig(11, 3000, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	m := dataflow.NewNexmarkRecords(cfg)
	want := map[string]int{}
	var order []string
	for n := range int64(3000) {
		enc := string(dataflow.AppendRecord(nil, m.Record(n)))
		want[enc]++
		order = append(order, enc)
	}
	if len(want) != 3000 {
		t.Fatalf("%d distinct events of 3000: the test cannot tell events apart", len(want))
	}
	return want, order
}

// TestNexmarkRestore checkpoints a paced nexmark source at parallelism 2 mid-way, restores
// it at 4 and at 1, and checks that the events before the barrier and those emitted after
// the restore are the seed's 3000 events, each exactly once, as a generator's ids are.
func TestNexmarkRestore(t *testing.T) {
	want := nexmarkWant(t)
	for _, to := range []int{4, 1} {
		t.Run(fmt.Sprintf("2to%d", to), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
			defer cancel()
			p1 := plan(t, nexmarkSpec(2))
			v := vertexOf(t, p1, "n")
			c1 := NewCoordinator(p1, nil, v)
			sts := []*Subtask{Start(t, p1, v, 0, c1), Start(t, p1, v, 1, c1)}
			for _, st := range sts {
				if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(items) >= 200 }); err != nil {
					t.Fatal(err)
				}
			}
			id := c1.Trigger(event.Checkpoint)
			md, err := c1.WaitCompleted(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, st := range sts {
				st.Kill()
				for _, it := range st.Out.Items() {
					if it.Event != nil && it.Event.Kind == event.KindBarrier && it.Event.Barrier.ID == id {
						break
					}
					if it.Record != nil {
						seen[string(dataflow.AppendRecord(nil, it.Record))]++
					}
				}
			}
			if len(seen) >= 3000 {
				t.Fatalf("the source had ended before the checkpoint: the test restores nothing")
			}

			p2 := plan(t, nexmarkSpec(to))
			c2 := NewCoordinator(p2, md, v).WithStore(c1.Store)
			var sts2 []*Subtask
			for s := range to {
				sts2 = append(sts2, Start(t, p2, v, s, c2))
			}
			for i, st := range sts2 {
				if err := st.Wait(2 * wait); err != nil {
					t.Fatalf("subtask %d: %v", i, err)
				}
				for _, it := range st.Out.Items() {
					if it.Record != nil {
						seen[string(dataflow.AppendRecord(nil, it.Record))]++
					}
				}
			}
			bad := 0
			for enc, n := range seen {
				if n != 1 || want[enc] != 1 {
					bad++
				}
			}
			if bad > 0 || len(seen) != len(want) {
				t.Fatalf("%d distinct events seen of %d, %d not exactly once or not of the seed", len(seen), len(want), bad)
			}
		})
	}
}

// TestNexmarkParallelismIndependent runs the source at parallelism 1 and 3: the same
// events, and at 1 in event order.
func TestNexmarkParallelismIndependent(t *testing.T) {
	want, order := nexmarkEvents(t)
	for _, par := range []int{1, 3} {
		spec := fmt.Sprintf("name: nx\noperators:\n  - {name: n, type: nexmark, events: 3000, rate: 3000, seed: 11, parallelism: %d}\n"+
			"  - {name: o, type: print, input: n, parallelism: 2}\n", par)
		p := plan(t, spec)
		v := vertexOf(t, p, "n")
		seen := map[string]int{}
		var got []string
		for s := range par {
			st := Start(t, p, v, s, nil)
			if err := st.Wait(2 * wait); err != nil {
				t.Fatalf("p%d subtask %d: %v", par, s, err)
			}
			for _, it := range st.Out.Items() {
				if it.Record != nil {
					enc := string(dataflow.AppendRecord(nil, it.Record))
					seen[enc]++
					got = append(got, enc)
				}
			}
		}
		if par == 1 && !slices.Equal(got, order) {
			t.Errorf("p1: the events are not in event order")
		}
		for enc, n := range want {
			if seen[enc] != n {
				t.Fatalf("p%d: an event seen %d times, want once (%d distinct seen)", par, seen[enc], len(seen))
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("p%d: %d distinct events, want %d", par, len(seen), len(want))
		}
	}
}
