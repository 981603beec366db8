package dataflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// referenceWordCount computes the expected wordcount output in plain Go.
func referenceWordCount(text string) []string {
	counts := map[string]int{}
	for _, line := range strings.Split(text, "\n") {
		word := []byte{}
		flush := func() {
			if len(word) > 0 {
				counts[strings.ToLower(string(word))]++
				word = word[:0]
			}
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
				word = append(word, c)
			} else {
				flush()
			}
		}
		flush()
	}
	var out []string
	for w, n := range counts {
		out = append(out, fmt.Sprintf("%s %d", w, n))
	}
	slices.Sort(out)
	return out
}

func sortedLines(s string) []string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return lines
}

func TestWordCount(t *testing.T) {
	const input = "../../examples/data/gettysburg.txt"
	text, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	want := referenceWordCount(string(text))
	if len(want) < 100 {
		t.Fatalf("reference has only %d words", len(want))
	}
	spec := readExample(t, "wordcount.yaml")
	for _, par := range []int{1, 4} {
		t.Run(fmt.Sprintf("stdout/p%d", par), func(t *testing.T) {
			p := mustPlan(t, string(spec), map[string]string{"input": input}, par)
			var out bytes.Buffer
			if err := RunLocal(context.Background(), p, &out); err != nil {
				t.Fatal(err)
			}
			if got := sortedLines(out.String()); !slices.Equal(got, want) {
				t.Errorf("got %d lines, want %d\n got %q\nwant %q", len(got), len(want), got[:5], want[:5])
			}
		})
		t.Run(fmt.Sprintf("files/p%d", par), func(t *testing.T) {
			dir := t.TempDir()
			p := mustPlan(t, string(spec), map[string]string{"input": input, "output": dir}, par)
			if err := RunLocal(context.Background(), p, nil); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dir)
			var all string
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), "part-out-") {
					t.Errorf("unexpected file %s", e.Name())
				}
				b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				all += string(b)
			}
			if len(entries) != par {
				t.Errorf("%d part files, want %d", len(entries), par)
			}
			if got := sortedLines(all); !slices.Equal(got, want) {
				t.Errorf("file output differs from reference")
			}
		})
	}
}

func TestOperators(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "in.csv")
	os.WriteFile(csvPath, []byte("name,city\nann,paris\nbob,rome\ncid,paris\n"), 0o644)
	jsonPath := filepath.Join(dir, "in.json")
	os.WriteFile(jsonPath, []byte(`{"user":"ann","n":3}`+"\n"+`{"user":"bob","n":2.5}`+"\n"+`{"user":"ann","n":4,"x":[1]}`+"\n"), 0o644)
	const gen = "  - {name: g, type: generator, count: 10, keys: 3}\n"
	tests := []struct {
		name, spec string
		want       []string // sorted output lines
	}{
		{"filter map", "name: j\noperators:\n" + gen +
			"  - {name: f, type: filter, input: g, expr: 'id % 3 == 0'}\n" +
			"  - name: m\n    type: map\n    input: f\n    fields:\n      z: upper(key)\n      half: double(value) / 2.0\n      big: value > 5\n" +
			"  - {name: p, type: print, input: m}\n",
			[]string{"KEY-0 0 false", "KEY-0 1.5 false", "KEY-0 3 true", "KEY-0 4.5 true"}},
		{"flat_map scalars with split and trim", "name: j\noperators:\n" +
			"  - {name: g, type: generator, count: 1}\n" +
			"  - {name: f, type: flat_map, input: g, expr: 'split(\" a, b ,c\", \",\").map(s, trim(s))', as: w}\n" +
			"  - {name: p, type: print, input: f}\n",
			[]string{"a", "b", "c"}},
		{"flat_map maps", "name: j\noperators:\n" +
			"  - {name: g, type: generator, count: 2}\n" +
			"  - {name: f, type: flat_map, input: g, expr: '[{\"a\": id, \"b\": key}, {\"a\": id * 10}]', fields: [a, b]}\n" +
			"  - {name: p, type: print, input: f}\n",
			[]string{"0 key-0", "0 null", "1 key-1", "10 null"}},
		{"sum min max avg", "name: j\noperators:\n" + gen +
			"  - {name: k, type: key_by, input: g, key: key}\n" +
			"  - {name: s, type: aggregate, input: k, function: sum, field: value}\n" +
			"  - {name: mn, type: aggregate, input: k, function: min, field: id, as: lo}\n" +
			"  - {name: mx, type: aggregate, input: k, function: max, field: id, as: hi}\n" +
			"  - {name: av, type: aggregate, input: k, function: avg, field: value}\n" +
			"  - {name: p1, type: print, input: s}\n  - {name: p2, type: print, input: mn}\n" +
			"  - {name: p3, type: print, input: mx}\n  - {name: p4, type: print, input: av}\n",
			[]string{"key-0 0", "key-0 18", "key-0 4.5", "key-0 9", "key-1 1", "key-1 12", "key-1 4", "key-1 7",
				"key-2 15", "key-2 2", "key-2 5", "key-2 8"}},
		{"key_by expression", "name: j\noperators:\n" + gen +
			"  - {name: k, type: key_by, input: g, key: 'id % 2 == 0'}\n" +
			"  - {name: c, type: aggregate, input: k, function: count, as: n}\n" +
			"  - {name: p, type: print, input: c}\n",
			[]string{"false 5", "true 5"}},
		{"csv header", "name: j\noperators:\n" +
			"  - {name: f, type: file, path: " + csvPath + ", format: csv}\n" +
			"  - {name: k, type: key_by, input: f, key: city}\n" +
			"  - {name: c, type: aggregate, input: k, function: count}\n" +
			"  - {name: p, type: print, input: c}\n",
			[]string{"paris 2", "rome 1"}},
		{"json", "name: j\noperators:\n" +
			"  - {name: f, type: file, path: " + jsonPath + ", format: json, fields: [user, n, x]}\n" +
			"  - {name: k, type: key_by, input: f, key: user}\n" +
			"  - {name: c, type: aggregate, input: k, function: sum, field: n}\n" +
			"  - {name: p, type: print, input: c}\n",
			[]string{"ann 7", "bob 2.5"}},
		{"ext strings", "name: j\noperators:\n" +
			"  - {name: g, type: generator, count: 1}\n" +
			"  - {name: m, type: map, input: g, expr: 'key.replace(\"-\", \"_\").upperAscii()', as: k}\n" +
			"  - {name: p, type: print, input: m}\n",
			[]string{"KEY_0"}},
	}
	for _, tt := range tests {
		for _, par := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/p%d", tt.name, par), func(t *testing.T) {
				p := mustPlan(t, tt.spec, nil, par)
				var out bytes.Buffer
				if err := RunLocal(context.Background(), p, &out); err != nil {
					t.Fatal(err)
				}
				if got := sortedLines(out.String()); !slices.Equal(got, tt.want) {
					t.Errorf("got  %q\nwant %q", got, tt.want)
				}
			})
		}
	}
}

