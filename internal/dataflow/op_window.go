package dataflow

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/internal/state"
)

// TypeWindow aggregates the records of each key of a keyed input per time window (Flink's
// WindowOperator with an AggregateFunction, or a top N per window):
//
//	tumbling: 10s | sliding: {size: 10s, slide: 2s} | session: {gap: 30s}
//	time: event | processing           # event time by default
//	function: count|sum|min|max|avg, field: F, as: NAME    # as the aggregate
//	top: N, field: F, as: NAME         # the N records with the highest F (as: rank)
//	allowed-lateness: 2s, late-output: NAME
//
// Each key's windows keep only their accumulator (or their top N) in keyed state, under the
// window's encoding as namespace; an event-time timer at the window's last ms fires it, and
// one at that time plus the allowed lateness clears it. Output records are (key,
// window_start, window_end, result) or, with top, one (key, window_start, window_end, rank,
// fields of the record...) per ranked record; their timestamp is window_end - 1.
const TypeWindow = "window"

func init() {
	Register(OperatorType{Name: TypeWindow, New: func() Definition { return new(WindowOptions) }})
}

// The output fields of a window besides the key and the result.
const (
	WindowStartField = "window_start"
	WindowEndField   = "window_end"
)

// maxWindowTop bounds `top`: the top list of a window is read and rewritten per record.
const maxWindowTop = 1000

// maxSlidingWindows bounds size/slide: a record is added to that many windows.
const maxSlidingWindows = 1000

// WindowOptions are the options of a window.
type WindowOptions struct {
	Tumbling        windowDuration `yaml:"tumbling"`
	Sliding         slidingWindow  `yaml:"sliding"`
	Session         sessionWindow  `yaml:"session"`
	Time            string         `yaml:"time" want:"event or processing"`
	AllowedLateness windowDuration `yaml:"allowed-lateness"`
	LateOutput      string         `yaml:"late-output" want:"a side output name"`
	Top             int            `yaml:"top" want:"a number of records"`
	AggFunction     `yaml:",inline"`

	// After Check.
	kind       string // tumbling, sliding, session
	size       int64  // ms; the gap of a session
	slide      int64  // ms; sliding only
	lateness   int64  // ms
	processing bool

	// After Plan.
	fn       aggFunc
	topField int
	keyField int // the input field named as the key, left out of top's output; -1: none
	in       Schema
}

func (w *WindowOptions) StampsResults() {}

var _ TimestampingOperator = (*WindowOptions)(nil)

