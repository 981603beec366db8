package dataflow

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Event time (docs/architecture.md, "Engine", §11): every source type, and the `watermark`
// operator, take two options that the spec parser handles for all of them, so a new source
// (nexmark, Kafka) gets event time without declaring anything:
//
//	timestamp: FIELD          # a field of ms since the epoch (int) or an RFC 3339 string;
//	                          # a dotted path (bid.dateTime) for a nested field
//	timestamp: ingestion      # the time the source emitted the record
//	watermark: {max-out-of-orderness: 5s, idle-timeout: 30s}
//
// The task assigns each record's timestamp after the source (or watermark operator) emits it
// and emits bounded-out-of-orderness watermarks every pipeline.auto-watermark-interval.

// IngestionTime is the `timestamp:` value that stamps records with the time the source
// emitted them, rather than with a field.
const IngestionTime = "ingestion"

// DefaultAutoWatermarkInterval is pipeline.auto-watermark-interval's default, as Flink's.
const DefaultAutoWatermarkInterval = 200 * time.Millisecond

// EventTimeSpec is the event time an operator declares with its `timestamp:` and
// `watermark:` options; nil on OperatorSpec when it declares neither.
type EventTimeSpec struct {
	// Timestamp is the field path the timestamp comes from, IngestionTime, or empty (a
	// watermark operator keeping the timestamps its input has).
	Timestamp string `json:"timestamp,omitempty"`
	// Watermark is nil when the operator emits no watermarks (timestamps only).
	Watermark *WatermarkSpec `json:"watermark,omitempty"`
}

// WatermarkSpec is the `watermark:` option: periodic bounded-out-of-orderness watermarks
// (Flink's WatermarkStrategy.forBoundedOutOfOrderness(...).withIdleness(...)).
type WatermarkSpec struct {
	// MaxOutOfOrderness is how late a record may come after a later one: the watermark is
	// the largest timestamp seen minus it, minus 1 ms.
	MaxOutOfOrderness time.Duration `json:"max-out-of-orderness"`
	// IdleTimeout marks the subtask idle after this long without a record, so downstream
	// stops waiting for its watermark; 0: never idle.
	IdleTimeout time.Duration `json:"idle-timeout,omitempty"`
}

// eventTimeOptions are the option keys parseOperator takes for every source type and for
// operators that are EventTimeOperators.
var eventTimeOptions = []string{"timestamp", "watermark"}

// EventTimeOperator is a Definition of a non-source operator that takes `timestamp:` and
// `watermark:` like a source: the `watermark` operator. Any other operator with input
// given those options is refused at parse time.
type EventTimeOperator interface {
	Definition
	eventTimeOperator()
}

// parseEventTime decodes the `timestamp:` or `watermark:` option into op.EventTime.
func parseEventTime(op *OperatorSpec, key string, v *yaml.Node) error {
	if op.EventTime == nil {
		op.EventTime = &EventTimeSpec{}
	}
	switch key {
	case "timestamp":
		var s string
		if err := decodeScalar(v, &s, "a field name, a dotted path to a nested field, or "+IngestionTime); err != nil {
			return err
		}
		if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
			return fmt.Errorf("line %d: want a field name, a dotted path to a nested field (bid.dateTime), or %s; got %q", v.Line, IngestionTime, s)
		}
		op.EventTime.Timestamp = s
		return nil
	case "watermark":
		w, err := parseWatermark(v)
		if err != nil {
			return err
		}
		op.EventTime.Watermark = w
		return nil
	}
	return fmt.Errorf("line %d: unknown event-time option %q", v.Line, key)
}

// parseWatermark decodes `watermark: {max-out-of-orderness: 5s, idle-timeout: 30s}`.
func parseWatermark(v *yaml.Node) (*WatermarkSpec, error) {
	if v.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping {max-out-of-orderness: DURATION, idle-timeout: DURATION}", v.Line)
	}
	w := &WatermarkSpec{}
	seen := false
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		var dst *time.Duration
		switch k.Value {
		case "max-out-of-orderness":
			dst, seen = &w.MaxOutOfOrderness, true
		case "idle-timeout":
			dst = &w.IdleTimeout
		default:
			return nil, fmt.Errorf("line %d: unknown watermark option %q: want max-out-of-orderness, idle-timeout", k.Line, k.Value)
		}
		d, err := parseDuration(val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.Value, err)
		}
		*dst = d
	}
	if !seen {
		return nil, fmt.Errorf("line %d: missing max-out-of-orderness (0s for timestamps in order)", v.Line)
	}
	return w, nil
}