func TestFileSinkFormatsAndAtomicity(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"text", "json", "csv"} {
		spec := "name: j\noperators:\n  - {name: g, type: generator, count: 2}\n" +
			"  - {name: o, type: file, input: g, format: " + format + ", path: " + filepath.Join(dir, format) + "}\n"
		if err := RunLocal(context.Background(), mustPlan(t, spec, nil, 1), nil); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, format, "part-o-0"))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"text": "0 key-0 0\n1 key-1 1\n",
			"json": `{"id":0,"key":"key-0","value":0}` + "\n" + `{"id":1,"key":"key-1","value":1}` + "\n",
			"csv":  "id,key,value\n0,key-0,0\n1,key-1,1\n",
		}[format]
		if string(b) != want {
			t.Errorf("%s: got %q, want %q", format, b, want)
		}
	}

	// A cancelled unbounded job leaves no part file, visible or hidden.
	out := filepath.Join(dir, "cancel")
	spec := "name: j\noperators:\n  - {name: g, type: generator, count: 0, rate: 1000}\n" +
		"  - {name: o, type: file, input: g, path: " + out + "}\n"
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := RunLocal(ctx, mustPlan(t, spec, nil, 2), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("files left after cancel: %v", entries)
	}
}

func TestGeneratorRate(t *testing.T) {
	spec := "name: j\noperators:\n  - {name: g, type: generator, count: 300, rate: 1000}\n  - {name: s, type: blackhole, input: g}\n"
	for _, par := range []int{1, 3} {
		p := mustPlan(t, spec, nil, par)
		start := time.Now()
		if err := RunLocal(context.Background(), p, nil); err != nil {
			t.Fatal(err)
		}
		// 300 records at 1000/s take about 0.3 s: allow for timer slack and a busy machine.
		if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
			t.Errorf("p%d: took %v, want about 300ms", par, d)
		}
	}
}

func TestUnboundedStopsOnCancel(t *testing.T) {
	p := mustPlan(t, string(readExample(t, "unbounded.yaml")), map[string]string{"rate": "0"}, 2)
	var m VertexMetrics
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- p.RunSubtask(ctx, 0, 0, TaskIO{
			Outputs: map[int][]RecordWriter{0: {&countWriter{}, &countWriter{}}},
			Metrics: &m,
		})
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("generator did not stop on cancel")
	}
	if m.WriteRecords.Load() == 0 || m.WriteBytes.Load() == 0 {
		t.Errorf("no write metrics: %d records", m.WriteRecords.Load())
	}
}