// Check implements Definition.
func (w *WindowOptions) Check(op *OperatorSpec) (Shape, error) {
	var kinds []string
	if w.Tumbling.set {
		kinds = append(kinds, "tumbling")
	}
	if w.Sliding.set {
		kinds = append(kinds, "sliding")
	}
	if w.Session.set {
		kinds = append(kinds, "session")
	}
	switch len(kinds) {
	case 0:
		return Shape{}, op.errf("tumbling", "missing window: set one of tumbling: 10s, sliding: {size: 10s, slide: 2s} or session: {gap: 30s}")
	case 1:
	default:
		return Shape{}, op.errf(kinds[1], "more than one window kind (%s): a window operator has one; use one operator per kind", listOrNone(kinds))
	}
	w.kind = kinds[0]
	var err error
	switch w.kind {
	case "tumbling":
		w.size, err = windowMillis(op, "tumbling", w.Tumbling)
	case "sliding":
		if w.size, err = windowMillis(op, "sliding.size", w.Sliding.Size); err != nil {
			return Shape{}, err
		}
		if w.slide, err = windowMillis(op, "sliding.slide", w.Sliding.Slide); err != nil {
			return Shape{}, err
		}
		switch {
		case w.slide > w.size:
			return Shape{}, op.errf("sliding.slide", "line %d: slide %v is larger than the size %v: records between windows would be lost; use a slide of at most the size (equal: a tumbling window)", w.Sliding.Slide.line, w.Sliding.Slide.d, w.Sliding.Size.d)
		case w.size/w.slide > maxSlidingWindows:
			return Shape{}, op.errf("sliding", "line %d: size/slide is %d: each record goes to that many windows; at most %d", w.Sliding.line, w.size/w.slide, maxSlidingWindows)
		}
	case "session":
		w.size, err = windowMillis(op, "session.gap", w.Session.Gap)
	}
	if err != nil {
		return Shape{}, err
	}
	switch w.Time {
	case "", "event":
		w.Time = "event"
	case "processing":
		w.processing = true
	default:
		return Shape{}, op.errf("time", "unknown time %q: want event (the records' timestamps, the default) or processing (the clock of the TaskManager)", w.Time)
	}
	if w.AllowedLateness.set {
		if w.processing {
			return Shape{}, op.errf("allowed-lateness", "line %d: processing-time windows have no late records: remove it or use time: event", w.AllowedLateness.line)
		}
		if w.AllowedLateness.d < 0 || w.AllowedLateness.d%time.Millisecond != 0 {
			return Shape{}, op.errf("allowed-lateness", "line %d: %v must be 0 or more, in whole milliseconds", w.AllowedLateness.line, w.AllowedLateness.d)
		}
		w.lateness = w.AllowedLateness.d.Milliseconds()
	}
	if w.LateOutput != "" {
		if w.processing {
			return Shape{}, op.errf("late-output", "processing-time windows have no late records: remove it or use time: event")
		}
		if !identRE.MatchString(w.LateOutput) {
			return Shape{}, op.errf("late-output", "side output name %q must be letters, digits and '_' (downstream reads it as input: %s.%s)", w.LateOutput, op.Name, w.LateOutput)
		}
	}
	switch {
	case w.Top < 0 || w.Top > maxWindowTop:
		return Shape{}, op.errf("top", "%d: want 1 to %d records per key and window", w.Top, maxWindowTop)
	case w.Top > 0 && w.Field == "":
		return Shape{}, op.errf("top", "top needs field: the field whose highest values are kept")
	case w.Top > 0 && w.Function != "":
		return Shape{}, op.errf("function", "top and function are exclusive: top ranks records, function aggregates them; use two window operators")
	case w.Top > 0:
		if w.As == "" {
			w.As = "rank"
		}
	default:
		if err := w.AggFunction.check(op); err != nil {
			return Shape{}, err
		}
	}
	return Shape{Inputs: 1, KeyedInput: true}, nil
}

// windowMillis is a window length in ms, refused unless positive and whole ms.
func windowMillis(op *OperatorSpec, opt string, d windowDuration) (int64, error) {
	if d.d <= 0 {
		return 0, op.errf(opt, "line %d: window size %v must be greater than 0", d.line, d.d)
	}
	if d.d%time.Millisecond != 0 {
		return 0, op.errf(opt, "line %d: %v is not a whole number of milliseconds", d.line, d.d)
	}
	return d.d.Milliseconds(), nil
}

