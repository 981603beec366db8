package dataflow

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/sluice-dev/sluice/internal/nexmark"
)

// TypeNexmark generates the Person, Auction and Bid events of the Nexmark benchmark
// (internal/nexmark): the benchmark's source.
const TypeNexmark = "nexmark"

func init() {
	Register(OperatorType{Name: TypeNexmark, New: func() Definition { return new(NexmarkOptions) }})
}

// NexmarkOptions are the options of a nexmark source.
type NexmarkOptions struct {
	Events int64   `yaml:"events"` // 0: unbounded
	Rate   float64 `yaml:"rate"`   // events a second over all subtasks; 0: as fast as possible
	Seed   int64   `yaml:"seed"`
	// EventRate is how fast event time advances, in events per second of event time;
	// 0: rate when it is set, else the benchmark's 10,000.
	EventRate int64 `yaml:"first-event-rate"`
	// BaseTime is the event time of event 0 (RFC 3339); empty: 2025-01-01T00:00:00Z.
	BaseTime string `yaml:"base-time" want:"an RFC 3339 time"`
	// Path, when set, reads the events from a JSON-lines file (sluice nexmark generate)
	// instead of generating them, so that one spec runs on the source or on a file
	// (path: ${input}); the generator's options do not apply then.
	Path string `yaml:"path"`

	cfg nexmark.Config // from Check
}

// NexmarkConfig turns the options into the generator's configuration, defaults applied:
// the nexmark generate command shares it so that its events are the source's.
func NexmarkConfig(seed int64, rate float64, eventRate int64, baseTime string) (nexmark.Config, error) {
	cfg := nexmark.Config{Seed: seed, EventRate: eventRate, BaseTime: nexmark.DefaultBaseTime}
	if cfg.EventRate == 0 {
		cfg.EventRate = nexmark.DefaultEventRate
		if rate > 0 {
			cfg.EventRate = max(int64(math.Round(rate)), 1)
		}
	}
	if baseTime != "" {
		t, err := time.Parse(time.RFC3339Nano, baseTime)
		if err != nil {
			return cfg, fmt.Errorf("want an RFC 3339 time such as 2025-01-01T00:00:00Z: %w", err)
		}
		cfg.BaseTime = t.UnixMilli()
	}
	return cfg, nil
}

// Check implements Definition.
func (o *NexmarkOptions) Check(op *OperatorSpec) (Shape, error) {
	if o.Events < 0 {
		return Shape{}, op.errf("events", "must be >= 0 (0 = unbounded)")
	}
	if o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) {
		return Shape{}, op.errf("rate", "must be >= 0 (0 = as fast as possible)")
	}
	if o.EventRate < 0 {
		return Shape{}, op.errf("first-event-rate", "must be >= 0 events a second of event time (0 = rate, or 10000)")
	}
	cfg, err := NexmarkConfig(o.Seed, o.Rate, o.EventRate, o.BaseTime)
	if err != nil {
		return Shape{}, op.errf("base-time", "%v", err)
	}
	o.cfg = cfg
	if o.Path != "" {
		return Shape{Bounded: true}, nil
	}
	return Shape{Bounded: o.Events > 0}, nil
}

// NexmarkSchema is the schema of the nexmark source's records, with Nexmark's field names:
// event_type (0 person, 1 auction, 2 bid) and one nested object per type, the two that are
// not the event's null. Times are ms since the epoch, prices in cents.
var NexmarkSchema = Schema{
	{Name: "event_type", Kind: KindInt},
	{Name: "person", Kind: KindStruct, Fields: Schema{
		{Name: "id", Kind: KindInt},
		{Name: "name", Kind: KindString},
		{Name: "emailAddress", Kind: KindString},
		{Name: "creditCard", Kind: KindString},
		{Name: "city", Kind: KindString},
		{Name: "state", Kind: KindString},
		{Name: "dateTime", Kind: KindInt},
		{Name: "extra", Kind: KindString},
	}},
	{Name: "auction", Kind: KindStruct, Fields: Schema{
		{Name: "id", Kind: KindInt},
		{Name: "itemName", Kind: KindString},
		{Name: "description", Kind: KindString},
		{Name: "initialBid", Kind: KindInt},
		{Name: "reserve", Kind: KindInt},
		{Name: "dateTime", Kind: KindInt},
		{Name: "expires", Kind: KindInt},
		{Name: "seller", Kind: KindInt},
		{Name: "category", Kind: KindInt},
		{Name: "extra", Kind: KindString},
	}},
	{Name: "bid", Kind: KindStruct, Fields: Schema{
		{Name: "auction", Kind: KindInt},
		{Name: "bidder", Kind: KindInt},
		{Name: "price", Kind: KindInt},
		{Name: "channel", Kind: KindString},
		{Name: "url", Kind: KindString},
		{Name: "dateTime", Kind: KindInt},
		{Name: "extra", Kind: KindString},
	}},
}

