package dataflowtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/pebblestate"
)

// joinSpec joins two generators (ids 0..n-1, timestamp = id, key "key-(id % keys)") with a
// join of the given mode options, printing left id, right id and the window start (-1
// outside window joins). The watermarks allow 50ms of disorder: a restored generator
// resumes its splits from the first, so its ids may go back by one round of splits.
func joinSpec(n, rate, keys, genPar, joinPar int, mode, leftKey, rightKey string) string {
	ws := "-1"
	if strings.HasPrefix(mode, "window") {
		ws = "window_start"
	}
	return fmt.Sprintf(`name: joins
operators:
  - {name: a, type: generator, count: %[1]d, rate: %[2]d, keys: %[3]d, parallelism: %[4]d, timestamp: id, watermark: {max-out-of-orderness: 50ms}}
  - {name: b, type: generator, count: %[1]d, rate: %[2]d, keys: %[3]d, parallelism: %[4]d, timestamp: id, watermark: {max-out-of-orderness: 50ms}}
  - name: j
    type: join
    left: a
    right: b
    left-key: %[7]q
    right-key: %[8]q
    %[6]s
    parallelism: %[5]d
    fields: {l: left_id, r: right_id, ws: %[9]s}
  - {name: o, type: print, input: j, parallelism: 2}
`, n, rate, keys, genPar, joinPar, mode, leftKey, rightKey, ws)
}

