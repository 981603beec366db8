package dataflowtest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// tevent is one input record of the window tests: a key, a value and an event time (ms).
type tevent struct {
	ts  int64
	key string
	v   int64
}

// outOfOrderEvents makes n events over keys keys, their times advancing by 0..19 ms, written
// in an order shuffled within 5 s: each event is placed by its time plus a random delay of
// up to 4999 ms, so a watermark 5 s behind the largest time seen never passes an event not
// yet read.
func outOfOrderEvents(n, keys int, seed uint64) []tevent {
	r := rand.New(rand.NewPCG(seed, 1))
	evs := make([]tevent, n)
	delay := make([]int64, n)
	ts := int64(1_700_000_000_000)
	for i := range evs {
		ts += r.Int64N(20)
		evs[i] = tevent{ts: ts, key: "k" + strconv.Itoa(r.IntN(keys)), v: r.Int64N(1000) - 100}
		delay[i] = ts + r.Int64N(5000)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return delay[idx[a]] < delay[idx[b]] })
	out := make([]tevent, n)
	for i, j := range idx {
		out[i] = evs[j]
	}
	return out
}

func writeEvents(t *testing.T, evs []tevent) string {
	t.Helper()
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, `{"ts": %d, "key": %q, "v": %d}`+"\n", e.ts, e.key, e.v)
	}
	path := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func windowSpec(path string, p int, window string) string {
	return fmt.Sprintf(`name: win
operators:
  - {name: src, type: file, path: %s, format: json, fields: [ts, key, v], parallelism: %d,
     timestamp: ts, watermark: {max-out-of-orderness: 5s}}
  - {name: k, type: key_by, input: src, key: key}
  - {name: w, type: window, input: k, parallelism: %d, %s}
  - {name: o, type: print, input: w}
`, path, p, p, window)
}

// windowsOf assigns t to its windows as the window operator does, computed plainly.
func windowsOf(kind string, size, slide, t int64) [][2]int64 {
	switch kind {
	case "tumbling":
		s := t - ((t%size)+size)%size
		return [][2]int64{{s, s + size}}
	case "sliding":
		var out [][2]int64
		for s := t - ((t%slide)+slide)%slide; s > t-size; s -= slide {
			out = append(out, [2]int64{s, s + size})
		}
		return out
	}
	panic(kind)
}

// sessionsOf computes the sessions of one key's times with gap: sorted, a new session when
// the next time is gap or more after the last one's end.
func sessionsOf(ts []int64, gap int64) [][]int64 {
	slices.Sort(ts)
	var out [][]int64
	for i, t := range ts {
		if i == 0 || t > ts[i-1]+gap {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], t)
	}
	return out
}