// Plan implements Definition.
func (o *NexmarkOptions) Plan(*PlanContext) (Schema, error) { return NexmarkSchema, nil }

// Access implements Definition: generated events touch nothing outside; a path is read.
func (o *NexmarkOptions) Access(*OperatorSpec) []Access {
	if o.Path == "" {
		return nil
	}
	return []Access{{Scheme: "file", Target: o.Path}}
}

// NewOperator implements Definition. With a path, the operator is a json file source of
// NexmarkSchema that also checks each value's kind, so that the records have the kinds the
// plan promised whatever the file holds.
func (o *NexmarkOptions) NewOperator() Operator {
	if o.Path != "" {
		f := newFileSource(&FileOptions{Path: o.Path, Format: "json", schema: NexmarkSchema})
		f.check = func(r Record) error {
			if t := r[0]; t.kind != KindInt || t.AsInt() < 0 || t.AsInt() > 2 {
				return fmt.Errorf("event_type is %s, want 0, 1 or 2 (a line of sluice nexmark generate)", t)
			}
			return checkKinds(NexmarkSchema, r, "")
		}
		f.stamp = nexmarkEventTime
		return f
	}
	return &nexmarkSource{opts: o}
}

// StampsResults implements TimestampingOperator: a nexmark event's time is its dateTime,
// so every record the source emits carries its event time.
func (o *NexmarkOptions) StampsResults() {}

var _ TimestampingOperator = (*NexmarkOptions)(nil)

// nexmarkDateTimes reach the dateTime of each kind of event, by event_type.
var nexmarkDateTimes = func() [3]FieldPath {
	var out [3]FieldPath
	for i, name := range []string{"person.dateTime", "auction.dateTime", "bid.dateTime"} {
		p, _, err := NexmarkSchema.Resolve(name)
		if err != nil {
			panic(err) // the schema is ours
		}
		out[i] = p
	}
	return out
}()

// nexmarkEventTime is the event time of a checked nexmark record: its event's dateTime.
func nexmarkEventTime(r Record) int64 {
	if v := nexmarkDateTimes[r[0].AsInt()].Get(r); v.kind == KindInt {
		return v.AsInt()
	}
	return NoTimestamp
}

