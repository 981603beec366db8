package dataflowtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/state"
)

// wincount is a test operator on the timer API, the way windows use it: a keyed count per
// tumbling event-time window of `size` ms, its count in keyed state under the window's
// namespace and an event-time timer at the window's last ms; OnTimer emits (key, end,
// count) and clears the window. With `processing: true` it counts per key until a
// processing-time timer `size` ms after the key's first record.
type wincountOptions struct {
	Size       int64 `yaml:"size"`
	Processing bool  `yaml:"processing"`
}

func init() {
	dataflow.Register(dataflow.OperatorType{Name: "wincount", New: func() dataflow.Definition { return new(wincountOptions) }})
}

func (o *wincountOptions) Check(op *dataflow.OperatorSpec) (dataflow.Shape, error) {
	if o.Size <= 0 {
		return dataflow.Shape{}, op.Errorf("size", "must be at least 1 (ms)")
	}
	return dataflow.Shape{Inputs: 1, KeyedInput: true}, nil
}

func (o *wincountOptions) Plan(pc *dataflow.PlanContext) (dataflow.Schema, error) {
	return dataflow.Schema{{Name: "key", Kind: pc.Keys[0].Kind}, {Name: "end", Kind: dataflow.KindInt}, {Name: "count", Kind: dataflow.KindInt}}, nil
}

func (o *wincountOptions) Access(*dataflow.OperatorSpec) []dataflow.Access { return nil }

func (o *wincountOptions) NewOperator() dataflow.Operator { return &wincountOp{opts: o} }

type wincountOp struct {
	opts  *wincountOptions
	rc    *dataflow.RuntimeContext
	count *state.Value[int64]
	ns    []byte
	el    dataflow.Element
}

var _ dataflow.TimerHandler = (*wincountOp)(nil)

func (w *wincountOp) Open(_ context.Context, rc *dataflow.RuntimeContext) error {
	w.rc = rc
	var err error
	w.count, err = state.NewValue[int64](rc.KeyedState(), "count", state.Int64Codec)
	return err
}

func (w *wincountOp) Process(_ int, e *dataflow.Element) error {
	ts := rc(w).CurrentProcessingTime()
	end := int64(math.MaxInt64)
	if !w.opts.Processing {
		if !e.HasTimestamp() {
			return errors.New("record without a timestamp")
		}
		ts = e.Timestamp
		end = (ts/w.opts.Size + 1) * w.opts.Size
		if end-1 <= rc(w).CurrentWatermark() {
			return fmt.Errorf("late record at %d: watermark %d", ts, rc(w).CurrentWatermark())
		}
	}
	w.ns = binary.BigEndian.AppendUint64(w.ns[:0], uint64(end))
	w.count.SetNamespace(w.ns)
	n, _, err := w.count.Get()
	if err != nil {
		return err
	}
	if err := w.count.Set(n + 1); err != nil {
		return err
	}
	if w.opts.Processing {
		if n == 0 {
			return rc(w).RegisterProcessingTimeTimer(ts+w.opts.Size, w.ns)
		}
		return nil
	}
	return rc(w).RegisterEventTimeTimer(end-1, w.ns)
}

func rc(w *wincountOp) dataflow.TimerService { return w.rc.Timers() }

func (w *wincountOp) OnTimer(t dataflow.Timer) error {
	w.count.SetNamespace(t.Namespace)
	n, ok, err := w.count.Get()
	if err != nil || !ok {
		return fmt.Errorf("timer at %d of key %v without a count: %v", t.Time, t.Key, err)
	}
	if err := w.count.Clear(); err != nil {
		return err
	}
	end := int64(binary.BigEndian.Uint64(t.Namespace))
	if w.opts.Processing {
		end = -1
	}
	if t.Key != w.rc.CurrentKey() {
		return fmt.Errorf("timer key %v, current key %v", t.Key, w.rc.CurrentKey())
	}
	w.el = dataflow.Element{Record: dataflow.Record{t.Key, dataflow.Int(end), dataflow.Int(n)}, Timestamp: t.Time}
	return w.rc.Output.Collect(&w.el)
}

func (w *wincountOp) Finish() error { return nil }
func (w *wincountOp) Close() error  { return nil }

func wincountSpec(gen, win int, extra string) string {
	return fmt.Sprintf(`name: wc
operators:
  - {name: g, type: generator, count: 20000, rate: 20000, keys: 7, parallelism: %d, timestamp: id, watermark: {max-out-of-orderness: 0s}}
  - {name: k, type: key_by, input: g, key: key}
  - {name: w, type: wincount, input: k, size: 1000, parallelism: %d%s}
  - {name: o, type: print, input: w, parallelism: 3}
`, gen, win, extra)
}

