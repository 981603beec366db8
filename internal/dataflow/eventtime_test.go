package dataflow

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// TestWatermarkValve: the input watermark is the minimum over the channels neither idle
// nor ended, it only advances, and the task's status is idle while every open channel is.
func TestWatermarkValve(t *testing.T) {
	type step struct {
		op      string // "wm", "idle", "active", "end"
		ch      int
		ts      int64
		wantWM  int64 // 0: no advance
		wantIdl string
	}
	const none = 0
	cases := []struct {
		name  string
		chans int
		steps []step
	}{
		{"minimum of two", 2, []step{
			{op: "wm", ch: 0, ts: 10, wantWM: none},
			{op: "wm", ch: 1, ts: 5, wantWM: 5},
			{op: "wm", ch: 1, ts: 20, wantWM: 10},
			{op: "wm", ch: 0, ts: 30, wantWM: 20},
		}},
		{"channel watermarks only advance", 1, []step{
			{op: "wm", ch: 0, ts: 10, wantWM: 10},
			{op: "wm", ch: 0, ts: 7, wantWM: none},
			{op: "wm", ch: 0, ts: 10, wantWM: none},
			{op: "wm", ch: 0, ts: 11, wantWM: 11},
		}},
		{"idle channel holds nothing back", 2, []step{
			{op: "wm", ch: 0, ts: 100, wantWM: none},
			{op: "idle", ch: 1, wantWM: 100},
			{op: "wm", ch: 0, ts: 200, wantWM: 200},
			{op: "active", ch: 1, wantWM: none},
			// Back from idle behind the input watermark: it holds nothing back until
			// it catches up, as its records are late anyway.
			{op: "wm", ch: 0, ts: 300, wantWM: 300},
			{op: "wm", ch: 1, ts: 250, wantWM: none},
			{op: "wm", ch: 1, ts: 350, wantWM: none},
			{op: "wm", ch: 0, ts: 400, wantWM: 350},
		}},
		{"all idle", 2, []step{
			{op: "idle", ch: 0, wantIdl: "unchanged"},
			{op: "idle", ch: 1, wantIdl: "idle"},
			{op: "active", ch: 0, wantIdl: "active"},
		}},
		{"ended channel holds nothing back", 2, []step{
			{op: "wm", ch: 0, ts: 50, wantWM: none},
			{op: "end", ch: 1, wantWM: 50},
			{op: "wm", ch: 0, ts: math.MaxInt64, wantWM: math.MaxInt64},
		}},
		{"idle and an ended channel", 2, []step{
			{op: "idle", ch: 0, wantIdl: "unchanged"},
			{op: "end", ch: 1, wantIdl: "idle"},
		}},
		{"watermark of an idle channel is kept for later", 2, []step{
			{op: "idle", ch: 1},
			{op: "wm", ch: 1, ts: 70, wantWM: none},
			{op: "wm", ch: 0, ts: 90, wantWM: 90},
			{op: "active", ch: 1},
			{op: "wm", ch: 0, ts: 95, wantWM: 95}, // 70 < 90: channel 1 is behind
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newWatermarkValve(c.chans)
			for i, s := range c.steps {
				var wm int64
				var adv, changed bool
				switch s.op {
				case "wm":
					wm, adv = v.watermark(s.ch, s.ts)
				case "idle", "active":
					changed, wm, adv = v.status(s.ch, s.op == "idle")
				case "end":
					changed, wm, adv = v.end(s.ch)
				}
				if s.wantWM == none && adv {
					t.Fatalf("step %d %+v: advanced to %d", i, s, wm)
				}
				if s.wantWM != none && (!adv || wm != s.wantWM) {
					t.Fatalf("step %d %+v: got %d (advanced %v), want %d", i, s, wm, adv, s.wantWM)
				}
				switch s.wantIdl {
				case "unchanged":
					if changed {
						t.Fatalf("step %d %+v: status changed to idle=%v", i, s, v.outIdle)
					}
				case "idle", "active":
					if !changed || v.outIdle != (s.wantIdl == "idle") {
						t.Fatalf("step %d %+v: changed %v idle %v, want %s", i, s, changed, v.outIdle, s.wantIdl)
					}
				}
			}
		})
	}
}

