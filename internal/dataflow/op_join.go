package dataflow

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-dev/sluice/internal/state"
)

// TypeJoin joins two keyed inputs: records of the left and right input with equal keys, in
// the same tumbling event-time window (window join), within an interval of each other's
// event time (interval join), or at any time while both are kept (regular join, its state
// bounded by ttl). docs/architecture.md, "Engine", §11 Joins.
const TypeJoin = "join"

func init() {
	Register(OperatorType{Name: TypeJoin, New: func() Definition { return new(JoinOptions) }})
}

// Join modes.
const (
	joinRegular  = "regular"
	joinWindow   = "window"
	joinInterval = "interval"
)

// JoinWindow is the join's `window:` option: `{tumbling: 10s}`.
type JoinWindow struct {
	Tumbling time.Duration
	set      bool
	line     int
}

// UnmarshalYAML reads {tumbling: DURATION}.
func (w *JoinWindow) UnmarshalYAML(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping {tumbling: DURATION}, e.g. {tumbling: 10s}", v.Line)
	}
	w.set, w.line = true, v.Line
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "tumbling":
			d, err := parseDuration(val)
			if err != nil {
				return fmt.Errorf("tumbling: %w", err)
			}
			w.Tumbling = d
		default:
			return fmt.Errorf("line %d: unknown window option %q: a join's window is tumbling: want {tumbling: DURATION}", k.Line, k.Value)
		}
	}
	return nil
}

// JoinOptions are the options of a join. Its inputs are named by `left:` and `right:` (or
// `inputs: [LEFT, RIGHT]`), which the spec parser keeps on the OperatorSpec.
type JoinOptions struct {
	LeftKey  string     `yaml:"left-key" want:"a field name or CEL expression of the left input"`
	RightKey string     `yaml:"right-key" want:"a field name or CEL expression of the right input"`
	Window   JoinWindow `yaml:"window"`
	Between  []string   `yaml:"between" want:"a list [LOWER, UPPER] of durations such as -5s and 10s" elem:"a duration such as -5s"`
	TTL      string     `yaml:"ttl" want:"a duration such as 1h"`
	Fields   MapFields  `yaml:"fields"`

	// From Check.
	mode         string
	size         int64 // window: ms
	lower, upper int64 // interval: ms
	ttl          int64 // regular: ms, 0 keeps every record

	// After Plan.
	keys   [2]*joinKey
	joined Schema     // left_*, right_*, then window_start and window_end for a window join
	exprs  []*celExpr // the fields: projection over joined; nil: the joined record as it is
}

func (*JoinOptions) leftRight() {}

var _ KeyedInputs = (*JoinOptions)(nil)

// Check implements Definition.
func (j *JoinOptions) Check(op *OperatorSpec) (Shape, error) {
	if j.LeftKey == "" {
		return Shape{}, op.errf("left-key", "missing required option: the key of the left input (a field name or CEL expression); records of both inputs with equal keys are joined")
	}
	if j.RightKey == "" {
		return Shape{}, op.errf("right-key", "missing required option: the key of the right input (a field name or CEL expression); records of both inputs with equal keys are joined")
	}
	modes := 0
	j.mode = joinRegular
	if j.Window.set {
		modes++
		j.mode = joinWindow
		if j.Window.Tumbling < time.Millisecond {
			return Shape{}, op.errf("window", "tumbling: a window of %v: want a size of at least 1ms, e.g. {tumbling: 10s}", j.Window.Tumbling)
		}
		j.size = j.Window.Tumbling.Milliseconds()
	}
	if j.Between != nil {
		modes++
		j.mode = joinInterval
		if len(j.Between) != 2 {
			return Shape{}, op.errf("between", "want two durations [LOWER, UPPER] (right.ts in [left.ts + LOWER, left.ts + UPPER]), e.g. [-5s, 10s]; got %d", len(j.Between))
		}
		var b [2]int64
		for i, s := range j.Between {
			d, err := time.ParseDuration(s)
			if err != nil {
				return Shape{}, op.errf("between", "%q is not a duration: want one such as -5s, 0s or 10s", s)
			}
			b[i] = d.Milliseconds()
		}
		if b[0] > b[1] {
			return Shape{}, op.errf("between", "lower bound %s is above upper bound %s: want [LOWER, UPPER] with LOWER <= UPPER", j.Between[0], j.Between[1])
		}
		j.lower, j.upper = b[0], b[1]
	}
	if j.TTL != "" {
		modes++
		d, err := time.ParseDuration(j.TTL)
		if err != nil || d < time.Millisecond {
			return Shape{}, op.errf("ttl", "%q: want a duration of at least 1ms such as 1h, how long a regular join keeps a record", j.TTL)
		}
		j.ttl = d.Milliseconds()
	}
	if modes > 1 {
		return Shape{}, op.errf(j.modeOption(), "give one of window (window join), between (interval join) or ttl (regular join), not several")
	}
	return Shape{Inputs: 2, KeyedInput: true}, nil
}

