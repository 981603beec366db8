package dataflow

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/nexmark"
)

var nestedSchema = Schema{
	{Name: "id", Kind: KindInt},
	{Name: "bid", Kind: KindStruct, Fields: Schema{
		{Name: "price", Kind: KindInt},
		{Name: "url", Kind: KindString},
		{Name: "where", Kind: KindStruct, Fields: Schema{{Name: "city", Kind: KindString}}},
	}},
}

func nestedRecord(id, price int64, url, city string) Record {
	return Record{Int(id), Struct(Record{Int(price), String(url), Struct(Record{String(city)})})}
}

func TestStructRoundTrip(t *testing.T) {
	r := nestedRecord(7, 1234, "https://x", "Salem")
	r = append(r, Null(), Struct(nil))
	enc := AppendRecord(nil, r)
	var got Record
	if err := DecodeRecord(enc, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, r) {
		t.Fatalf("round trip: %v, want %v", got, r)
	}
	bid := got[1]
	if p := bid.Field(0); p != Int(1234) {
		t.Errorf("bid field 0 = %v", p)
	}
	if c := bid.Field(2).Field(0); c != String("Salem") {
		t.Errorf("bid.where.city = %v", c)
	}
	if v := bid.Field(3); v != Null() {
		t.Errorf("a field past the end is %v, want null", v)
	}
	if v := got[2].Field(0); v != Null() {
		t.Errorf("a field of a null object is %v, want null", v)
	}
	fields, err := bid.Fields(nil)
	if err != nil || len(fields) != 3 || fields[1] != String("https://x") {
		t.Errorf("Fields = %v, %v", fields, err)
	}
	if s := got.String(); s != "7 {1234 https://x {Salem}} null {}" {
		t.Errorf("text %q", s)
	}
}

func TestDecodeRejectsBadNested(t *testing.T) {
	good := AppendRecord(nil, nestedRecord(1, 2, "u", "c"))
	// A struct whose nested record says it has 5 values but holds 3.
	bad := AppendRecord(nil, Record{Int(1)})
	bad = append(bad[:0], 2, byte(KindInt), 2, byte(KindStruct), 4, 5, byte(KindInt), 2, byte(KindNull))
	var r Record
	if err := DecodeRecord(bad, &r); err == nil {
		t.Errorf("accepted a nested record with a wrong value count: %v", r)
	}
	if err := DecodeRecord(good, &r); err != nil {
		t.Fatal(err)
	}
	// Nesting deeper than maxNesting is refused, not recursed into without bound.
	deep := Record{Int(1)}
	for range maxNesting + 2 {
		deep = Record{Struct(deep)}
	}
	if err := DecodeRecord(AppendRecord(nil, deep), &r); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep nesting: %v", err)
	}
}

func TestSchemaResolve(t *testing.T) {
	rec := nestedRecord(7, 1234, "https://x", "Salem")
	for _, tt := range []struct {
		path string
		kind Kind
		want Value
		err  string
	}{
		{"id", KindInt, Int(7), ""},
		{"bid.price", KindInt, Int(1234), ""},
		{"bid.where.city", KindString, String("Salem"), ""},
		{"bid.where", KindStruct, Struct(Record{String("Salem")}), ""},
		{"bid.pricee", 0, Value{}, `unknown field "bid.pricee": bid has fields price, url, where`},
		{"nope", 0, Value{}, `unknown field "nope": input has fields id, bid`},
		{"id.x", 0, Value{}, `unknown field "id.x": id is int, not a nested object`},
		{"bid.where.town", 0, Value{}, `bid.where has fields city`},
	} {
		p, kind, err := nestedSchema.Resolve(tt.path)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.path, err, tt.err)
			}
			continue
		}
		if err != nil || kind != tt.kind {
			t.Errorf("%s: %v %v, want kind %v", tt.path, kind, err, tt.kind)
			continue
		}
		if got := p.Get(rec); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.path, got, tt.want)
		}
	}
	// A path through a null object reads null.
	p, _, _ := nestedSchema.Resolve("bid.where.city")
	if v := p.Get(Record{Int(1), Null()}); v != Null() {
		t.Errorf("through a null object: %v", v)
	}
}