// parseDuration reads a non-negative Go duration ("5s", "500ms", "1m30s").
func parseDuration(v *yaml.Node) (time.Duration, error) {
	const want = "a duration such as 5s, 500ms or 1m"
	if v.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("line %d: want %s", v.Line, want)
	}
	d, err := time.ParseDuration(v.Value)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("line %d: want %s, got %q", v.Line, want, v.Value)
	}
	return d, nil
}

// checkEventTime validates op.EventTime against the operator's shape: only sources and
// EventTimeOperators take it, and watermarks need timestamps.
func checkEventTime(op *OperatorSpec, shape Shape) error {
	et := op.EventTime
	if et == nil {
		return nil
	}
	_, isWM := op.Options.(EventTimeOperator)
	if shape.Inputs > 0 && !isWM {
		opt := "timestamp"
		if et.Watermark != nil {
			opt = "watermark"
		}
		return op.errf(opt, "only a source or a %s operator takes %s: event time starts where records enter the job; put it on the source, or add an operator {type: %s, input: %s, %s: ...} before this one",
			TypeWatermark, opt, TypeWatermark, op.Input, opt)
	}
	if shape.Inputs == 0 && et.Watermark != nil && et.Timestamp == "" {
		return op.errf("watermark", "a watermark needs record timestamps: add timestamp: FIELD (ms or RFC 3339) or timestamp: %s", IngestionTime)
	}
	return nil
}

// timestampField is a resolved `timestamp:` field: the top-level field's index and the
// path below it (nested fields).
type timestampField struct {
	ingestion bool
	path      FieldPath // the field, nested in struct fields too (bid.dateTime)
	name      string    // as written, for errors
}

// resolveTimestamp finds the `timestamp:` field of op in the schema of the records it emits.
func resolveTimestamp(op *OperatorSpec, s Schema) (*timestampField, error) {
	et := op.EventTime
	if et == nil || et.Timestamp == "" {
		return nil, nil
	}
	if et.Timestamp == IngestionTime && s.Index(IngestionTime) < 0 {
		return &timestampField{ingestion: true, name: IngestionTime}, nil
	}
	name := et.Timestamp
	path, kind, err := s.Resolve(name)
	if err != nil {
		return nil, op.errf("timestamp", "%v (or use timestamp: %s)", err, IngestionTime)
	}
	return checkTimestampKind(op, Field{Name: name, Kind: kind}, &timestampField{path: path, name: name})
}

func checkTimestampKind(op *OperatorSpec, f Field, tf *timestampField) (*timestampField, error) {
	switch f.Kind {
	case KindInt, KindString, KindAny:
		return tf, nil
	}
	return nil, op.errf("timestamp", "field %q is %v, not a time: want an int of ms since the epoch or an RFC 3339 string", f.Name, f.Kind)
}