// wantJoin is the join of ids 0..n-1 with themselves, computed plainly: pairs whose keys
// (id % keys, or as key says) are equal and that match says go together.
func wantJoin(n int, key func(side, id int) int, match func(l, r int) (ws int, ok bool)) []string {
	var out []string
	for l := range n {
		for r := range n {
			if key(0, l) != key(1, r) {
				continue
			}
			if ws, ok := match(l, r); ok {
				out = append(out, fmt.Sprintf("%d %d %d", l, r, ws))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestJoinModesLocal runs each join mode between two generators at parallelism 1 and 2
// (hashmap state, and pebble at 2) through RunLocal and compares with a plain Go
// computation.
func TestJoinModesLocal(t *testing.T) {
	const n = 1000
	byKey := func(side, id int) int { return id % 20 }
	cases := []struct {
		name, mode, lk, rk string
		key                func(side, id int) int
		match              func(l, r int) (int, bool)
	}{
		{"window", "window: {tumbling: 50ms}", "key", "key", byKey, func(l, r int) (int, bool) {
			return l / 50 * 50, l/50 == r/50
		}},
		{"interval", "between: [-30ms, 45ms]", "key", "key", byKey, func(l, r int) (int, bool) {
			return -1, r >= l-30 && r <= l+45
		}},
		// Expression keys: a left id meets the right id of half its value.
		{"regular", "", "id", "id * 2", func(side, id int) int { return id * (1 + side) }, func(int, int) (int, bool) { return -1, true }},
		{"regular-ttl", "ttl: 1h", "id", "id * 2", func(side, id int) int { return id * (1 + side) }, func(int, int) (int, bool) { return -1, true }},
	}
	for _, c := range cases {
		want := wantJoin(n, c.key, c.match)
		if len(want) == 0 {
			t.Fatalf("%s: the expected join is empty", c.name)
		}
		for _, run := range []struct {
			p       int
			backend state.Factory
		}{{1, nil}, {2, nil}, {2, pebblestate.Factory{}}} {
			name := fmt.Sprintf("%s/p%d", c.name, run.p)
			if run.backend != nil {
				name += "/" + run.backend.Name()
			}
			t.Run(name, func(t *testing.T) {
				var out bytes.Buffer
				spec := joinSpec(n, 0, 20, run.p, run.p, c.mode, c.lk, c.rk)
				opts := dataflow.LocalOptions{Stdout: &out, Task: func(_, _ int, tio *dataflow.TaskIO) {
					tio.State, tio.StateDir = run.backend, t.TempDir()
				}}
				if err := dataflow.RunLocalWith(context.Background(), plan(t, spec), opts); err != nil {
					t.Fatal(err)
				}
				if got := sortedOutput(&out); !slices.Equal(got, want) {
					t.Fatalf("%d pairs, want %d:\n got %.600v\nwant %.600v", len(got), len(want), got, want)
				}
			})
		}
	}
}

// joinHarness starts the join subtask of a spec of two sources at parallelism 1 (channel 0
// is the left input, 1 the right) and returns it.
func joinHarness(t *testing.T, mode string) *Subtask {
	t.Helper()
	p := plan(t, joinSpec(10, 0, 3, 1, 1, mode, "key", "key"))
	v := vertexOf(t, p, "j")
	if l := p.InputLayout(v); len(l) != 2 || l[0].Input != 0 || l[1].Input != 1 {
		t.Fatalf("input layout %+v, want the left edge then the right", l)
	}
	return Start(t, p, v, 0, nil)
}

func rec3(id int64, key string) []dataflow.Value {
	return []dataflow.Value{dataflow.Int(id), dataflow.String(key), dataflow.Int(id)}
}

// waitPairs waits for n records from st and returns them sorted.
func waitPairs(t *testing.T, st *Subtask, n int) []string {
	t.Helper()
	waitRecords(t, []*Subtask{st}, n)
	got := st.Out.Records()
	slices.Sort(got)
	return got
}

// TestWindowJoinOutOfOrder feeds both inputs out of order within the watermark's bound: a
// window joins what arrived before the watermark passed its end, in any order, and fires
// once; a record behind the watermark is dropped; the pairs carry the window's last ms as
// their timestamp.
func TestWindowJoinOutOfOrder(t *testing.T) {
	st := joinHarness(t, "window: {tumbling: 20ms}")
	g := st.Gate
	g.TimedRecord(0, 15, rec3(15, "k")...)
	g.TimedRecord(1, 12, rec3(12, "k")...)
	g.TimedRecord(0, 5, rec3(5, "k")...)
	g.TimedRecord(1, 25, rec3(25, "k")...) // the next window
	g.TimedRecord(1, 8, rec3(8, "k")...)
	g.TimedRecord(1, 9, rec3(9, "other")...) // no partner of its key
	g.TimedRecord(0, 27, rec3(27, "k")...)
	g.Watermark(0, 19)
	g.Watermark(1, 45) // the minimum over both inputs, 19, closes [0, 20) and not [20, 40)
	if err := st.Out.WaitFor(wait, func(items []Item) bool {
		return slices.ContainsFunc(items, func(it Item) bool { return it.Event != nil && it.Event.Kind == event.KindWatermark })
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"15 12 0", "15 8 0", "5 12 0", "5 8 0"}
	got := st.Out.Records()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("window [0, 20) at the watermark sent downstream:\n got %v\nwant %v", got, want)
	}
	for _, it := range st.Out.Items() {
		if it.Event != nil && it.Event.Kind == event.KindWatermark && it.Event.Watermark != 19 {
			t.Fatalf("the join sent watermark %d, want 19: the minimum of its two inputs", it.Event.Watermark)
		}
	}
	g.TimedRecord(0, 3, rec3(3, "k")...) // late: its window fired
	g.Watermark(0, math.MaxInt64)
	g.Watermark(1, math.MaxInt64)
	want = append(want, "27 25 20")
	slices.Sort(want)
	if got := waitPairs(t, st, 5); !slices.Equal(got, want) {
		t.Fatalf("after the final watermark:\n got %v\nwant %v", got, want)
	}
	for _, it := range st.Out.Items() {
		if it.Record != nil && (!it.Timed || it.Timestamp != it.Record[2].AsInt()+19) {
			t.Fatalf("pair %v at %d (timed %v), want its window's end - 1", it.Record, it.Timestamp, it.Timed)
		}
	}
}

// TestIntervalJoinOutOfOrder: right.ts in [left.ts - 5, left.ts + 10], whichever side comes
// first; the pair's timestamp is the later of the two; records behind the watermark are
// dropped, and entries the watermark passed are no longer joined.
func TestIntervalJoinOutOfOrder(t *testing.T) {
	st := joinHarness(t, "between: [-5ms, 10ms]")
	g := st.Gate
	g.TimedRecord(1, 112, rec3(112, "k")...) // right first
	g.TimedRecord(0, 100, rec3(100, "k")...) // 112 in [95, 110]? no
	g.TimedRecord(0, 104, rec3(104, "k")...) // 112 in [99, 114]: yes
	g.TimedRecord(1, 96, rec3(96, "k")...)   // left 100 ([95,110]) yes, left 104 ([99,114]) no
	g.TimedRecord(1, 101, rec3(101, "x")...) // other key
	want := []string{"100 96 -1", "104 112 -1"}
	if got := waitPairs(t, st, 2); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for _, it := range st.Out.Items() {
		if it.Record != nil && it.Timestamp != max(it.Record[0].AsInt(), it.Record[1].AsInt()) {
			t.Fatalf("pair %v at %d, want the later timestamp", it.Record, it.Timestamp)
		}
	}
	// The watermark passes 115: left 100 and 104 can meet no right record to come (their
	// upper bounds are 110 and 114), and a right record at 115 or before is late.
	g.Watermark(0, 115)
	g.Watermark(1, 115)
	g.TimedRecord(1, 114, rec3(114, "k")...) // late
	g.TimedRecord(1, 116, rec3(116, "k")...) // no left left to meet
	g.TimedRecord(0, 120, rec3(120, "k")...) // [115, 130]: meets 116, not 112
	want = append(want, "120 116 -1")
	slices.Sort(want)
	if got := waitPairs(t, st, 3); !slices.Equal(got, want) {
		t.Fatalf("after the watermark:\n got %v\nwant %v", got, want)
	}
}

// TestRegularJoinTTL: a regular join pairs every record with every earlier one of the
// other input and key, until the record's ttl has passed (processing time).
func TestRegularJoinTTL(t *testing.T) {
	st := joinHarness(t, "ttl: 200ms")
	g := st.Gate
	g.Record(0, rec3(1, "k")...)
	g.Record(1, rec3(2, "k")...)
	g.Record(1, rec3(3, "k")...)
	g.Record(0, rec3(4, "x")...)
	want := []string{"1 2 -1", "1 3 -1"}
	if got := waitPairs(t, st, 2); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	stored := time.Now()
	for time.Since(stored) < 400*time.Millisecond { // twice the ttl
		pollPause()
	}
	g.Record(0, rec3(5, "k")...) // 2 and 3 expired: no pair
	g.Record(1, rec3(6, "k")...) // meets 5 only
	want = append(want, "5 6 -1")
	slices.Sort(want)
	if got := waitPairs(t, st, 3); !slices.Equal(got, want) {
		t.Fatalf("after the ttl:\n got %v\nwant %v", got, want)
	}
	// Nothing else comes: a marker pair after them is the last record.
	g.Record(0, rec3(7, "m")...)
	g.Record(1, rec3(8, "m")...)
	if got := waitPairs(t, st, 4); !slices.Equal(got, append(slices.Clone(want), "7 8 -1")) {
		t.Fatalf("expired records were joined: %v", got)
	}
}

// TestJoinKillAndRestore kills a join of each mode after ten checkpoints and restores it
// at other parallelisms, writing through the two-phase file sink: what both runs committed
// is exactly the pairs of the Go computation, each once. Pairs of a record read before the
// checkpoint and one read after it come only from the restored state (both inputs' waiting
// records and the timers, redistributed by key group), so losing any of it loses pairs.
func TestJoinKillAndRestore(t *testing.T) {
	const n, keys = 2000, 50
	byKey := func(_, id int) int { return id % keys }
	cases := []struct {
		name, mode, lk, rk string
		key                func(side, id int) int
		match              func(l, r int) (int, bool)
	}{
		{"window", "window: {tumbling: 100ms}", "key", "key", byKey, func(l, r int) (int, bool) { return l / 100 * 100, l/100 == r/100 }},
		// A right record waits 100 to 300 ms for its left partners: across the checkpoint.
		{"interval", "between: [-300ms, -100ms]", "key", "key", byKey, func(l, r int) (int, bool) { return -1, r >= l-300 && r <= l-100 }},
		{"regular-ttl", "ttl: 1h", "id", "id * 2", func(side, id int) int { return id * (1 + side) }, func(int, int) (int, bool) { return -1, true }},
	}
	job := dataflow.JobInfo{ID: "0123456789abcdef", Name: "joins"}
	for _, c := range cases {
		want := wantJoin(n, c.key, c.match)
		for _, to := range []int{3, 1} {
			t.Run(fmt.Sprintf("%s/2to%d", c.name, to), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "out")
				sink := func(spec string) string {
					return strings.Replace(spec, "type: print, input: j", "type: file, path: "+dir+", input: j", 1)
				}
				p1 := plan(t, sink(joinSpec(n, n, keys, 2, 2, c.mode, c.lk, c.rk)))
				c1 := NewCoordinator(p1, nil)
				c1.Job = job
				var out bytes.Buffer
				err := runChecking(t, p1, c1, &out, func(done []*checkpoint.Metadata) bool { return len(done) >= 10 })
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("first run: %v, want it killed mid-way", err)
				}
				done := c1.Completed()
				md := done[len(done)-1]
				p2 := plan(t, sink(joinSpec(n, n, keys, 2, to, c.mode, c.lk, c.rk)))
				c2 := NewCoordinator(p2, md).WithStore(c1.Store)
				c2.Job = job
				c2.Job.Attempt = 1
				if err := runChecking(t, p2, c2, &out, nil); err != nil {
					t.Fatalf("restored run: %v", err)
				}
				var got []string
				vis, _ := listDir(t, dir)
				for _, f := range vis {
					got = append(got, strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, f))), "\n")...)
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					var missing, extra []string
					for _, w := range want {
						if _, ok := slices.BinarySearch(got, w); !ok {
							missing = append(missing, w)
						}
					}
					for i, g := range got {
						if _, ok := slices.BinarySearch(want, g); !ok || (i > 0 && got[i-1] == g) {
							extra = append(extra, g)
						}
					}
					t.Fatalf("committed %d pairs, want %d; missing %.300v; extra or repeated %.300v", len(got), len(want), missing, extra)
				}
			})
		}
	}
}