func TestCELNestedFields(t *testing.T) {
	eval := func(src string, r Record) (Value, error) {
		e, err := compileExpr(nestedSchema, src, 0)
		if err != nil {
			return Value{}, err
		}
		out, err := newActivation(context.Background(), nestedSchema).eval(e, r)
		if err != nil {
			return Value{}, err
		}
		return fromCEL(out)
	}
	rec := nestedRecord(7, 1234, "https://x", "Salem")
	for src, want := range map[string]Value{
		"bid.price * 2":                  Int(2468),
		"bid.where.city + '!'":           String("Salem!"),
		"has(bid.url)":                   Bool(true),
		"bid.price > 1000 && id == 7":    Bool(true),
		"size(bid.url)":                  Int(9),
		"bid.where.city.startsWith('S')": Bool(true),
	} {
		got, err := eval(src, rec)
		if err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", src, got, err, want)
		}
	}
	// The fields of a null object are null, as in SQL.
	if got, err := eval("bid.price == null", Record{Int(1), Null()}); err != nil || got != Bool(true) {
		t.Errorf("field of a null object: %v, %v", got, err)
	}
	// A field the schema lacks is refused when the expression is compiled, naming the fields.
	for _, src := range []string{"bid.pricee > 1", "bid.where.town == 'x'"} {
		if _, err := compileExpr(nestedSchema, src, 0); err == nil || !strings.Contains(err.Error(), "has fields") {
			t.Errorf("%s: %v, want an unknown field error", src, err)
		}
	}
}