// TestWindowKindsOutOfOrder runs each window kind over events shuffled within 5 s, read by
// a file source with a 5 s bounded-out-of-orderness watermark at parallelism 1 and 2: no
// event is late, so every window gives the exact result of a plain computation.
func TestWindowKindsOutOfOrder(t *testing.T) {
	evs := outOfOrderEvents(4000, 5, 7)
	path := writeEvents(t, evs)
	type agg struct {
		count, sum, max int64
		vals            []int64
	}
	byWindow := func(kind string, size, slide int64) map[string]*agg {
		m := map[string]*agg{}
		for _, e := range evs {
			for _, w := range windowsOf(kind, size, slide, e.ts) {
				k := fmt.Sprintf("%s %d %d", e.key, w[0], w[1])
				a := m[k]
				if a == nil {
					a = &agg{max: math.MinInt64}
					m[k] = a
				}
				a.count++
				a.sum += e.v
				a.max = max(a.max, e.v)
				a.vals = append(a.vals, e.v)
			}
		}
		return m
	}
	lines := func(m map[string]*agg, f func(*agg) string) []string {
		var out []string
		for k, a := range m {
			out = append(out, k+" "+f(a))
		}
		slices.Sort(out)
		return out
	}
	// Sessions per key with a gap of 300 ms, their max value.
	sessions := func() []string {
		times := map[string][]int64{}
		vals := map[string]map[int64][]int64{}
		for _, e := range evs {
			times[e.key] = append(times[e.key], e.ts)
			if vals[e.key] == nil {
				vals[e.key] = map[int64][]int64{}
			}
			vals[e.key][e.ts] = append(vals[e.key][e.ts], e.v)
		}
		var out []string
		for key, ts := range times {
			for _, s := range sessionsOf(slices.Compact(slices.Sorted(slices.Values(ts))), 300) {
				m := int64(math.MinInt64)
				for _, t := range s {
					for _, v := range vals[key][t] {
						m = max(m, v)
					}
				}
				out = append(out, fmt.Sprintf("%s %d %d %d", key, s[0], s[len(s)-1]+300, m))
			}
		}
		slices.Sort(out)
		return out
	}()
	top2 := func(a *agg) []int64 {
		v := slices.Clone(a.vals)
		slices.Sort(v)
		slices.Reverse(v)
		return v[:min(2, len(v))]
	}
	cases := []struct {
		name, window string
		want         []string
	}{
		{"tumbling-count", "tumbling: 1s, function: count", lines(byWindow("tumbling", 1000, 0), func(a *agg) string { return strconv.FormatInt(a.count, 10) })},
		{"sliding-sum", "sliding: {size: 2s, slide: 500ms}, function: sum, field: v", lines(byWindow("sliding", 2000, 500), func(a *agg) string { return strconv.FormatInt(a.sum, 10) })},
		{"session-max", "session: {gap: 300ms}, function: max, field: v", sessions},
		{"tumbling-top2", "tumbling: 1s, top: 2, field: v", func() []string {
			var out []string
			for k, a := range byWindow("tumbling", 1000, 0) {
				for i, v := range top2(a) {
					out = append(out, fmt.Sprintf("%s %d %d", k, i+1, v))
				}
			}
			slices.Sort(out)
			return out
		}()},
	}
	for _, c := range cases {
		for _, p := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/p%d", c.name, p), func(t *testing.T) {
				var out bytes.Buffer
				if err := dataflow.RunLocal(context.Background(), plan(t, windowSpec(path, p, c.window)), &out); err != nil {
					t.Fatal(err)
				}
				got := sortedOutput(&out)
				if strings.Contains(c.name, "top") {
					// key start end rank ts v: compare the rank and the value.
					for i, l := range got {
						f := strings.Fields(l)
						got[i] = strings.Join([]string{f[0], f[1], f[2], f[3], f[5]}, " ")
					}
					slices.Sort(got)
				}
				if !slices.Equal(got, c.want) {
					t.Fatalf("%d windows, want %d; first differences:\n%s", len(got), len(c.want), firstDiff(got, c.want))
				}
			})
		}
	}
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("at %d: got %q, want %q", i, g, w)
		}
	}
	return "none"
}

// lateSpec: a window fed by two generator channels (the harness's gate), its results on an
// edge of their own (print at another parallelism) and, with side, its late records on the
// side output `late`, read by a print.
func lateSpec(window string, side bool) string {
	s := fmt.Sprintf(`name: late
operators:
  - {name: g, type: generator, count: 10, parallelism: 2, timestamp: id, watermark: {max-out-of-orderness: 0s}}
  - {name: k, type: key_by, input: g, key: key}
  - {name: w, type: window, input: k, parallelism: 1, %s}
  - {name: o, type: print, input: w, parallelism: 3}
`, window)
	if side {
		s += "  - {name: l, type: print, input: w.late}\n"
	}
	return s
}

func keyed(key string, ts int64) []dataflow.Value {
	return []dataflow.Value{dataflow.Int(ts), dataflow.String(key), dataflow.Int(ts)}
}

// edgeRecords lists the records the subtask sent on the edge read by operator name.
func edgeRecords(p *dataflow.Plan, st *Subtask, to string) []string {
	return recordsTo(p, st.Out.Items(), to)
}

// recordsTo lists the records of items sent on the edge read by operator name, as
// "record @timestamp".
func recordsTo(p *dataflow.Plan, items []Item, to string) []string {
	var out []string
	for _, it := range items {
		if it.Record == nil || p.Vertices[p.Edges[it.Edge].Target].Operators[0] != to {
			continue
		}
		out = append(out, fmt.Sprintf("%s @%d", it.Record, it.Timestamp))
	}
	return out
}