// TestWatermarkGenerator: bounded out of orderness is the largest timestamp minus the bound
// minus 1 ms, emitted only when it advances; a generator without records for its idle
// timeout goes idle.
func TestWatermarkGenerator(t *testing.T) {
	g := &wmGen{wm: &WatermarkSpec{MaxOutOfOrderness: 5 * time.Second, IdleTimeout: time.Second}, maxTs: NoTimestamp, emitted: NoTimestamp}
	if _, ok := g.watermarkAt(); ok {
		t.Fatal("a watermark before any record")
	}
	g.maxTs, g.records = 10_000, 1
	if wm, ok := g.watermarkAt(); !ok || wm != 4_999 {
		t.Fatalf("watermark %d %v, want 4999", wm, ok)
	}
	g.emitted = 4_999
	if _, ok := g.watermarkAt(); ok {
		t.Fatal("the same watermark twice")
	}
	now := time.Unix(1000, 0)
	if g.goesIdle(now) {
		t.Fatal("idle right after a record")
	}
	if g.goesIdle(now.Add(500 * time.Millisecond)) {
		t.Fatal("idle before the timeout")
	}
	if !g.goesIdle(now.Add(1500 * time.Millisecond)) {
		t.Fatal("not idle 1s after the last record seen")
	}
	g.idle = true
	if g.goesIdle(now.Add(3 * time.Second)) {
		t.Fatal("goes idle twice")
	}
	g.records++
	if g.goesIdle(now.Add(4 * time.Second)) {
		t.Fatal("idle with a new record")
	}
	g.wm.IdleTimeout = 0
	if g.goesIdle(now.Add(time.Hour)) || g.goesIdle(now.Add(2*time.Hour)) {
		t.Fatal("idle without an idle-timeout")
	}
}

func TestTimedRecordCodec(t *testing.T) {
	r := Record{Int(7), String("x")}
	for _, ts := range []int64{0, -1, 1700000000000, math.MaxInt64, math.MinInt64 + 1} {
		b := AppendTimedRecord(nil, ts, r)
		got, rec, err := SplitTimestamp(b)
		if err != nil || got != ts {
			t.Fatalf("ts %d: got %d, %v", ts, got, err)
		}
		var back Record
		if err := DecodeRecord(rec, &back); err != nil || back.String() != r.String() {
			t.Fatalf("ts %d: record %v, %v", ts, back, err)
		}
	}
	if _, _, err := SplitTimestamp([]byte{0x80}); err == nil {
		t.Fatal("truncated timestamp accepted")
	}
	if _, _, err := SplitTimestamp(nil); err == nil {
		t.Fatal("empty timed record accepted")
	}
}