// wantWindows is what wincount emits for the ids 0..n-1 (timestamp = id) in windows of
// size over keys keys.
func wantWindows(n, size, keys int) []string {
	counts := map[[2]int]int{}
	for id := range n {
		counts[[2]int{id % keys, (id/size + 1) * size}]++
	}
	var out []string
	for k, c := range counts {
		out = append(out, fmt.Sprintf("key-%d %d %d", k[0], k[1], c))
	}
	slices.Sort(out)
	return out
}

// TestEventTimeWindowsLocal runs generator -> key_by -> wincount with the generator's
// timestamps and watermarks at parallelism 1 and 2: every window fires once with its exact
// count (no record is late: each channel's watermark trails its own records and the task
// takes the minimum), the last ones on the final watermark at the end of input.
func TestEventTimeWindowsLocal(t *testing.T) {
	want := wantWindows(20000, 1000, 7)
	for _, p := range []int{1, 2} {
		t.Run(fmt.Sprintf("p%d", p), func(t *testing.T) {
			var out bytes.Buffer
			if err := dataflow.RunLocal(context.Background(), plan(t, wincountSpec(p, p, "")), &out); err != nil {
				t.Fatal(err)
			}
			if got := sortedOutput(&out); !slices.Equal(got, want) {
				t.Fatalf("output:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestEventTimeWindowsKillAndRestore kills a windowed job after three checkpoints and
// restores it at other parallelisms: timers come back from the keyed state of the
// checkpoint, so every window fires with its exact count; windows that fired between the
// checkpoint and the kill fire again (print is not transactional), with the same count.
func TestEventTimeWindowsKillAndRestore(t *testing.T) {
	want := wantWindows(20000, 1000, 7)
	for _, to := range [][2]int{{2, 2}, {1, 2}, {2, 1}} {
		t.Run(fmt.Sprintf("to%dx%d", to[0], to[1]), func(t *testing.T) {
			p1 := plan(t, wincountSpec(2, 1, ""))
			c1 := NewCoordinator(p1, nil)
			var out1 bytes.Buffer
			err := runChecking(t, p1, c1, &out1, func(done []*checkpoint.Metadata) bool { return len(done) >= 3 })
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("first run: %v, want it killed mid-way", err)
			}
			done := c1.Completed()
			md := done[len(done)-1]
			p2 := plan(t, wincountSpec(to[0], to[1], ""))
			c2 := NewCoordinator(p2, md).WithStore(c1.Store)
			var out2 bytes.Buffer
			if err := runChecking(t, p2, c2, &out2, nil); err != nil {
				t.Fatalf("restored run: %v", err)
			}
			seen := map[string]bool{}
			for _, l := range append(sortedOutput(&out1), sortedOutput(&out2)...) {
				if l == "" {
					continue
				}
				if !slices.Contains(want, l) {
					t.Fatalf("window %q is not in the expected output %v", l, want)
				}
				seen[l] = true
			}
			if len(seen) != len(want) {
				t.Fatalf("%d of %d windows fired:\nfirst run %v\nrestored %v", len(seen), len(want), sortedOutput(&out1), sortedOutput(&out2))
			}
		})
	}
}

// timed feeds the records of ids from..to-1 (timestamp = id) to the wincount subtasks that
// own their keys, on the channel of the generator subtask emitting them.
func timed(sts []*Subtask, from, to, keys int) {
	for id := from; id < to; id++ {
		key := "key-" + strconv.Itoa(id%keys)
		sts[ownerOf(key, len(sts))].Gate.TimedRecord(id%2, int64(id), dataflow.Int(int64(id)), dataflow.String(key), dataflow.Int(int64(id)))
	}
}

func watermarkAll(sts []*Subtask, wm int64) {
	for _, st := range sts {
		st.Gate.Watermark(0, wm)
		st.Gate.Watermark(1, wm)
	}
}

// windows parses what the subtasks emitted as "key end count" lines, sorted; it fails on a
// window emitted twice.
func windows(t *testing.T, sts []*Subtask) []string {
	t.Helper()
	var out []string
	for _, st := range sts {
		out = append(out, st.Out.Records()...)
	}
	slices.Sort(out)
	if c := slices.Compact(slices.Clone(out)); len(c) != len(out) {
		t.Fatalf("a window fired twice: %v", out)
	}
	return out
}

// waitRecords waits until the subtasks emitted n records in all.
func waitRecords(t *testing.T, sts []*Subtask, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := 0
		for _, st := range sts {
			got += len(st.Out.Records())
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records after %v, want %d", got, wait, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEventTimeTimersRestore drives wincount subtasks through the harness: the watermark
// (the minimum of both channels) fires the due windows; event-time timers pending at a
// checkpoint taken at parallelism 1 are restored at 2 and 1, each by the subtask owning its
// key, and fire once the watermark passes them.
func TestEventTimeTimersRestore(t *testing.T) {
	const keys = 7
	for _, to := range []int{2, 1} {
		t.Run(fmt.Sprintf("1to%d", to), func(t *testing.T) {
			p1 := plan(t, wincountSpec(2, 1, ""))
			v := vertexOf(t, p1, "w")
			c1 := NewCoordinator(p1, nil, v)
			sts := []*Subtask{Start(t, p1, v, 0, c1)}
			timed(sts, 0, 1500, keys)
			sts[0].Gate.Watermark(0, 999) // channel 1 holds the watermark back
			timed(sts, 1500, 1600, keys)
			if got := windows(t, sts); len(got) != 0 {
				t.Fatalf("windows fired before the minimum watermark passed them: %v", got)
			}
			sts[0].Gate.Watermark(1, 1200) // the input watermark is now 999
			waitRecords(t, sts, keys)
			if got, want := windows(t, sts), wantWindows(1000, 1000, keys); !slices.Equal(got, want) {
				t.Fatalf("first windows:\n got %v\nwant %v", got, want)
			}
			md := checkpointAll(t, c1, sts)
			timed(sts, 1600, 1700, keys) // lost with the failure
			sts[0].Kill()

			p2 := plan(t, wincountSpec(2, to, ""))
			c2 := NewCoordinator(p2, md, v).WithStore(c1.Store)
			var sts2 []*Subtask
			for s := range to {
				sts2 = append(sts2, Start(t, p2, v, s, c2))
			}
			timed(sts2, 1600, 3000, keys)
			watermarkAll(sts2, 1999)
			waitRecords(t, sts2, keys)
			watermarkAll(sts2, math.MaxInt64)
			waitRecords(t, sts2, 2*keys)
			var later []string // the windows after the first
			for _, w := range wantWindows(3000, 1000, keys) {
				if !strings.Contains(w, " 1000 ") {
					later = append(later, w)
				}
			}
			if got := windows(t, sts2); !slices.Equal(got, later) {
				t.Fatalf("restored windows:\n got %v\nwant %v", got, later)
			}
			for _, st := range sts2 {
				items := st.Out.Items()
				last := items[len(items)-1]
				if last.Event == nil || last.Event.Kind != event.KindWatermark || last.Event.Watermark != math.MaxInt64 {
					t.Fatalf("the last item sent is %v, want the final watermark after the windows it fired", last)
				}
				for _, it := range items {
					if it.Record != nil && (!it.Timed || it.Timestamp != it.Record[1].AsInt()-1) {
						t.Fatalf("window %v sent with timestamp %d (timed %v), want its end - 1", it.Record, it.Timestamp, it.Timed)
					}
				}
			}
		})
	}
}

// TestProcessingTimeTimersRestore registers processing-time timers, checkpoints with them
// pending, and checks that the restored subtask fires them from its keyed state.
func TestProcessingTimeTimersRestore(t *testing.T) {
	spec := wincountSpec(2, 1, ", processing: true")
	spec = strings.Replace(spec, "size: 1000", "size: 300", 1)
	p1 := plan(t, spec)
	v := vertexOf(t, p1, "w")
	c1 := NewCoordinator(p1, nil, v)
	sts := []*Subtask{Start(t, p1, v, 0, c1)}
	for i := range 10 {
		sts[0].Gate.Record(i%2, dataflow.Int(int64(i)), dataflow.String("key-"+strconv.Itoa(i%2)), dataflow.Int(0))
	}
	md := checkpointAll(t, c1, sts)
	sts[0].Kill()
	if got := windows(t, sts); len(got) != 0 {
		t.Fatalf("fired before the checkpoint: %v", got)
	}
	c2 := NewCoordinator(p1, md, v).WithStore(c1.Store)
	start := time.Now()
	sts2 := []*Subtask{Start(t, p1, v, 0, c2)}
	waitRecords(t, sts2, 2)
	if got, want := windows(t, sts2), []string{"key-0 -1 5", "key-1 -1 5"}; !slices.Equal(got, want) {
		t.Fatalf("restored processing-time timers emitted %v, want %v", got, want)
	}
	if d := time.Since(start); d > wait {
		t.Fatalf("timers fired after %v", d)
	}
}

// TestIdleChannel: a channel that announces itself idle holds the watermark back no more;
// when it becomes active again it holds it back from its own watermark on.
func TestIdleChannel(t *testing.T) {
	p := plan(t, wincountSpec(2, 1, ""))
	v := vertexOf(t, p, "w")
	st := Start(t, p, v, 0, nil)
	sts := []*Subtask{st}
	timed(sts, 0, 1000, 7)
	st.Gate.Watermark(0, 1500)
	st.Gate.Idle(1, true)
	waitRecords(t, sts, 7)
	if err := st.Out.WaitFor(wait, func(items []Item) bool {
		for _, it := range items {
			if it.Event != nil && it.Event.Kind == event.KindWatermark && it.Event.Watermark == 1500 {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	st.Gate.Idle(1, false)
	st.Gate.Watermark(1, 1700)
	st.Gate.Watermark(0, 2500)
	st.Gate.Idle(1, true)
	st.Gate.Idle(0, true)
	if err := st.Out.WaitFor(wait, func(all []Item) bool {
		var items []Item
		for _, it := range all {
			if it.Target == 0 {
				items = append(items, it)
			}
		}
		n := len(items)
		return n >= 2 && items[n-1].Event != nil && items[n-1].Event.Kind == event.KindWatermarkStatus && items[n-1].Event.Status == event.Idle &&
			items[n-2].Event != nil && items[n-2].Event.Kind == event.KindWatermark && items[n-2].Event.Watermark == 2500
	}); err != nil {
		t.Fatalf("want WATERMARK 2500 (the active channel's, when the other went idle) then IDLE: %v", err)
	}
	var wms []string
	for _, it := range st.Out.Items() {
		if it.Event != nil && it.Target == 0 {
			wms = append(wms, it.Event.String())
		}
	}
	if want := []string{"WATERMARK 1500", "WATERMARK 1700", "WATERMARK 2500", "WATERMARK_STATUS IDLE"}; !slices.Equal(wms, want) {
		t.Fatalf("events sent %v, want %v", wms, want)
	}
}

// TestSourceGoesIdle: a source subtask without records for its idle-timeout sends
// WATERMARK_STATUS IDLE, and ACTIVE again before its next record; its watermarks trail its
// timestamps by the bound.
func TestSourceGoesIdle(t *testing.T) {
	p := plan(t, `name: idle
operators:
  - {name: g, type: generator, rate: 2, keys: 3, parallelism: 2, timestamp: id, watermark: {max-out-of-orderness: 1s, idle-timeout: 100ms}}
  - {name: o, type: print, input: g, parallelism: 1}
`)
	st := Start(t, p, vertexOf(t, p, "g"), 0, nil)
	var seq []string
	err := st.Out.WaitFor(10*time.Second, func(items []Item) bool {
		seq = seq[:0]
		for _, it := range items {
			switch {
			case it.Record != nil:
				seq = append(seq, fmt.Sprintf("record@%d", it.Timestamp))
			case it.Event != nil && it.Event.Kind == event.KindWatermarkStatus:
				seq = append(seq, it.Event.Status.String())
			}
		}
		return len(seq) >= 4
	})
	if err != nil {
		t.Fatal(err)
	}
	// Subtask 0 emits ids 0, 1, 2, ... (its splits' first ids) at one a second.
	if want := []string{"record@0", "IDLE", "ACTIVE", "record@1"}; !slices.Equal(seq[:4], want) {
		t.Fatalf("sent %v, want %v", seq, want)
	}
	for _, it := range st.Out.Items() {
		if it.Event != nil && it.Event.Kind == event.KindWatermark && it.Event.Watermark > -1000 {
			t.Fatalf("watermark %d beyond the largest timestamp minus the 1s bound", it.Event.Watermark)
		}
	}
}

// TestWatermarkOperator: a watermark operator drops its input's watermarks and idle status,
// stamps records from its `timestamp:` field, emits its own bounded-out-of-orderness
// watermark, and at the end of its input the final watermark before END_OF_DATA.
func TestWatermarkOperator(t *testing.T) {
	p := plan(t, `name: wmop
operators:
  - {name: g, type: generator, count: 100, parallelism: 2}
  - {name: w, type: watermark, input: g, timestamp: value, watermark: {max-out-of-orderness: 10ms}}
  - {name: o, type: print, input: w, parallelism: 3}
`)
	st := Start(t, p, vertexOf(t, p, "w"), 0, nil)
	st.Gate.TimedRecord(0, 1, dataflow.Int(1), dataflow.String("key-1"), dataflow.Int(5000))
	st.Gate.Watermark(0, 100000)
	st.Gate.Watermark(1, 100000)
	st.Gate.Idle(1, true)
	st.Gate.Record(1, dataflow.Int(2), dataflow.String("key-2"), dataflow.Int(4000))
	if err := st.Out.WaitFor(wait, func(items []Item) bool {
		for _, it := range items {
			if it.Target == 0 && it.Event != nil && it.Event.Kind == event.KindWatermark {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []int{0, 1} {
		st.Gate.EndOfData(ch)
	}
	if err := st.Out.WaitFor(wait, func(items []Item) bool {
		return len(items) > 0 && items[len(items)-1].Event != nil && items[len(items)-1].Event.Kind == event.KindEndOfData
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range st.Out.Items() {
		if it.Target != 0 {
			continue
		}
		switch {
		case it.Record != nil:
			got = append(got, fmt.Sprintf("%v@%d", it.Record, it.Timestamp))
		case it.Event != nil:
			got = append(got, it.Event.String())
		}
	}
	want := []string{"1 key-1 5000@5000", "2 key-2 4000@4000", "WATERMARK 4989", "WATERMARK MAX", "END_OF_DATA"}
	// The records go round-robin over the three targets: target 0 has the first only.
	want = slices.DeleteFunc(want, func(s string) bool { return strings.HasPrefix(s, "2 ") })
	if !slices.Equal(got, want) {
		t.Fatalf("target 0 got %v, want %v", got, want)
	}
}

// TestWatermarkWaitsBehindBarrier: during exactly-once alignment a channel that delivered
// the barrier is blocked, and its watermark waits with its records: the task's watermark
// does not pass the barrier on that channel until alignment ends.
func TestWatermarkWaitsBehindBarrier(t *testing.T) {
	p := plan(t, wincountSpec(2, 1, ""))
	v := vertexOf(t, p, "w")
	c := NewCoordinator(p, nil, v)
	st := Start(t, p, v, 0, c)
	id := c.Trigger(event.Checkpoint)
	st.Gate.Barrier(0, id)
	if err := st.Gate.WaitBlocked(0, true, wait); err != nil {
		t.Fatal(err)
	}
	st.Gate.TimedRecord(0, 10, dataflow.Int(10), dataflow.String("key-3"), dataflow.Int(10))
	st.Gate.Watermark(0, 5000) // behind the barrier: held
	st.Gate.Watermark(1, 4000)
	// Channel 1's watermark is in; channel 0's is held, so nothing may go out yet. The
	// harness gate serves channel 1 in order: a record after the watermark shows it was read.
	st.Gate.TimedRecord(1, 3500, dataflow.Int(1), dataflow.String("key-1"), dataflow.Int(1))
	watermarks := func(items []Item) []string {
		var out []string
		for _, it := range items {
			if it.Target == 0 && it.Event != nil && it.Event.Kind == event.KindWatermark {
				out = append(out, it.Event.String())
			}
		}
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st.Gate.Barrier(1, id)
	if _, err := c.WaitCompleted(ctx, id); err != nil {
		t.Fatal(err)
	}
	// WaitFor's condition runs under the output's lock: it reads the items it is given.
	if err := st.Out.WaitFor(wait, func(items []Item) bool { return len(watermarks(items)) > 0 }); err != nil {
		t.Fatal(err)
	}
	items := st.Out.Items()
	barrierAt, wmAt := -1, -1
	for i, it := range items {
		if it.Target != 0 || it.Event == nil {
			continue
		}
		if it.Event.Kind == event.KindBarrier && barrierAt < 0 {
			barrierAt = i
		}
		if it.Event.Kind == event.KindWatermark && wmAt < 0 {
			wmAt = i
		}
	}
	if barrierAt < 0 || wmAt < barrierAt {
		t.Fatalf("a watermark went out before the barrier (barrier at %d, watermark at %d): %v", barrierAt, wmAt, items)
	}
	if got := watermarks(items); got[0] != "WATERMARK 4000" {
		t.Fatalf("watermarks %v, want 4000 first (the minimum once channel 0's 5000 is released)", got)
	}
}