func waitEdge(t *testing.T, p *dataflow.Plan, st *Subtask, to string, want []string) {
	t.Helper()
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(recordsTo(p, items, to)) >= len(want) }); err != nil {
		t.Fatalf("%s got %v, want %v: %v", to, edgeRecords(p, st, to), want, err)
	}
	if got := edgeRecords(p, st, to); !slices.Equal(got, want) {
		t.Fatalf("%s got %v, want %v", to, got, want)
	}
}

func bothWatermarks(st *Subtask, wm int64) {
	st.Gate.Watermark(0, wm)
	st.Gate.Watermark(1, wm)
}

// TestWindowLateness: a record behind the watermark but within the allowed lateness updates
// its fired window, which fires again with the new result (Flink's late firing); once the
// watermark passed the window's end plus the lateness, a record for it is dropped and
// counted in numLateRecordsDropped, or sent to the late side output when there is one.
func TestWindowLateness(t *testing.T) {
	for _, side := range []bool{false, true} {
		t.Run(fmt.Sprintf("side=%v", side), func(t *testing.T) {
			window := "tumbling: 10ms, allowed-lateness: 5ms, function: count"
			if side {
				window += ", late-output: late"
			}
			p := plan(t, lateSpec(window, side))
			st := Start(t, p, vertexOf(t, p, "w"), 0, nil)
			st.Gate.TimedRecord(0, 1, keyed("a", 1)...)
			st.Gate.TimedRecord(1, 2, keyed("a", 2)...)
			bothWatermarks(st, 9)
			waitEdge(t, p, st, "o", []string{"a 0 10 2 @9"})
			st.Gate.TimedRecord(0, 3, keyed("a", 3)...) // late, within the lateness
			waitEdge(t, p, st, "o", []string{"a 0 10 2 @9", "a 0 10 3 @9"})
			bothWatermarks(st, 14)                        // the window's lateness has passed: it is cleared
			st.Gate.TimedRecord(1, 4, keyed("a", 4)...)   // too late
			st.Gate.TimedRecord(0, 12, keyed("a", 12)...) // the next window
			bothWatermarks(st, math.MaxInt64)
			waitEdge(t, p, st, "o", []string{"a 0 10 2 @9", "a 0 10 3 @9", "a 10 20 1 @19"})
			dropped, sent := st.Metrics.LateRecordsDropped.Load(), edgeRecords(p, st, "l")
			if side {
				if dropped != 0 || !slices.Equal(sent, []string{"4 a 4 @4"}) {
					t.Fatalf("late side output %v, dropped %d: want the record at 4 sent, none dropped", sent, dropped)
				}
			} else if dropped != 1 {
				t.Fatalf("numLateRecordsDropped %d, want 1", dropped)
			}
		})
	}
}

// TestWindowSessionLateBridge: a late record (within the allowed lateness) whose session
// overlaps two sessions, one of them fired already, merges them into one session holding
// the records of both, whose timer then fires it once; the merged sessions' own timers were
// deleted, so neither fires again. A record for a session cleaned up is dropped.
func TestWindowSessionLateBridge(t *testing.T) {
	for _, fn := range []struct{ opts, first, merged string }{
		{"function: count", "a 0 10 1 @9", "a 0 25 3 @24"},
		{"function: sum, field: value", "a 0 10 0 @9", "a 0 25 23 @24"},
		{"top: 2, field: value", "a 0 10 1 0 0 @9", "a 0 25 1 15 15 @24|a 0 25 2 8 8 @24"},
	} {
		t.Run(fn.opts, func(t *testing.T) {
			p := plan(t, lateSpec("session: {gap: 10ms}, allowed-lateness: 100ms, "+fn.opts, false))
			st := Start(t, p, vertexOf(t, p, "w"), 0, nil)
			st.Gate.TimedRecord(0, 0, keyed("a", 0)...)
			st.Gate.TimedRecord(1, 15, keyed("a", 15)...)
			st.Gate.TimedRecord(1, 0, keyed("b", 0)...)
			bothWatermarks(st, 10) // [0,10) of a and b fire; a's [15,25) is open
			want := []string{fn.first, strings.Replace(fn.first, "a", "b", 1)}
			if strings.HasPrefix(fn.opts, "top") {
				want = []string{"a 0 10 1 0 0 @9", "b 0 10 1 0 0 @9"}
			}
			if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(recordsTo(p, items, "o")) >= 2 }); err != nil {
				t.Fatal(err)
			}
			got := edgeRecords(p, st, "o")
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("first sessions %v, want %v", got, want)
			}
			st.Gate.TimedRecord(0, 8, keyed("a", 8)...) // [8,18) bridges [0,10) and [15,25)
			bothWatermarks(st, 200)                     // b's session is cleaned up at 109
			st.Gate.TimedRecord(0, 5, keyed("b", 5)...) // too late for b's session
			bothWatermarks(st, math.MaxInt64)
			want = append(want, strings.Split(fn.merged, "|")...)
			if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(recordsTo(p, items, "o")) >= len(want) }); err != nil {
				t.Fatal(err)
			}
			got = edgeRecords(p, st, "o")
			slices.Sort(got[:2])
			if !slices.Equal(got, want) {
				t.Fatalf("sessions %v, want %v", got, want)
			}
			if err := st.Out.WaitFor(wait, func(items []Item) bool {
				n := len(items)
				return n > 0 && items[n-1].Event != nil && items[n-1].Event.Watermark == math.MaxInt64
			}); err != nil {
				t.Fatal(err)
			}
			if got := edgeRecords(p, st, "o"); len(got) != len(want) {
				t.Fatalf("a merged session fired again: %v", got)
			}
			if d := st.Metrics.LateRecordsDropped.Load(); d != 1 {
				t.Fatalf("numLateRecordsDropped %d, want 1 (b at 5)", d)
			}
		})
	}
}