// Plan implements Definition.
func (w *WindowOptions) Plan(pc *PlanContext) (Schema, error) {
	o, in, key := pc.Op, pc.Inputs[0], pc.Keys[0]
	if key == nil {
		return nil, o.errf("input", "a window needs a keyed input: put a key_by before it")
	}
	w.in = in
	if !w.processing && !pc.Timestamped {
		return nil, o.errf("time", "an event-time window needs timestamped records, and no operator before it assigns them: add timestamp: FIELD and watermark: {max-out-of-orderness: DURATION} to the source (or a %s operator before the key_by), or set time: processing", TypeWatermark)
	}
	if key.Name == WindowStartField || key.Name == WindowEndField {
		return nil, o.errf("input", "the key is named %q, a field the window adds: name the key otherwise in the key_by", key.Name)
	}
	out := Schema{{Name: key.Name, Kind: key.Kind}, {Name: WindowStartField, Kind: KindInt}, {Name: WindowEndField, Kind: KindInt}}
	reserved := []string{key.Name, WindowStartField, WindowEndField}
	if w.Top == 0 {
		fn, kind, err := w.AggFunction.plan(o, in)
		if err != nil {
			return nil, err
		}
		if slices.Contains(reserved, w.As) {
			return nil, o.errf("as", "output field %q collides with the key or window fields: choose another name", w.As)
		}
		w.fn = fn
		return append(out, Field{Name: w.As, Kind: kind}), nil
	}
	if err := CheckFieldName(o, "as", w.As); err != nil {
		return nil, err
	}
	if slices.Contains(reserved, w.As) {
		return nil, o.errf("as", "rank field %q collides with the key or window fields: choose another name", w.As)
	}
	if w.topField = in.Index(w.Field); w.topField < 0 {
		return nil, o.errf("field", "unknown field %q: input has fields %s", w.Field, listOrNone(in.Names()))
	}
	out = append(out, Field{Name: w.As, Kind: KindInt})
	w.keyField = in.Index(key.Name)
	for i, f := range in {
		if i == w.keyField {
			continue
		}
		if slices.Contains(reserved, f.Name) || f.Name == w.As {
			return nil, o.errf("top", "input field %q collides with an output field of the window (key, %s, %s, %s): rename it with a map before the key_by", f.Name, WindowStartField, WindowEndField, w.As)
		}
		out = append(out, f)
	}
	return out, nil
}

// SideOutputTags implements SideOutputs: the late records' side output, when set.
func (w *WindowOptions) SideOutputTags() []string {
	if w.LateOutput == "" {
		return nil
	}
	return []string{w.LateOutput}
}

// SideOutputSchema implements SideOutputs: late records are input records.
func (w *WindowOptions) SideOutputSchema(string) Schema { return w.in }