func TestJSONNested(t *testing.T) {
	rec := nestedRecord(7, 1234, "a\"b\n\u2028<&>\xff", "Salem")
	rec[0] = Int(-3)
	line := AppendJSONRecord(nil, nestedSchema, Record{rec[0], rec[1]})
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	want := map[string]any{"id": -3.0, "bid": map[string]any{"price": 1234.0, "url": "a\"b\n\u2028<&>\ufffd", "where": map[string]any{"city": "Salem"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if s := string(AppendJSONRecord(nil, nestedSchema, Record{Int(1), Null()})); s != `{"id":1,"bid":null}` {
		t.Errorf("null object: %s", s)
	}

	op := &OperatorSpec{Name: "f", Line: 3}
	s, err := JSONSchema(op, []string{"id", "bid.price", "bid.url", "bid.where.city"})
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "id:any, bid:{price:any, url:any, where:{city:any}}" {
		t.Errorf("schema %s", s)
	}
	r := make(Record, len(s))
	if err := ParseJSONObject([]byte(`{"id":7,"bid":{"price":1234,"url":"https://x","where":{"city":"Salem"}}}`), s, r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r, nestedRecord(7, 1234, "https://x", "Salem")) {
		t.Errorf("parsed %v", r)
	}
	if err := ParseJSONObject([]byte(`{"id":7,"bid":null}`), s, r); err != nil || r[1] != Null() {
		t.Errorf("null object: %v %v", r, err)
	}
	if err := ParseJSONObject([]byte(`{"id":7,"bid":3}`), s, r); err == nil || !strings.Contains(err.Error(), "bid: want a JSON object or null") {
		t.Errorf("a number for an object: %v", err)
	}
	for _, fields := range [][]string{{"bid", "bid.price"}, {"bid.price", "bid"}, {"a", "a"}, {"bid.1x"}} {
		if _, err := JSONSchema(op, fields); err == nil || !strings.Contains(err.Error(), `operator "f" (line 3) fields`) {
			t.Errorf("fields %v: %v", fields, err)
		}
	}
}

func FuzzJSONLine(f *testing.F) {
	s, err := JSONSchema(&OperatorSpec{Name: "f"}, []string{"id", "bid.price", "bid.url", "bid.where.city"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(`{"id":7,"bid":{"price":1234,"url":"https://x","where":{"city":"Salem"}}}`)
	f.Add(`{"id":7,"bid":null}`)
	f.Add(`{"bid":{"where":[1,2]}}`)
	f.Add(`null`)
	f.Add(`{"id":1,"bid":3,"bid":{"price":1.5e3,"url":"\u00e9\ud800x","where":null},"id":-0}`)
	f.Add(" {\"bid\" : {\"where\": {\"city\": [1, {\"a\": \"}\"}]}} , \"x\": [] } ")
	f.Add(`{"id":"\xff\"","bid":{"url":{"a":[1,2]}}}`)
	f.Fuzz(func(t *testing.T, line string) {
		r := make(Record, len(s))
		err := ParseJSONObject([]byte(line), s, r)
		// The scanner gives what decoding through a map gives, error or records.
		ref := make(Record, len(s))
		refErr := parseJSONObjectMap([]byte(line), s, ref)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("%q: scanner error %v, map decoding error %v", line, err, refErr)
		}
		if err != nil {
			return
		}
		if !slices.Equal(r, ref) {
			t.Fatalf("%q: scanner gives %v, map decoding %v", line, r, ref)
		}
		// Whatever is accepted encodes, decodes and prints as JSON that parses.
		var back Record
		if err := DecodeRecord(AppendRecord(nil, r), &back); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !json.Valid(AppendJSONRecord(nil, s, back)) {
			t.Fatalf("invalid JSON for %q: %s", line, AppendJSONRecord(nil, s, back))
		}
	})
}

// TestNexmarkJSONIsTheSource checks that the JSON lines of WriteNexmarkJSON, read back as the
// file source parses them, are the records the nexmark source makes, value for value.
func TestNexmarkJSONIsTheSource(t *testing.T) {
	cfg, err := NexmarkConfig(5, 0, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	const events = 3000
	if err := WriteNexmarkJSON(context.Background(), &buf, cfg, events); err != nil {
		t.Fatal(err)
	}
	s, err := JSONSchema(&OperatorSpec{Name: "f"}, NexmarkFields())
	if err != nil {
		t.Fatal(err)
	}
	m := NewNexmarkRecords(cfg)
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	r := make(Record, len(s))
	n := int64(0)
	for ; sc.Scan(); n++ {
		if err := ParseJSONObject(sc.Bytes(), s, r); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if got, want := AppendRecord(nil, r), AppendRecord(nil, m.Record(n)); !bytes.Equal(got, want) {
			t.Fatalf("event %d: file gives %v\nsource gives %v", n, r, m.Record(n))
		}
	}
	if n != events {
		t.Fatalf("%d lines, want %d", n, events)
	}
}

// TestNexmarkNestedJob runs nexmark -> filter on a nested field -> key_by a nested field
// -> aggregate of a nested field, at parallelism 1 and 3, against a reference computed
// from the generator directly.
func TestNexmarkNestedJob(t *testing.T) {
	const events = 5000
	want := map[int64]int64{}
	g := nexmark.New(nexmark.Config{Seed: 3, BaseTime: nexmark.DefaultBaseTime})
	var ev nexmark.Event
	for n := range int64(events) {
		g.Event(n, &ev)
		if ev.Type == nexmark.BidEvent && ev.Bid.Price > 10_000 {
			want[ev.Bid.Auction] += ev.Bid.Price
		}
	}
	var wantLines []string
	for a, sum := range want {
		wantLines = append(wantLines, fmt.Sprintf("%d %d", a, sum))
	}
	slices.Sort(wantLines)
	spec := fmt.Sprintf(`name: j
operators:
  - {name: n, type: nexmark, events: %d, seed: 3}
  - {name: f, type: filter, input: n, expr: 'event_type == 2 && bid.price > 10000'}
  - {name: k, type: key_by, input: f, key: bid.auction}
  - {name: s, type: aggregate, input: k, function: sum, field: bid.price}
  - {name: p, type: print, input: s}
`, events)
	for _, par := range []int{1, 3} {
		p := mustPlan(t, spec, nil, par)
		var out bytes.Buffer
		if err := RunLocal(context.Background(), p, &out); err != nil {
			t.Fatal(err)
		}
		if got := sortedLines(out.String()); !slices.Equal(got, wantLines) {
			t.Errorf("p%d: %d lines, want %d: %q...", par, len(got), len(wantLines), got[:min(3, len(got))])
		}
	}
}

// TestNexmarkFileSource runs a json file source over generated lines into a json file sink
// and checks the output is the input: nested objects read and written back unchanged.
func TestNexmarkFileSource(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "events.json")
	cfg, _ := NexmarkConfig(9, 0, 0, "")
	var buf bytes.Buffer
	if err := WriteNexmarkJSON(context.Background(), &buf, cfg, 500); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf("name: j\noperators:\n  - {name: f, type: file, path: %s, format: json, fields: [%s]}\n"+
		"  - {name: o, type: file, input: f, format: json, path: %s}\n", in, strings.Join(NexmarkFields(), ", "), filepath.Join(dir, "out"))
	if err := RunLocal(context.Background(), mustPlan(t, spec, nil, 1), nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out", "part-o-0"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Errorf("the file sink wrote %d bytes, the input has %d; first lines:\n%.300s\n%.300s", len(got), buf.Len(), got, buf.Bytes())
	}
}

func BenchmarkNexmarkRecords(b *testing.B) {
	m := NewNexmarkRecords(nexmark.Config{Seed: 1})
	var enc []byte
	b.ReportAllocs()
	b.Run("generate", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			m.Record(int64(i))
		}
	})
	b.Run("generate+encode", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			enc = AppendRecord(enc[:0], m.Record(int64(i)))
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			enc = AppendJSONRecord(enc[:0], NexmarkSchema, m.Record(int64(i)))
		}
	})
}