// TestWindowRestoreRescale checkpoints windows with records and timers pending at
// parallelism 1 and restores them at 2 (and 1): each key's window contents, sessions and
// timers come back from keyed state in the subtask owning the key, and the windows fire
// with the records of before and after the checkpoint.
func TestWindowRestoreRescale(t *testing.T) {
	const keys = 7
	for _, c := range []struct{ window, fired, after string }{
		{"tumbling: 10ms, function: count", "%s 0 10 2", "%s 10 20 2"},
		{"session: {gap: 10ms}, function: count", "", "%s 1 25 4"},
		{"sliding: {size: 10ms, slide: 5ms}, function: sum, field: value", "%s -5 5 1|%s 0 10 6", "%s 5 15 17|%s 10 20 27|%s 15 25 15"},
	} {
		for _, to := range []int{2, 1} {
			t.Run(fmt.Sprintf("%s/1to%d", c.window, to), func(t *testing.T) {
				spec := func(p int) string {
					return strings.Replace(lateSpec(c.window, false), "parallelism: 1,", fmt.Sprintf("parallelism: %d,", p), 1)
				}
				p1 := plan(t, spec(1))
				v := vertexOf(t, p1, "w")
				c1 := NewCoordinator(p1, nil, v)
				st := Start(t, p1, v, 0, c1)
				var fired []string
				for k := range keys {
					key := "key-" + strconv.Itoa(k)
					for _, ts := range []int64{1, 5, 12} {
						st.Gate.TimedRecord(int(ts)%2, ts, keyed(key, ts)...)
					}
					if c.fired != "" {
						for _, f := range strings.Split(c.fired, "|") {
							fired = append(fired, fmt.Sprintf(f, key))
						}
					}
				}
				bothWatermarks(st, 9)
				if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(recordsTo(p1, items, "o")) >= len(fired) }); err != nil {
					t.Fatal(err)
				}
				md := checkpointAll(t, c1, []*Subtask{st})
				st.Kill()
				got := stripTimes(edgeRecords(p1, st, "o"))
				slices.Sort(fired)
				if !slices.Equal(got, fired) {
					t.Fatalf("before the checkpoint %v, want %v", got, fired)
				}

				p2 := plan(t, spec(to))
				c2 := NewCoordinator(p2, md, v).WithStore(c1.Store)
				var sts []*Subtask
				for s := range to {
					sts = append(sts, Start(t, p2, v, s, c2))
				}
				var want []string
				for k := range keys {
					key := "key-" + strconv.Itoa(k)
					sts[ownerOf(key, to)].Gate.TimedRecord(0, 15, keyed(key, 15)...)
					for _, f := range strings.Split(c.after, "|") {
						want = append(want, fmt.Sprintf(f, key))
					}
				}
				for _, s := range sts {
					bothWatermarks(s, math.MaxInt64)
				}
				slices.Sort(want)
				var all []string
				for _, s := range sts {
					if err := s.Out.WaitFor(wait, func(items []Item) bool {
						n := len(items)
						return n > 0 && items[n-1].Event != nil && items[n-1].Event.Watermark == math.MaxInt64
					}); err != nil {
						t.Fatal(err)
					}
					all = append(all, stripTimes(edgeRecords(p2, s, "o"))...)
				}
				slices.Sort(all)
				if !slices.Equal(all, want) {
					t.Fatalf("restored windows %v, want %v", all, want)
				}
			})
		}
	}
}