// Access implements Definition.
func (w *WindowOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (w *WindowOptions) NewOperator() Operator {
	n := 4
	if w.Top > 0 {
		n += len(w.in)
		if w.keyField >= 0 {
			n--
		}
	}
	return &windowOp{opts: w, rec: make(Record, n)}
}

// windowOp is a subtask of a window operator.
type windowOp struct {
	opts   *WindowOptions
	rc     *RuntimeContext
	timers TimerService
	out    Output
	late   Output // the late side output; nil: late records are counted and dropped
	agg    *state.Value[aggState]
	top    *state.Value[[]topEntry]
	sess   *state.Value[[]window] // session windows: the key's sessions, default namespace

	wins    []window
	ns      []byte
	rec     Record
	scratch Record
	recBuf  []byte
	el      Element
}

var _ TimerHandler = (*windowOp)(nil)

func (w *windowOp) Open(_ context.Context, rc *RuntimeContext) error {
	b := rc.KeyedState()
	if rc.inKey == nil || b == nil {
		return fmt.Errorf("a %s needs a keyed input", TypeWindow)
	}
	w.rc, w.timers, w.out = rc, rc.Timers(), rc.Output
	var err error
	if w.opts.Top > 0 {
		w.top, err = state.NewValue[[]topEntry](b, "window-top", &topCodec{field: w.opts.topField})
	} else {
		w.agg, err = state.NewValue[aggState](b, "window-aggregate", &aggCodec{})
	}
	if err != nil {
		return err
	}
	if w.opts.kind == "session" {
		if w.sess, err = state.NewValue[[]window](b, "window-sessions", sessionsCodec{}); err != nil {
			return err
		}
	}
	if w.opts.LateOutput != "" {
		w.late = rc.SideOutput(w.opts.LateOutput)
		if _, none := w.late.(discardOutput); none {
			// No operator reads it: the late records are dropped, so they are counted.
			w.late = nil
		}
	}
	return nil
}

// cleanupTime is when a window's state goes: its end plus the allowed lateness.
func (w *windowOp) cleanupTime(win window) int64 {
	if w.opts.processing {
		return win.maxTimestamp()
	}
	return addSat(win.maxTimestamp(), w.opts.lateness)
}

// isLate says a window was cleaned up already: records for it are late.
func (w *windowOp) isLate(win window, wm int64) bool {
	return !w.opts.processing && w.cleanupTime(win) <= wm
}

func (w *windowOp) Process(_ int, e *Element) error {
	var ts, wm int64
	if w.opts.processing {
		ts, wm = w.timers.CurrentProcessingTime(), NoTimestamp
	} else {
		if !e.HasTimestamp() {
			return fmt.Errorf("record without a timestamp: an event-time window needs timestamp: FIELD on the source (or a %s operator), or time: processing", TypeWatermark)
		}
		ts, wm = e.Timestamp, w.timers.CurrentWatermark()
	}
	if w.opts.kind == "session" {
		return w.processSession(e, ts, wm)
	}
	w.wins = w.wins[:0]
	switch w.opts.kind {
	case "tumbling":
		start := ts - floorMod(ts, w.opts.size)
		w.wins = append(w.wins, window{start, start + w.opts.size})
	case "sliding":
		for start := ts - floorMod(ts, w.opts.slide); start > ts-w.opts.size; start -= w.opts.slide {
			w.wins = append(w.wins, window{start, start + w.opts.size})
		}
	}
	skipped := true
	for _, win := range w.wins {
		if w.isLate(win, wm) {
			continue
		}
		skipped = false
		fresh, err := w.add(win, e.Record)
		if err != nil {
			return err
		}
		if err := w.onElement(win, wm, fresh); err != nil {
			return err
		}
	}
	if skipped {
		return w.lateRecord(e, ts, wm)
	}
	return nil
}

// lateRecord handles a record that went to no window because each was cleaned up: one later
// than the allowed lateness goes to the side output, or is counted and dropped.
func (w *windowOp) lateRecord(e *Element, ts, wm int64) error {
	if w.opts.processing || addSat(ts, w.opts.lateness) > wm {
		return nil
	}
	if w.late != nil {
		return w.late.Collect(e)
	}
	if w.rc.Metrics != nil {
		w.rc.Metrics.LateRecordsDropped.Add(1)
	}
	return nil
}

// processSession merges the record's session [ts, ts+gap) with the key's sessions it
// overlaps (Flink's MergingWindowSet): their contents are merged into the covering session
// and their timers deleted, so a late record bridging two sessions makes one.
func (w *windowOp) processSession(e *Element, ts, wm int64) error {
	w.sess.SetNamespace(nil)
	sessions, _, err := w.sess.Get()
	if err != nil {
		return err
	}
	merged := window{ts, addSat(ts, w.opts.size)}
	absorbed := make([]bool, len(sessions))
	for changed := true; changed; {
		changed = false
		for i, s := range sessions {
			if !absorbed[i] && s.intersects(merged) {
				absorbed[i], changed = true, true
				merged = merged.cover(s)
			}
		}
	}
	kept := sessions[:0:0]
	var from []window
	for i, s := range sessions {
		switch {
		case !absorbed[i]:
			kept = append(kept, s)
		case s != merged:
			from = append(from, s)
		}
	}
	if len(from) == 0 && !slices.Contains(sessions, merged) && w.isLate(merged, wm) {
		return w.lateRecord(e, ts, wm)
	}
	if len(from) > 0 {
		if err := w.mergeInto(merged, from); err != nil {
			return err
		}
	}
	// A session that is new (the record's own, or one covering others) needs its timers;
	// an existing one has them.
	isNew := !slices.Contains(sessions, merged)
	if len(from) > 0 || isNew {
		kept = append(kept, merged)
		slices.SortFunc(kept, func(a, b window) int { return cmp.Compare(a.start, b.start) })
		w.sess.SetNamespace(nil)
		if err := w.sess.Set(kept); err != nil {
			return err
		}
	}
	if _, err := w.add(merged, e.Record); err != nil {
		return err
	}
	return w.onElement(merged, wm, isNew)
}

// mergeInto moves the contents of the windows from into win and deletes their timers.
func (w *windowOp) mergeInto(win window, from []window) error {
	w.ns = appendWindow(w.ns[:0], win)
	var acc aggState
	var list []topEntry
	var err error
	if w.agg != nil {
		w.agg.SetNamespace(w.ns)
		acc, _, err = w.agg.Get()
	} else {
		w.top.SetNamespace(w.ns)
		list, _, err = w.top.Get()
	}
	if err != nil {
		return err
	}
	var ns []byte
	for _, f := range from {
		ns = appendWindow(ns[:0], f)
		if w.agg != nil {
			w.agg.SetNamespace(ns)
			st, ok, err := w.agg.Get()
			if err != nil {
				return err
			}
			if ok {
				w.opts.fn.merge(&acc, &st)
			}
			if err := w.agg.Clear(); err != nil {
				return err
			}
		} else {
			w.top.SetNamespace(ns)
			l, _, err := w.top.Get()
			if err != nil {
				return err
			}
			for _, e := range l {
				list = topInsert(list, e, w.opts.Top)
			}
			if err := w.top.Clear(); err != nil {
				return err
			}
		}
		if err := w.deleteTimers(f, ns); err != nil {
			return err
		}
	}
	if w.agg != nil {
		w.agg.SetNamespace(w.ns)
		return w.agg.Set(acc)
	}
	w.top.SetNamespace(w.ns)
	return w.top.Set(list)
}

func (w *windowOp) deleteTimers(win window, ns []byte) error {
	if w.opts.processing {
		return w.timers.DeleteProcessingTimeTimer(win.maxTimestamp(), ns)
	}
	if err := w.timers.DeleteEventTimeTimer(win.maxTimestamp(), ns); err != nil {
		return err
	}
	return w.timers.DeleteEventTimeTimer(w.cleanupTime(win), ns)
}

// add folds a record into the contents of win. fresh says the window had no contents
// before: a window's timers exist exactly while it has contents (they are registered with
// its first record and its state goes when the last of them fires), so only a fresh window
// registers them, which spares the timer lookups on every other record.
func (w *windowOp) add(win window, r Record) (fresh bool, err error) {
	w.ns = appendWindow(w.ns[:0], win)
	if w.agg != nil {
		w.agg.SetNamespace(w.ns)
		st, ok, err := w.agg.Get()
		if err != nil {
			return false, err
		}
		if err := w.opts.fn.add(&st, r); err != nil {
			return false, err
		}
		return !ok, w.agg.Set(st)
	}
	v := r[w.opts.topField]
	if v.Kind() == KindNull {
		return false, nil // unranked: no contents, nothing to fire
	}
	w.top.SetNamespace(w.ns)
	list, ok, err := w.top.Get()
	if err != nil {
		return false, err
	}
	w.recBuf = AppendRecord(w.recBuf[:0], r)
	if len(list) == w.opts.Top && !topBefore(&topEntry{v: v, rec: w.recBuf}, &list[len(list)-1]) {
		return false, nil // below the last: the state stays as it is
	}
	rec := slices.Clone(w.recBuf)
	var vals Record
	if err := DecodeRecord(rec, &vals); err != nil {
		return false, err
	}
	return !ok, w.top.Set(topInsert(list, topEntry{v: vals[w.opts.topField], rec: rec}, w.opts.Top))
}

// onElement is Flink's EventTimeTrigger.onElement (ProcessingTimeTrigger's for processing
// time): a window the watermark passed already fires at once with the updated contents (a
// late firing within the allowed lateness); a new window (register) gets a timer at its last
// ms, and a cleanup timer that clears it once its lateness has passed too.
func (w *windowOp) onElement(win window, wm int64, register bool) error {
	w.ns = appendWindow(w.ns[:0], win)
	if w.opts.processing {
		if !register {
			return nil
		}
		return w.timers.RegisterProcessingTimeTimer(win.maxTimestamp(), w.ns)
	}
	if c := w.cleanupTime(win); register && c != win.maxTimestamp() {
		if err := w.timers.RegisterEventTimeTimer(c, w.ns); err != nil {
			return err
		}
	}
	if win.maxTimestamp() <= wm {
		return w.fire(w.rc.CurrentKey(), win)
	}
	if !register {
		return nil
	}
	return w.timers.RegisterEventTimeTimer(win.maxTimestamp(), w.ns)
}

// OnTimer fires a window at its last ms and clears it at its cleanup time (both at once
// without allowed lateness, and for processing time).
func (w *windowOp) OnTimer(t Timer) error {
	win, err := decodeWindow(t.Namespace)
	if err != nil {
		return err
	}
	if t.Time == win.maxTimestamp() {
		if err := w.fire(t.Key, win); err != nil {
			return err
		}
	}
	if t.Time != w.cleanupTime(win) {
		return nil
	}
	w.ns = appendWindow(w.ns[:0], win)
	if w.agg != nil {
		w.agg.SetNamespace(w.ns)
		err = w.agg.Clear()
	} else {
		w.top.SetNamespace(w.ns)
		err = w.top.Clear()
	}
	if err != nil || w.sess == nil {
		return err
	}
	w.sess.SetNamespace(nil)
	sessions, _, err := w.sess.Get()
	if err != nil {
		return err
	}
	sessions = slices.DeleteFunc(sessions, func(s window) bool { return s == win })
	if len(sessions) == 0 {
		return w.sess.Clear()
	}
	return w.sess.Set(sessions)
}

// fire emits the contents of win for key; a window without contents emits nothing.
func (w *windowOp) fire(key Value, win window) error {
	w.ns = appendWindow(w.ns[:0], win)
	w.rec[0], w.rec[1], w.rec[2] = key, Int(win.start), Int(win.end)
	w.el = Element{Record: w.rec, Timestamp: win.maxTimestamp()}
	if w.agg != nil {
		w.agg.SetNamespace(w.ns)
		st, ok, err := w.agg.Get()
		if err != nil || !ok {
			return err
		}
		w.rec[3] = w.opts.fn.result(&st)
		return w.out.Collect(&w.el)
	}
	w.top.SetNamespace(w.ns)
	list, _, err := w.top.Get()
	if err != nil {
		return err
	}
	for i, e := range list {
		if err := DecodeRecord(e.rec, &w.scratch); err != nil {
			return err
		}
		if len(w.scratch) != len(w.opts.in) {
			return fmt.Errorf("window top: a record of %d fields in state, the input has %d", len(w.scratch), len(w.opts.in))
		}
		w.rec[3] = Int(int64(i + 1))
		j := 4
		for k, v := range w.scratch {
			if k != w.opts.keyField {
				w.rec[j] = v
				j++
			}
		}
		if err := w.out.Collect(&w.el); err != nil {
			return err
		}
	}
	return nil
}

// Finish fires every window still open when the input ends, as a final watermark would:
// event-time windows whose sources emit no watermark, and processing-time windows, which
// would otherwise never fire on a bounded input.
func (w *windowOp) Finish() error {
	s := w.rc.timers
	if s == nil {
		return nil
	}
	if err := s.fire(EventTime, math.MaxInt64); err != nil {
		return err
	}
	return s.fire(ProcessingTime, math.MaxInt64)
}

// Close leaves the state to the task, which closes the backend after its operators.
func (w *windowOp) Close() error { return nil }