// timestampOf is the event time of r by tf, or an error naming the field.
func (tf *timestampField) timestampOf(r Record, now func() int64) (int64, error) {
	if tf.ingestion {
		return now(), nil
	}
	v := tf.path.Get(r)
	switch v.Kind() {
	case KindNull:
		return 0, fmt.Errorf("timestamp field %q is null (or inside a null object): every record needs a time", tf.name)
	case KindInt:
		return v.AsInt(), nil
	case KindString:
		// A csv or text source's fields are strings: digits are ms as for an int field.
		if ms, err := strconv.ParseInt(v.AsString(), 10, 64); err == nil {
			return ms, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v.AsString())
		if err != nil {
			return 0, fmt.Errorf("timestamp field %q is %q, not a time: want an int of ms since the epoch or an RFC 3339 string (2006-01-02T15:04:05Z)", tf.name, v.AsString())
		}
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("timestamp field %q is a %v (%s), not a time: want an int of ms since the epoch or an RFC 3339 string", tf.name, v.Kind(), v.Text())
}

// watermarkValve combines the watermarks of a task's input channels (Flink's
// StatusWatermarkValve): the input watermark is the minimum over the channels that are
// neither idle nor ended, and it only advances. A channel that comes back from idle behind
// the input watermark holds nothing back until it catches up: its records are late anyway.
type watermarkValve struct {
	wm    []int64 // per channel, NoTimestamp before its first watermark
	idle  []bool
	ended []bool
	out   int64 // the input watermark: NoTimestamp until the first
	// outIdle: every channel that has not ended is idle, so the task is idle downstream.
	outIdle bool
}

func newWatermarkValve(channels int) *watermarkValve {
	v := &watermarkValve{wm: make([]int64, channels), idle: make([]bool, channels),
		ended: make([]bool, channels), out: NoTimestamp}
	for i := range v.wm {
		v.wm[i] = NoTimestamp
	}
	return v
}

// watermark records channel ch's watermark ts; it returns the new input watermark and true
// when that advanced.
func (v *watermarkValve) watermark(ch int, ts int64) (int64, bool) {
	if ts <= v.wm[ch] {
		return 0, false // watermarks of a channel only advance
	}
	v.wm[ch] = ts
	return v.advance()
}

// status records that channel ch went idle or active. It returns whether the task's own
// status (all channels idle) changed, and the input watermark if going idle advanced it.
func (v *watermarkValve) status(ch int, idle bool) (changed bool, wm int64, advanced bool) {
	if v.idle[ch] == idle {
		return false, 0, false
	}
	v.idle[ch] = idle
	if idle {
		wm, advanced = v.advance()
	}
	return v.updateIdle(), wm, advanced
}

// end records that channel ch sent END_OF_DATA: it holds nothing back any more. The results
// are status's.
func (v *watermarkValve) end(ch int) (changed bool, wm int64, advanced bool) {
	v.ended[ch] = true
	wm, advanced = v.advance()
	return v.updateIdle(), wm, advanced
}

func (v *watermarkValve) updateIdle() bool {
	all, open := true, false
	for ch := range v.idle {
		if v.ended[ch] {
			continue
		}
		open = true
		if !v.idle[ch] {
			all = false
		}
	}
	all = all && open
	if all == v.outIdle {
		return false
	}
	v.outIdle = all
	return true
}

func (v *watermarkValve) advance() (int64, bool) {
	m, any := int64(math.MaxInt64), false
	for ch, w := range v.wm {
		if v.idle[ch] || v.ended[ch] || w < v.out {
			continue
		}
		any = true
		m = min(m, w)
	}
	if !any || m <= v.out || m == NoTimestamp {
		return 0, false
	}
	v.out = m
	return m, true
}

// wmGen is the event time of one operator of a chain that assigns it: a source with
// `timestamp:`/`watermark:`, or a watermark operator. The task puts its output behind the
// operator (timedOutput) and calls tick every auto-watermark interval.
type wmGen struct {
	link int             // the operator's index in the chain
	op   *OperatorSpec   // for errors
	ts   *timestampField // nil: keep the timestamps the elements have
	wm   *WatermarkSpec  // nil: timestamps only, no watermarks

	maxTs   int64 // largest timestamp emitted, NoTimestamp before the first
	emitted int64 // last watermark emitted
	idle    bool
	records uint64    // emitted so far
	seen    uint64    // records at the last tick
	quiet   time.Time // since when no record came (zero: records came at the last tick)
}

// watermarkAt is the bounded-out-of-orderness watermark for the records seen so far.
func (g *wmGen) watermarkAt() (int64, bool) {
	if g.wm == nil || g.maxTs == NoTimestamp {
		return 0, false
	}
	ooo := g.wm.MaxOutOfOrderness.Milliseconds()
	if g.maxTs < math.MinInt64+ooo+1 {
		return 0, false
	}
	wm := g.maxTs - ooo - 1
	if wm <= g.emitted {
		return 0, false
	}
	return wm, true
}

// goesIdle reports whether the generator has had no record for its idle timeout, as of
// now; it tracks quiet periods from one tick to the next.
func (g *wmGen) goesIdle(now time.Time) bool {
	if g.records != g.seen {
		g.seen, g.quiet = g.records, time.Time{}
		return false
	}
	if g.quiet.IsZero() {
		g.quiet = now
	}
	return g.wm != nil && g.wm.IdleTimeout > 0 && !g.idle && now.Sub(g.quiet) >= g.wm.IdleTimeout
}

// timedOutput is the output of an operator that assigns event time: it stamps each element
// with its timestamp, follows the largest one for the watermark, and brings an idle
// generator back to active before the record goes on.
type timedOutput struct {
	t    *task
	g    *wmGen
	next Output
	el   Element
}

func (o *timedOutput) Collect(e *Element) error {
	o.el = *e
	g := o.g
	if g.ts != nil {
		ts, err := g.ts.timestampOf(e.Record, nowMillis)
		if err != nil {
			// Marked as downstream so that the source it passes through does not name
			// itself on an error that names it already.
			return &downstreamError{g.op.errf("timestamp", "%v", err)}
		}
		o.el.Timestamp = ts
	}
	if o.el.Timestamp != NoTimestamp && o.el.Timestamp > g.maxTs {
		g.maxTs = o.el.Timestamp
	}
	g.records++
	if g.idle {
		if err := o.t.genStatus(g, false); err != nil {
			return err
		}
	}
	return o.next.Collect(&o.el)
}

func nowMillis() int64 { return time.Now().UnixMilli() }