// TestEventTimeSpecErrors: each mistake in event-time options names the operator, its
// line and the option.
func TestEventTimeSpecErrors(t *testing.T) {
	cases := []struct{ name, spec, want string }{
		{"watermark on a map", `name: x
operators:
  - {name: g, type: generator, count: 10, timestamp: id}
  - {name: m, type: map, input: g, expr: "id", as: id, watermark: {max-out-of-orderness: 1s}}
`, `operator "m" (line 4) watermark: only a source or a watermark operator takes watermark`},
		{"timestamp on a filter", `name: x
operators:
  - {name: g, type: generator, count: 10}
  - {name: f, type: filter, input: g, expr: "true", timestamp: id}
`, `operator "f" (line 4) timestamp: only a source or a watermark operator takes timestamp`},
		{"watermark without timestamps", `name: x
operators:
  - {name: g, type: generator, count: 10, watermark: {max-out-of-orderness: 1s}}
`, `operator "g" (line 3) watermark: a watermark needs record timestamps`},
		{"bad duration", `name: x
operators:
  - {name: g, type: generator, count: 10, timestamp: id, watermark: {max-out-of-orderness: five}}
`, `operator "g" (line 3) watermark: max-out-of-orderness: line 3: want a duration such as 5s`},
		{"unknown watermark option", `name: x
operators:
  - {name: g, type: generator, count: 10, timestamp: id, watermark: {max-out-of-orderness: 1s, idle: 3s}}
`, `unknown watermark option "idle": want max-out-of-orderness, idle-timeout`},
		{"missing bound", `name: x
operators:
  - {name: g, type: generator, count: 10, timestamp: id, watermark: {idle-timeout: 3s}}
`, `operator "g" (line 3) watermark: line 3: missing max-out-of-orderness`},
		{"watermark operator without watermark", `name: x
operators:
  - {name: g, type: generator, count: 10}
  - {name: w, type: watermark, input: g, timestamp: id}
`, `operator "w" (line 4) watermark: missing required option`},
		{"missing field", `name: x
operators:
  - {name: g, type: generator, count: 10, timestamp: ts}
`, `operator "g" (line 3) timestamp: unknown field "ts": input has fields id, key, value (or use timestamp: ingestion)`},
		{"not a time", `name: x
operators:
  - {name: g, type: generator, count: 10}
  - {name: m, type: map, input: g, fields: {f: "1.5"}}
  - {name: w, type: watermark, input: m, timestamp: f, watermark: {max-out-of-orderness: 0s}}
`, `operator "w" (line 5) timestamp: field "f" is float, not a time`},
		{"nested field of a scalar", `name: x
operators:
  - {name: g, type: generator, count: 10, timestamp: key.dateTime}
`, `operator "g" (line 3) timestamp: unknown field "key.dateTime": key is string, not a nested object`},
		{"empty path segment", `name: x
operators:
  - {name: g, type: generator, count: 10, timestamp: "bid..dateTime"}
`, `operator "g" (line 3) timestamp: line 3: want a field name, a dotted path`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseSpec([]byte(c.spec), nil)
			if err == nil {
				_, err = s.Plan(1)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestTimestampAtRuntime: a file source's timestamps from an RFC 3339 field and from an int
// field reach the records; a record whose field is not a time fails the job naming the
// operator, its line and the field.
func TestTimestampAtRuntime(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("good.csv", "k,at\na,2026-01-02T03:04:05.5Z\nb,1970-01-01T00:00:01Z\n")
	write("ms.csv", "k,at\na,1500\nb,-3\n")
	write("bad.csv", "k,at\na,1500\nb,yesterday\n")
	run := func(file, ts string) (string, error) {
		spec := `name: ts
operators:
  - {name: src, type: file, path: ` + file + `, format: csv, timestamp: ` + ts + `, watermark: {max-out-of-orderness: 1s}}
  - {name: m, type: map, input: src, fields: {k: "k"}}
  - {name: w, type: watermark, input: m, watermark: {max-out-of-orderness: 0s}}
  - {name: o, type: print, input: w, parallelism: 2}
`
		s, err := ParseSpec([]byte(spec), nil)
		if err != nil {
			return "", err
		}
		p, err := s.Plan(1)
		if err != nil {
			return "", err
		}
		rec := &timestamps{}
		var out bytes.Buffer
		err = RunLocalWith(context.Background(), p, LocalOptions{Stdout: &out, Task: func(vertex, _ int, tio *TaskIO) {
			if p.Vertices[vertex].Operators[0] == "o" {
				tio.Input = &recordingGate{InputGate: tio.Input, seen: rec}
			}
		}})
		seen := rec.sorted()
		var parts []string
		for _, ts := range seen {
			parts = append(parts, time.UnixMilli(ts).UTC().Format(time.RFC3339Nano))
		}
		return strings.Join(parts, " "), err
	}
	if got, err := run("good.csv", "at"); err != nil || got != "1970-01-01T00:00:01Z 2026-01-02T03:04:05.5Z" {
		t.Fatalf("RFC 3339: %q, %v", got, err)
	}
	if got, err := run("ms.csv", "at"); err != nil || got != "1969-12-31T23:59:59.997Z 1970-01-01T00:00:01.5Z" {
		t.Fatalf("ms: %q, %v", got, err)
	}
	_, err := run("bad.csv", "at")
	if err == nil || !strings.Contains(err.Error(), `operator "src" (line 3) timestamp: timestamp field "at" is "yesterday", not a time`) {
		t.Fatalf("bad time: %v", err)
	}
	before := time.Now().UnixMilli()
	got, err := run("ms.csv", IngestionTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Fields(got) {
		at, _ := time.Parse(time.RFC3339Nano, s)
		if at.UnixMilli() < before || at.UnixMilli() > time.Now().UnixMilli() {
			t.Fatalf("ingestion time %s outside the run", s)
		}
	}
}

// timestamps collects the timestamps the print subtasks received.
type timestamps struct {
	mu  sync.Mutex
	all []int64
}

func (t *timestamps) add(ts int64) {
	t.mu.Lock()
	t.all = append(t.all, ts)
	t.mu.Unlock()
}

func (t *timestamps) sorted() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	slices.Sort(t.all)
	return t.all
}

// recordingGate notes the timestamps of the timed records it delivers.
type recordingGate struct {
	InputGate
	seen *timestamps
}

func (g *recordingGate) NextDelivery(ctx context.Context, wake <-chan struct{}) (d event.Delivery, err error) {
	d, err = g.InputGate.NextDelivery(ctx, wake)
	if err == nil && d.Kind == event.DeliverTimedRecord {
		ts, _, _ := SplitTimestamp(d.Data)
		g.seen.add(ts)
	}
	return d, err
}