type countWriter struct{ n, closed atomic.Int64 }

func (w *countWriter) WriteRecord([]byte) error      { w.n.Add(1); return nil }
func (w *countWriter) WriteTimedRecord([]byte) error { w.n.Add(1); return nil }
func (w *countWriter) WriteEvent([]byte) error       { return nil }
func (w *countWriter) Close() error                  { w.closed.Add(1); return nil }

// Rolling aggregates on an unbounded job emit an update per input record.
func TestRollingAggregate(t *testing.T) {
	p := mustPlan(t, string(readExample(t, "unbounded.yaml")), map[string]string{"rate": "0", "keys": "2"}, 1)
	in := &sliceGate{}
	for _, r := range []Record{{String("key-0"), Int(2)}, {String("key-1"), Int(4)}, {String("key-0"), Int(6)}} {
		in.recs = append(in.recs, AppendRecord(nil, r))
	}
	var m VertexMetrics
	out := &bytes.Buffer{}
	// Vertex 1 is "total -> sink": feed it encoded records directly, as a TaskManager would.
	if err := p.RunSubtask(context.Background(), 1, 0, TaskIO{Input: in, Metrics: &m, Stdout: out}); err != nil {
		t.Fatal(err)
	}
	if m.ReadRecords.Load() != 3 {
		t.Errorf("read %d records", m.ReadRecords.Load())
	}
	// The same with a print sink, to see the rolling values.
	spec := strings.Replace(string(readExample(t, "unbounded.yaml")), "type: blackhole", "type: print", 1)
	p = mustPlan(t, spec, map[string]string{"rate": "0"}, 1)
	in.i = 0
	if err := p.RunSubtask(context.Background(), 1, 0, TaskIO{Input: in, Stdout: out}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "key-0 2\nkey-1 4\nkey-0 8\n" {
		t.Errorf("rolling output %q", got)
	}
}

// sliceGate is a one-channel gate delivering recs, then END_OF_DATA (unless stop: the
// channel was stopped), then the end of the partition.
type sliceGate struct {
	noBlocking
	recs [][]byte
	i    int
	stop bool
}

func (g *sliceGate) NextDelivery(context.Context, <-chan struct{}) (event.Delivery, error) {
	return tailDelivery(&g.i, len(g.recs), g.stop, func(i int) []byte { return g.recs[i] })
}

func (g *sliceGate) Channels() int { return 1 }

var endOfDataPayload = event.Append(nil, event.Event{Kind: event.KindEndOfData})

// tailDelivery is element *i of one channel holding n records, then END_OF_DATA (unless
// stop), then the end of partition, then io.EOF.
func tailDelivery(i *int, n int, stop bool, rec func(int) []byte) (event.Delivery, error) {
	k := *i
	*i++
	switch {
	case k < n:
		return event.Delivery{Kind: event.DeliverRecord, Data: rec(k)}, nil
	case k == n && !stop:
		return event.Delivery{Kind: event.DeliverEvent, Data: endOfDataPayload}, nil
	case k == n || k == n+1 && !stop:
		return event.Delivery{Kind: event.DeliverEnd}, nil
	}
	return event.Delivery{}, io.EOF
}

func TestSocketSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("to be or\nnot to be\n"))
		c.Close()
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	spec := fmt.Sprintf("name: j\noperators:\n  - {name: s, type: socket, host: 127.0.0.1, port: %d}\n"+
		"  - {name: w, type: flat_map, input: s, expr: words(line), as: word}\n"+
		"  - {name: k, type: key_by, input: w, key: word}\n"+
		"  - {name: c, type: aggregate, input: k, function: count}\n"+
		"  - {name: p, type: print, input: c}\n", port)
	p := mustPlan(t, spec, nil, 4)
	if p.Bounded || p.Vertices[0].Parallelism != 1 {
		t.Fatalf("socket: bounded %v, parallelism %d", p.Bounded, p.Vertices[0].Parallelism)
	}
	var out bytes.Buffer
	if err := RunLocal(context.Background(), p, &out); err != nil {
		t.Fatal(err)
	}
	// Unbounded: a rolling count per word occurrence.
	want := []string{"be 1", "be 2", "not 1", "or 1", "to 1", "to 2"}
	if got := sortedLines(out.String()); !slices.Equal(got, want) {
		t.Errorf("got %q", got)
	}
}