// modeOption names the option that set the mode given last, for errors.
func (j *JoinOptions) modeOption() string {
	switch {
	case j.TTL != "":
		return "ttl"
	case j.Between != nil:
		return "between"
	}
	return "window"
}

// Plan implements Definition: the output is the joined record (left_ fields, right_ fields,
// and window_start and window_end for a window join), or its fields: projection.
func (j *JoinOptions) Plan(pc *PlanContext) (Schema, error) {
	o := pc.Op
	if j.mode == joinRegular && j.TTL == "" {
		// The job's state.ttl bounds a regular join that sets no ttl of its own.
		j.ttl = pc.opts.StateTTL.Milliseconds()
	}
	var joined Schema
	for i, side := range [2]string{"left", "right"} {
		src := j.LeftKey
		if i == 1 {
			src = j.RightKey
		}
		k, err := planJoinKey(pc, i, side, src)
		if err != nil {
			return nil, err
		}
		j.keys[i] = k
		for _, f := range pc.Inputs[i] {
			joined = append(joined, Field{Name: side + "_" + f.Name, Kind: f.Kind, Fields: f.Fields})
		}
	}
	lk, rk := j.keys[0].info.Kind, j.keys[1].info.Kind
	if lk != rk && lk != KindAny && rk != KindAny {
		return nil, o.errf("right-key", "the left key %q is %s and the right key %q is %s: equal keys must be of one kind to meet; convert one (e.g. string(%s) or int(%s))",
			j.LeftKey, lk, j.RightKey, rk, j.RightKey, j.RightKey)
	}
	if j.mode == joinWindow {
		joined = append(joined, Field{Name: "window_start", Kind: KindInt}, Field{Name: "window_end", Kind: KindInt})
	}
	seen := map[string]bool{}
	for _, f := range joined {
		if seen[f.Name] {
			return nil, o.errf("fields", "the joined record has field %q twice: rename an input's field", f.Name)
		}
		seen[f.Name] = true
	}
	j.joined, j.exprs = joined, nil
	if len(j.Fields) == 0 {
		return joined, nil
	}
	var out Schema
	names := map[string]bool{}
	for _, ne := range j.Fields {
		if err := CheckFieldName(o, "fields."+ne.Name, ne.Name); err != nil {
			return nil, err
		}
		if names[ne.Name] {
			return nil, o.errf("fields."+ne.Name, "duplicate output field")
		}
		names[ne.Name] = true
		e, err := compileExpr(joined, ne.Expr, pc.opts.MaxExpressionCost)
		if err != nil {
			return nil, o.errf("fields."+ne.Name, "%v (the joined record has fields %s)", err, listOrNone(joined.Names()))
		}
		if isContainer(e.out) {
			return nil, o.errf("fields."+ne.Name, "CEL type error: %q is of type %s: a field must be a scalar", ne.Expr, e.out)
		}
		j.exprs = append(j.exprs, e)
		out = append(out, Field{Name: ne.Name, Kind: kindOf(e.out)})
	}
	return out, nil
}

// joinKey is the key of one input of a join: what its hash edge routes by and what the task
// scopes keyed state to.
type joinKey struct {
	op     string
	schema Schema
	field  bool      // the key is a field (a path into nested fields too), not an expression
	path   FieldPath // the field's
	expr   *celExpr
	info   KeyInfo
}