func stripTimes(recs []string) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i], _, _ = strings.Cut(r, " @")
	}
	slices.Sort(out)
	return out
}

// lockedBuffer is a Stdout written by the print subtasks while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// TestWindowIdleSourceSubtask runs an unbounded job whose second source subtask gets no
// record (a filter drops all of its generator's ids): its watermark operator marks it idle
// after the idle-timeout, so the window's input watermark follows the first subtask alone
// and windows fire with their exact counts while the job runs. Without idleness the empty
// channel would hold the watermark back forever (checked: the test then times out).
func TestWindowIdleSourceSubtask(t *testing.T) {
	spec := `name: idle
operators:
  - {name: g, type: generator, rate: 4000, keys: 3, parallelism: 2}
  - {name: f, type: filter, input: g, expr: "id % 16 < 8", parallelism: 2}
  - {name: ts, type: watermark, input: f, parallelism: 2, timestamp: id, watermark: {max-out-of-orderness: 0s, idle-timeout: 200ms}}
  - {name: k, type: key_by, input: ts, key: key}
  - {name: w, type: window, input: k, tumbling: 100ms, function: count, parallelism: 1}
  - {name: o, type: print, input: w}
`
	var want []string
	counts := map[string]int{}
	for id := range 300 {
		if id%16 < 8 {
			counts[fmt.Sprintf("key-%d %d %d", id%3, id/100*100, id/100*100+100)]++
		}
	}
	for k, n := range counts {
		want = append(want, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(want)
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- dataflow.RunLocal(ctx, plan(t, spec), out) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(wait)
	for {
		var got []string
		for _, l := range out.lines() {
			if f := strings.Fields(l); len(f) == 4 && (f[1] == "0" || f[1] == "100" || f[1] == "200") {
				got = append(got, l)
			}
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("job ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the first windows are %v, want %v", wait, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWindowProcessingTime: processing-time windows take the clock of the subtask: records
// without timestamps are counted in the window of their arrival, which fires by a
// processing-time timer while the job runs; on a bounded input the windows still open fire
// when the input ends, so no record is lost.
func TestWindowProcessingTime(t *testing.T) {
	p := plan(t, lateSpec("tumbling: 50ms, time: processing, function: count", false))
	st := Start(t, p, vertexOf(t, p, "w"), 0, nil)
	for i := range 3 {
		st.Gate.Record(i%2, keyed("a", int64(i))...)
	}
	if err := st.Out.WaitFor(wait, func(items []Item) bool {
		n := int64(0)
		for _, it := range items {
			if it.Record != nil {
				n += it.Record[3].AsInt()
				if it.Record[2].AsInt()-it.Record[1].AsInt() != 50 || it.Timestamp != it.Record[2].AsInt()-1 {
					t.Errorf("window %v at %d: want 50 ms, timestamp end-1", it.Record, it.Timestamp)
				}
			}
		}
		return n == 3
	}); err != nil {
		t.Fatalf("the processing-time windows did not fire with the 3 records: %v", err)
	}

	spec := `name: ptime
operators:
  - {name: g, type: generator, count: 1000, keys: 4}
  - {name: k, type: key_by, input: g, key: key}
  - {name: w, type: window, input: k, tumbling: 1h, time: processing, function: count}
  - {name: o, type: print, input: w}
`
	var out bytes.Buffer
	if err := dataflow.RunLocal(context.Background(), plan(t, spec), &out); err != nil {
		t.Fatal(err)
	}
	total := map[string]int{}
	for _, l := range sortedOutput(&out) {
		f := strings.Fields(l)
		n, _ := strconv.Atoi(f[3])
		total[f[0]] += n
	}
	if want := map[string]int{"key-0": 250, "key-1": 250, "key-2": 250, "key-3": 250}; !maps.Equal(total, want) {
		t.Fatalf("counts at the end of input %v, want %v (output %q)", total, want, out.String())
	}
}

// TestWindowLateOutputUnread: a late side output that no operator reads drops its records,
// so the window counts them in numLateRecordsDropped as if it had none.
func TestWindowLateOutputUnread(t *testing.T) {
	p := plan(t, lateSpec("tumbling: 10ms, function: count, late-output: late", false))
	st := Start(t, p, vertexOf(t, p, "w"), 0, nil)
	st.Gate.TimedRecord(0, 1, keyed("a", 1)...)
	bothWatermarks(st, 20)
	st.Gate.TimedRecord(0, 2, keyed("a", 2)...) // late
	st.Gate.TimedRecord(0, 25, keyed("a", 25)...)
	bothWatermarks(st, math.MaxInt64)
	waitEdge(t, p, st, "o", []string{"a 0 10 1 @9", "a 20 30 1 @29"})
	if d := st.Metrics.LateRecordsDropped.Load(); d != 1 {
		t.Fatalf("numLateRecordsDropped %d, want 1", d)
	}
}

// TestWindowOutOfOrderWithLateEvents feeds events shuffled within 5 s, with a bounded-out-of-
// orderness watermark 5 s behind the largest time sent, plus events far behind it: some
// within the 2 s allowed lateness of their window (they update it and re-fire it), some
// beyond (dropped and counted). The last result of each window must equal a plain count of
// the events that were not too late when they arrived, and the metric the count of the others.
func TestWindowOutOfOrderWithLateEvents(t *testing.T) {
	const size, lateness, ooo = 1000, 2000, 5000
	p := plan(t, lateSpec("tumbling: 1s, allowed-lateness: 2s, function: count", false))
	st := Start(t, p, vertexOf(t, p, "w"), 0, nil)
	r := rand.New(rand.NewPCG(5, 6))
	evs := outOfOrderEvents(3000, 4, 9)
	want := map[string]int{}
	dropped := 0
	maxTs, wm := int64(math.MinInt64), int64(math.MinInt64)
	send := func(e tevent) {
		start := e.ts - ((e.ts%size)+size)%size
		if start+size-1+lateness <= wm {
			dropped++
		} else {
			want[fmt.Sprintf("%s %d %d", e.key, start, start+size)]++
		}
		st.Gate.TimedRecord(0, e.ts, keyed(e.key, e.ts)...)
		if e.ts > maxTs {
			maxTs = e.ts
		}
		if w := maxTs - ooo - 1; w > wm {
			wm = w
			bothWatermarks(st, wm)
		}
	}
	for i, e := range evs {
		send(e)
		if i%40 == 39 && wm > math.MinInt64 {
			// Behind the watermark by 0.5 to 4.5 s: within or beyond the window's lateness.
			send(tevent{ts: wm - 500 - r.Int64N(4000), key: e.key})
		}
	}
	bothWatermarks(st, math.MaxInt64)
	if err := st.Out.WaitFor(wait, func(items []Item) bool {
		n := len(items)
		return n > 0 && items[n-1].Event != nil && items[n-1].Event.Watermark == math.MaxInt64
	}); err != nil {
		t.Fatal(err)
	}
	last := map[string]int{}
	for _, it := range st.Out.Items() {
		if it.Record != nil && p.Vertices[p.Edges[it.Edge].Target].Operators[0] == "o" {
			f := strings.Fields(it.Record.String())
			n, _ := strconv.Atoi(f[3])
			last[strings.Join(f[:3], " ")] = n // in emission order: the last result stays
		}
	}
	if !maps.Equal(last, want) {
		for k, v := range want {
			if last[k] != v {
				t.Errorf("window %s: last result %d, want %d", k, last[k], v)
			}
		}
		t.Fatalf("%d windows, want %d", len(last), len(want))
	}
	if dropped == 0 || dropped == 3000/40 {
		t.Fatalf("the test should drop some of the late events and keep others: %d dropped", dropped)
	}
	if d := st.Metrics.LateRecordsDropped.Load(); d != int64(dropped) {
		t.Fatalf("numLateRecordsDropped %d, want %d", d, dropped)
	}
	t.Logf("%d windows, %d late events dropped", len(want), dropped)
}