// BenchmarkNexmarkSource runs the nexmark source as a subtask into a blackhole, and into a
// filter on a nested field (the shape of Nexmark's q1/q2), and reports events/s.
func BenchmarkNexmarkSource(b *testing.B) {
	const events = 1 << 20
	for name, mid := range map[string]string{
		"blackhole":        "",
		"filter-bid.price": "  - {name: f, type: filter, input: n, expr: 'event_type == 2 && bid.price > 1000000'}\n",
	} {
		b.Run(name, func(b *testing.B) {
			in := "n"
			if mid != "" {
				in = "f"
			}
			p := mustPlan(b, "name: bench\noperators:\n"+
				"  - {name: n, type: nexmark, events: "+fmt.Sprint(events)+"}\n"+mid+
				"  - {name: b, type: blackhole, input: "+in+"}\n", nil, 1)
			b.ReportAllocs()
			for b.Loop() {
				if err := p.RunSubtask(context.Background(), 0, 0, TaskIO{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestMapProjectsNestedFields: a map copies paths (a nested field, or a whole nested object)
// as they are, beside expressions over nested fields.
func TestMapProjectsNestedFields(t *testing.T) {
	dir := t.TempDir()
	spec := "name: j\noperators:\n  - {name: n, type: nexmark, events: 500, seed: 2}\n" +
		"  - {name: f, type: filter, input: n, expr: 'event_type == 2'}\n" +
		"  - name: m\n    type: map\n    input: f\n    fields:\n      auction: bid.auction\n      euros: double(bid.price) * 0.908 / 100.0\n      b: bid\n" +
		"  - {name: o, type: file, input: m, format: json, path: " + filepath.Join(dir, "out") + "}\n"
	p := mustPlan(t, spec, nil, 1)
	if err := RunLocal(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", "part-o-0"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 460 {
		t.Fatalf("%d bids of 500 events, want 460", len(lines))
	}
	for _, l := range lines {
		var r struct {
			Auction int64   `json:"auction"`
			Euros   float64 `json:"euros"`
			B       struct {
				Auction int64 `json:"auction"`
				Price   int64 `json:"price"`
			} `json:"b"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if r.Auction != r.B.Auction || r.Auction < nexmark.FirstAuctionID || r.Euros != float64(r.B.Price)*0.908/100 {
			t.Fatalf("line %s", l)
		}
	}
}

// TestNestedBadSpecs: wrong nexmark options and wrong paths are errors naming the
// operator, its line, the option and what to write.
func TestNestedBadSpecs(t *testing.T) {
	const nx = "  - {name: n, type: nexmark, events: 10}\n"
	for _, tt := range []struct{ name, spec, want string }{
		{"negative events", "  - {name: n, type: nexmark, events: -1}\n", `operator "n" (line 3) events: must be >= 0`},
		{"negative rate", "  - {name: n, type: nexmark, rate: -5}\n", `operator "n" (line 3) rate: must be >= 0`},
		{"negative event rate", "  - {name: n, type: nexmark, first-event-rate: -1}\n", `operator "n" (line 3) first-event-rate: must be >= 0`},
		{"bad base time", "  - {name: n, type: nexmark, base-time: yesterday}\n", `operator "n" (line 3) base-time: want an RFC 3339 time`},
		{"seed not a number", "  - {name: n, type: nexmark, seed: abc}\n", `want an integer`},
		{"key_by unknown nested", nx + "  - {name: k, type: key_by, input: n, key: bid.auctoin}\n  - {name: p, type: print, input: k}\n",
			`operator "k" (line 4) key: unknown field "bid.auctoin": bid has fields auction, bidder, price, channel, url, dateTime, extra`},
		{"key_by object", nx + "  - {name: k, type: key_by, input: n, key: bid}\n  - {name: p, type: print, input: k}\n",
			`operator "k" (line 4) key: "bid" is a nested object: key by one of its fields`},
		{"aggregate unknown nested", nx + "  - {name: k, type: key_by, input: n, key: bid.auction}\n" +
			"  - {name: a, type: aggregate, input: k, function: sum, field: bid.prize}\n  - {name: p, type: print, input: a}\n",
			`operator "a" (line 5) field: unknown field "bid.prize": bid has fields`},
		{"aggregate of a string", nx + "  - {name: k, type: key_by, input: n, key: bid.auction}\n" +
			"  - {name: a, type: aggregate, input: k, function: sum, field: bid.url}\n  - {name: p, type: print, input: a}\n",
			`operator "a" (line 5) field: sum needs a number, "bid.url" is string`},
		{"filter unknown nested", nx + "  - {name: f, type: filter, input: n, expr: 'bid.prize > 1'}\n  - {name: p, type: print, input: f}\n",
			`operator "f" (line 4) expr: CEL type error in "bid.prize > 1": unknown field "bid.prize"`},
		{"path into a scalar", nx + "  - {name: f, type: filter, input: n, expr: 'event_type.x > 1'}\n  - {name: p, type: print, input: f}\n",
			`operator "f" (line 4) expr: CEL type error`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpec([]byte("name: x\noperators:\n"+tt.spec), nil)
			if err == nil {
				_, err = s.Plan(2)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

func TestNexmarkExamplePlans(t *testing.T) {
	p := mustPlan(t, string(readExample(t, "nexmark/bids.yaml")), nil, 2)
	if !p.Bounded || len(p.Edges) != 1 || p.Edges[0].Key != "bid.auction" {
		t.Errorf("bounded %v, edges %+v", p.Bounded, p.Edges)
	}
}

func BenchmarkJSONLineParse(b *testing.B) {
	cfg, _ := NexmarkConfig(1, 0, 0, "")
	var buf bytes.Buffer
	if err := WriteNexmarkJSON(context.Background(), &buf, cfg, 1000); err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	s, err := JSONSchema(&OperatorSpec{Name: "f"}, NexmarkFields())
	if err != nil {
		b.Fatal(err)
	}
	r := make(Record, len(s))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := ParseJSONObject(lines[i%len(lines)], s, r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNexmarkPath: with path, the nexmark source reads the file generate wrote and a job
// gives what it gives on the generated events; a value of the wrong kind is an error naming
// the line and the field.
func TestNexmarkPath(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "events.json")
	cfg, _ := NexmarkConfig(6, 0, 0, "")
	var buf bytes.Buffer
	if err := WriteNexmarkJSON(context.Background(), &buf, cfg, 4000); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	job := func(source string) []string {
		spec := "name: j\noperators:\n  - {name: n, type: nexmark, " + source + "}\n" +
			"  - {name: f, type: filter, input: n, expr: 'event_type == 2'}\n" +
			"  - {name: k, type: key_by, input: f, key: bid.auction}\n" +
			"  - {name: s, type: aggregate, input: k, function: max, field: bid.price}\n" +
			"  - {name: p, type: print, input: s}\n"
		var out bytes.Buffer
		if err := RunLocal(context.Background(), mustPlan(t, spec, nil, 2), &out); err != nil {
			t.Fatal(err)
		}
		return sortedLines(out.String())
	}
	generated, read := job("events: 4000, seed: 6"), job("path: "+in)
	if len(generated) < 50 || !slices.Equal(generated, read) {
		t.Errorf("from the file: %d lines, generated: %d (first %q, %q)", len(read), len(generated), read[:1], generated[:1])
	}

	bad := bytes.Replace(buf.Bytes(), []byte(`"price":`), []byte(`"price":"x","p":`), 1)
	if err := os.WriteFile(in, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := "name: j\noperators:\n  - {name: n, type: nexmark, path: " + in + "}\n  - {name: p, type: blackhole, input: n}\n"
	err := RunLocal(context.Background(), mustPlan(t, spec, nil, 1), nil)
	if err == nil || !strings.Contains(err.Error(), "line 5: bid.price is string, want int") {
		t.Errorf("a string price: %v", err)
	}
}

// TestNexmarkAccess: generated events touch nothing; with path the file is a read the
// authorizer decides on, as for a file source.
func TestNexmarkAccess(t *testing.T) {
	for spec, want := range map[string][]string{
		"name: j\noperators:\n  - {name: n, type: nexmark, events: 5}\n  - {name: p, type: blackhole, input: n}\n":              nil,
		"name: j\noperators:\n  - {name: n, type: nexmark, path: /srv/events.json}\n  - {name: p, type: blackhole, input: n}\n": {"file:/srv/events.json"},
	} {
		s, err := ParseSpec([]byte(spec), nil)
		if err != nil {
			t.Fatal(err)
		}
		reads, writes := s.Resources()
		if !slices.Equal(reads, want) || len(writes) != 0 {
			t.Errorf("reads %v writes %v, want reads %v", reads, writes, want)
		}
	}
}

// TestCELNestedCost: expressions looping over nested strings are estimated like those over
// top-level ones (a nested field is no larger than a record field), not refused as unbounded.
func TestCELNestedCost(t *testing.T) {
	for _, src := range []string{"words(bid.extra).exists(w, w == 'x')", "bid.url.contains('a')",
		"size(person.name) > 3", "auction.itemName.split(' ').size() > 1"} {
		if _, err := compileExpr(NexmarkSchema, src, 0); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}