func planJoinKey(pc *PlanContext, input int, side, src string) (*joinKey, error) {
	o, in := pc.Op, pc.Inputs[input]
	opt := side + "-key"
	k := &joinKey{op: o.Name, schema: in}
	if isFieldPath(src) {
		path, kind, err := in.Resolve(src)
		if err != nil {
			return nil, o.errf(opt, "the %s input %q: %v", side, o.Inputs[input], err)
		}
		k.field, k.path = true, path
		k.info = KeyInfo{Name: path.Name(), Kind: kind, Expr: src}
		return k, nil
	}
	e, err := pc.compileExpr(input, src)
	if err != nil {
		return nil, o.errf(opt, "%v", err)
	}
	if isContainer(e.out) {
		return nil, o.errf(opt, "CEL type error: key %q is of type %s, want a scalar", src, e.out)
	}
	k.expr = e
	k.info = KeyInfo{Name: "key", Kind: kindOf(e.out), Expr: src}
	return k, nil
}

// Key implements EdgeKeyer.
func (k *joinKey) Key() KeyInfo { return k.info }

// NewKeySelector implements EdgeKeyer.
func (k *joinKey) NewKeySelector(ctx context.Context) KeySelector {
	f := &keyFunc{field: k.field, path: k.path, expr: k.expr, name: k.op}
	if k.expr != nil {
		f.act = newActivation(ctx, k.schema)
	}
	return f
}

// sideKey is the key of one input as known from the spec alone (a deferred plan shows it).
type sideKey struct{ expr string }

func (s sideKey) Key() KeyInfo                               { return KeyInfo{Expr: s.expr} }
func (s sideKey) NewKeySelector(context.Context) KeySelector { return nil }

// InputKey implements KeyedInputs.
func (j *JoinOptions) InputKey(input int) EdgeKeyer {
	if k := j.keys[input]; k != nil {
		return k
	}
	if input == 0 {
		return sideKey{j.LeftKey}
	}
	return sideKey{j.RightKey}
}