// checkKinds reports the first value of r whose kind is not its field's (null is any kind's).
func checkKinds(s Schema, r Record, prefix string) error {
	for i, f := range s {
		v := r[i]
		switch {
		case v.kind == KindNull || f.Kind == KindAny:
		case v.kind != f.Kind:
			return fmt.Errorf("%s%s is %s, want %s", prefix, f.Name, v.kind, f.Kind)
		case f.Kind == KindStruct:
			nested, err := v.Fields(nil)
			if err != nil {
				return err
			}
			if len(nested) != len(f.Fields) {
				return fmt.Errorf("%s%s has %d fields, want %d", prefix, f.Name, len(nested), len(f.Fields))
			}
			if err := checkKinds(f.Fields, nested, prefix+f.Name+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

// NexmarkRecords turns generated events into records of NexmarkSchema. The records it
// returns, and their nested values, alias its buffer until the next call: emit or encode
// them before asking for the next.
type NexmarkRecords struct {
	gen *nexmark.Generator
	ev  nexmark.Event
	enc []byte
	rec Record
}

// NewNexmarkRecords returns a record maker for cfg's stream.
func NewNexmarkRecords(cfg nexmark.Config) *NexmarkRecords {
	return &NexmarkRecords{gen: nexmark.New(cfg), rec: make(Record, 4), enc: make([]byte, 0, 4096)}
}

// Record returns event n as a record.
func (m *NexmarkRecords) Record(n int64) Record {
	m.gen.Event(n, &m.ev)
	ev := &m.ev
	// The nested record is encoded straight into the buffer (appendValues' format with
	// the fields of NexmarkSchema in order), so no value is built for it.
	b := m.enc[:0]
	switch ev.Type {
	case nexmark.PersonEvent:
		p := &ev.Person
		b = binary.AppendUvarint(b, 8)
		b = appendIntValue(b, p.ID)
		b = appendStringValue(b, p.Name)
		b = appendStringValue(b, p.EmailAddress)
		b = appendStringValue(b, p.CreditCard)
		b = appendStringValue(b, p.City)
		b = appendStringValue(b, p.State)
		b = appendIntValue(b, p.DateTime)
		b = appendStringValue(b, p.Extra)
	case nexmark.AuctionEvent:
		a := &ev.Auction
		b = binary.AppendUvarint(b, 10)
		b = appendIntValue(b, a.ID)
		b = appendStringValue(b, a.ItemName)
		b = appendStringValue(b, a.Description)
		b = appendIntValue(b, a.InitialBid)
		b = appendIntValue(b, a.Reserve)
		b = appendIntValue(b, a.DateTime)
		b = appendIntValue(b, a.Expires)
		b = appendIntValue(b, a.Seller)
		b = appendIntValue(b, a.Category)
		b = appendStringValue(b, a.Extra)
	default:
		x := &ev.Bid
		b = binary.AppendUvarint(b, 7)
		b = appendIntValue(b, x.Auction)
		b = appendIntValue(b, x.Bidder)
		b = appendIntValue(b, x.Price)
		b = appendStringValue(b, x.Channel)
		b = appendStringValue(b, x.URL)
		b = appendIntValue(b, x.DateTime)
		b = appendStringValue(b, x.Extra)
	}
	m.enc = b
	r := m.rec
	r[0], r[1], r[2], r[3] = Int(int64(ev.Type)), Value{}, Value{}, Value{}
	r[1+int(ev.Type)] = structOf(b)
	return r
}

// Timestamp is the event time of event n, ms since the epoch.
func (m *NexmarkRecords) Timestamp(n int64) int64 { return m.gen.Timestamp(n) }

func appendIntValue(b []byte, x int64) []byte {
	return binary.AppendVarint(append(b, byte(KindInt)), x)
}

func appendStringValue(b []byte, s []byte) []byte {
	b = append(b, byte(KindString))
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// nexmarkSource emits the events of its splits, as numberedSource divides the event
// numbers. Since event n depends on (seed, n) only, the events are the same at any
// parallelism and after any restore, each emitted once.
type nexmarkSource struct {
	numberedSource
	opts *NexmarkOptions
	out  Output
	recs *NexmarkRecords
	el   Element
}

func (g *nexmarkSource) Open(_ context.Context, rc *RuntimeContext) error {
	if err := g.open(rc, g.opts.Events, g.opts.Rate); err != nil {
		return err
	}
	g.out, g.recs = rc.Output, NewNexmarkRecords(g.opts.cfg)
	return nil
}

// Poll implements Source.
func (g *nexmarkSource) Poll(context.Context) (PollStatus, error) { return g.poll(g.emit) }

// emit emits event n, stamped with its event time.
func (g *nexmarkSource) emit(n int64) error {
	g.el.Record, g.el.Timestamp = g.recs.Record(n), g.recs.Timestamp(n)
	return g.out.Collect(&g.el)
}

// WriteNexmarkJSON writes events 0 to events-1 of cfg's stream to w as JSON lines, one
// object per event with NexmarkSchema's names: exactly the records a nexmark source with the
// same configuration emits, so that a file source reading them (fields: NexmarkFields)
// yields those records. It stops early when ctx is cancelled.
func WriteNexmarkJSON(ctx context.Context, w io.Writer, cfg nexmark.Config, events int64) error {
	m := NewNexmarkRecords(cfg)
	bw := bufio.NewWriterSize(w, 256*1024)
	var line []byte
	for n := range events {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line = AppendJSONRecord(line[:0], NexmarkSchema, m.Record(n))
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// NexmarkFields lists the paths of every field of NexmarkSchema: the fields option of a
// json file source that reads what WriteNexmarkJSON wrote.
func NexmarkFields() []string {
	var out []string
	for _, f := range NexmarkSchema {
		if f.Kind != KindStruct {
			out = append(out, f.Name)
			continue
		}
		for _, sub := range f.Fields {
			out = append(out, f.Name+"."+sub.Name)
		}
	}
	return out
}