// Access implements Definition.
func (j *JoinOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (j *JoinOptions) NewOperator() Operator {
	return &joinOp{opts: j, comb: make(Record, len(j.joined)), proj: make(Record, len(j.exprs))}
}

// TumblingWindow is the tumbling window of size ms that holds ts: [start, end). Windows are
// aligned to the epoch, so every subtask assigns a timestamp to the same window.
func TumblingWindow(ts, size int64) (start, end int64) {
	start = ts - ((ts%size)+size)%size
	return start, start + size
}

// joinOp is one subtask of a join. Its keyed state holds, per key, the records of each
// input waiting for a partner: state "left" and "right". A window join keeps a list per
// window (namespace: the window's end) and joins them when an event-time timer at the
// window's last ms fires. An interval join and a regular join keep a map from a time (the
// record's event time, or the processing time it was stored at) to the records of that
// time, and drop an entry by a timer once no later record can match it.
type joinOp struct {
	opts   *JoinOptions
	rc     *RuntimeContext
	b      state.Backend
	ids    [2]state.ID
	act    *activation
	comb   Record
	proj   Record
	el     Element
	ns     []byte
	ukey   []byte
	buf    []byte
	rec    [2]Record
	stored Record // a record of the other input, decoded from state
	pairs  []storedRecord
}

// storedRecord is a record kept in state, as AppendTimedRecord encodes it.
type storedRecord struct {
	ts  int64
	rec []byte
}

var _ TimerHandler = (*joinOp)(nil)

// Timer namespaces of the interval and regular joins: which input's entry a timer drops.
var sideNS = [2][]byte{{'l'}, {'r'}}

func (j *joinOp) Open(_ context.Context, rc *RuntimeContext) error {
	b := rc.KeyedState()
	if b == nil || len(rc.inKeys) != 2 {
		return fmt.Errorf("a %s needs two keyed inputs", TypeJoin)
	}
	kind := state.KindMap
	if j.opts.mode == joinWindow {
		kind = state.KindList
	}
	for i, name := range [2]string{"left", "right"} {
		id, err := b.Register(name, kind)
		if err != nil {
			return err
		}
		j.ids[i] = id
	}
	j.rc, j.b = rc, b
	if j.opts.exprs != nil {
		j.act = newActivation(rc.ctx, j.opts.joined)
	}
	return nil
}

func (j *joinOp) Process(input int, e *Element) error {
	if input != 0 && input != 1 {
		return fmt.Errorf("input %d: a join has inputs 0 (left) and 1 (right)", input)
	}
	switch j.opts.mode {
	case joinWindow:
		return j.processWindow(input, e)
	case joinInterval:
		return j.processInterval(input, e)
	}
	return j.processRegular(input, e)
}

// errNoEventTime is what a window or interval join says of a record without event time.
func (j *joinOp) errNoEventTime(input int) error {
	side := [2]string{"left", "right"}[input]
	return fmt.Errorf("a %s join needs event time, and a record of the %s input has none: set timestamp: (and watermark:) on the source, or use a regular join (ttl)", j.opts.mode, side)
}

// late reports whether ts is at or behind the watermark: no timer would see it again.
func (j *joinOp) late(ts int64) bool { return ts <= j.rc.Timers().CurrentWatermark() }

func (j *joinOp) processWindow(input int, e *Element) error {
	if !e.HasTimestamp() {
		return j.errNoEventTime(input)
	}
	_, end := TumblingWindow(e.Timestamp, j.opts.size)
	if j.late(end - 1) {
		return nil // its window has fired: dropped, as Flink's window join drops late records
	}
	j.ns = binary.BigEndian.AppendUint64(j.ns[:0], uint64(end))
	j.buf = AppendTimedRecord(j.buf[:0], e.Timestamp, e.Record)
	if err := j.b.Append(j.ids[input], j.ns, j.buf); err != nil {
		return err
	}
	return j.rc.Timers().RegisterEventTimeTimer(end-1, j.ns)
}

func (j *joinOp) processInterval(input int, e *Element) error {
	if !e.HasTimestamp() {
		return j.errNoEventTime(input)
	}
	ts := e.Timestamp
	if j.late(ts) {
		return nil // every partner it could have had may be dropped already
	}
	if err := j.store(input, ts, ts, e.Record); err != nil {
		return err
	}
	// right.ts in [left.ts + lower, left.ts + upper]
	lo, hi := ts+j.opts.lower, ts+j.opts.upper
	cleanup := ts + j.opts.upper // no right record at or before it arrives after the watermark passes it
	if input == 1 {
		lo, hi = ts-j.opts.upper, ts-j.opts.lower
		cleanup = ts - j.opts.lower
	}
	if err := j.joinStored(input, e, func(t int64) bool { return t >= lo && t <= hi }); err != nil {
		return err
	}
	return j.rc.Timers().RegisterEventTimeTimer(cleanup, sideNS[input])
}

func (j *joinOp) processRegular(input int, e *Element) error {
	// Records are kept under the processing time they arrived at, with or without ttl: a
	// map entry per ms keeps adding a record cheap however many a key holds.
	now := j.rc.Timers().CurrentProcessingTime()
	if err := j.store(input, now, e.Timestamp, e.Record); err != nil {
		return err
	}
	if err := j.joinStored(input, e, func(t int64) bool { return j.opts.ttl == 0 || t+j.opts.ttl > now }); err != nil {
		return err
	}
	if j.opts.ttl == 0 {
		return nil
	}
	return j.rc.Timers().RegisterProcessingTimeTimer(now+j.opts.ttl, sideNS[input])
}

// mapKey is the user key of time t in an interval or regular join's map: big-endian with
// the sign bit flipped.
func (j *joinOp) mapKey(t int64) []byte {
	j.ukey = binary.BigEndian.AppendUint64(j.ukey[:0], uint64(t)^1<<63)
	return j.ukey
}

// store adds the record (with event time ts) under time t of the input's map.
func (j *joinOp) store(input int, t, ts int64, r Record) error {
	uk := j.mapKey(t)
	old, _, err := j.b.Get(j.ids[input], nil, uk)
	if err != nil {
		return err
	}
	j.buf = append(j.buf[:0], old...)
	j.buf = state.AppendElement(j.buf, AppendTimedRecord(nil, ts, r))
	return j.b.Put(j.ids[input], nil, uk, j.buf)
}

// joinStored joins e, of input, with the other input's records stored under a time match
// accepts.
func (j *joinOp) joinStored(input int, e *Element, match func(t int64) bool) error {
	other := 1 - input
	j.pairs = j.pairs[:0]
	err := j.b.Iterate(j.ids[other], nil, func(uk, v []byte) error {
		if len(uk) != 8 {
			return fmt.Errorf("join state: a key of %d bytes, want 8", len(uk))
		}
		if !match(int64(binary.BigEndian.Uint64(uk) ^ 1<<63)) {
			return nil
		}
		return state.Elements(v, func(el []byte) error {
			ts, rec, err := SplitTimestamp(el)
			if err != nil {
				return fmt.Errorf("join state: %w", err)
			}
			// The backend's bytes are valid during the iteration only, and emitting may
			// touch state: copy, then emit after.
			j.pairs = append(j.pairs, storedRecord{ts: ts, rec: append([]byte(nil), rec...)})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, p := range j.pairs {
		if err := DecodeRecord(p.rec, &j.stored); err != nil {
			return fmt.Errorf("join state: %w", err)
		}
		l, r, lts, rts := e.Record, j.stored, e.Timestamp, p.ts
		if input == 1 {
			l, r, lts, rts = r, l, rts, lts
		}
		if err := j.emit(l, r, max(lts, rts), 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// emit sends the joined record of l and r (and the window, for a window join) at ts.
func (j *joinOp) emit(l, r Record, ts, start, end int64) error {
	c := j.comb[:0]
	c = append(c, l...)
	c = append(c, r...)
	if j.opts.mode == joinWindow {
		c = append(c, Int(start), Int(end))
	}
	j.comb = c
	j.el = Element{Record: c, Timestamp: ts}
	if j.opts.exprs != nil {
		for i, x := range j.opts.exprs {
			v, err := j.act.evalValue(x, c)
			if err != nil {
				return err
			}
			j.proj[i] = v
		}
		j.el.Record = j.proj
	}
	return j.rc.Output.Collect(&j.el)
}

// OnTimer fires a window join's window, or drops an interval or regular join's entry that
// can no longer match.
func (j *joinOp) OnTimer(t Timer) error {
	if j.opts.mode == joinWindow {
		return j.fireWindow(t)
	}
	if len(t.Namespace) != 1 || (t.Namespace[0] != 'l' && t.Namespace[0] != 'r') {
		return fmt.Errorf("join state: a timer of namespace %q, want l or r", t.Namespace)
	}
	input := 0
	if t.Namespace[0] == 'r' {
		input = 1
	}
	var at int64
	switch {
	case j.opts.mode == joinRegular:
		at = t.Time - j.opts.ttl
	case input == 0:
		at = t.Time - j.opts.upper
	default:
		at = t.Time + j.opts.lower
	}
	return j.b.Delete(j.ids[input], nil, j.mapKey(at))
}

func (j *joinOp) fireWindow(t Timer) error {
	if len(t.Namespace) != 8 {
		return fmt.Errorf("join state: a window timer of namespace %d bytes, want 8", len(t.Namespace))
	}
	end := int64(binary.BigEndian.Uint64(t.Namespace))
	ns := append(j.ns[:0], t.Namespace...)
	j.ns = ns
	var sides [2][][]byte
	for i := range sides {
		// A list's Iterate visits its elements one by one.
		err := j.b.Iterate(j.ids[i], ns, func(_, el []byte) error {
			_, rec, err := SplitTimestamp(el)
			if err != nil {
				return fmt.Errorf("join state: %w", err)
			}
			sides[i] = append(sides[i], append([]byte(nil), rec...))
			return nil
		})
		if err != nil {
			return err
		}
	}
	for i := range sides {
		if err := j.b.Clear(j.ids[i], ns); err != nil {
			return err
		}
	}
	for _, lb := range sides[0] {
		if err := DecodeRecord(lb, &j.rec[0]); err != nil {
			return fmt.Errorf("join state: %w", err)
		}
		for _, rb := range sides[1] {
			if err := DecodeRecord(rb, &j.rec[1]); err != nil {
				return fmt.Errorf("join state: %w", err)
			}
			if err := j.emit(j.rec[0], j.rec[1], end-1, end-j.opts.size, end); err != nil {
				return err
			}
		}
	}
	return nil
}

func (j *joinOp) Finish() error { return nil }
func (j *joinOp) Close() error  { return nil }
