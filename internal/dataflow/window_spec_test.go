package dataflow

import (
	"strings"
	"testing"
)

// TestWindowSpecErrors: each mistake in a window's options is refused at parse or plan time
// with the operator's name, its line and what to fix.
func TestWindowSpecErrors(t *testing.T) {
	const head = `name: w
operators:
  - {name: src, type: generator, count: 10, timestamp: id, watermark: {max-out-of-orderness: 1s}}
  - {name: k, type: key_by, input: src, key: key}
`
	for _, c := range []struct{ spec, want string }{
		{"  - {name: win, type: window, input: k, tumbling: 0s, function: count}", `operator "win" (line 5) tumbling: line 5: window size 0s must be greater than 0`},
		{"  - {name: win, type: window, input: k, tumbling: -10s, function: count}", `operator "win" (line 5) tumbling: line 5: window size -10s must be greater than 0`},
		{"  - {name: win, type: window, input: k, tumbling: ten, function: count}", `operator "win" (line 5) tumbling: line 5: want a duration such as 10s`},
		{"  - {name: win, type: window, input: k, tumbling: 1500us, function: count}", `not a whole number of milliseconds`},
		{"  - {name: win, type: window, input: k, sliding: {size: 10s, slide: 20s}, function: count}", `operator "win" (line 5) sliding.slide: line 5: slide 20s is larger than the size 10s`},
		{"  - {name: win, type: window, input: k, sliding: {size: 10s, slide: 0s}, function: count}", `operator "win" (line 5) sliding.slide: line 5: window size 0s must be greater than 0`},
		{"  - {name: win, type: window, input: k, sliding: {size: 10s}, function: count}", `operator "win" (line 5) sliding: line 5: missing slide`},
		{"  - {name: win, type: window, input: k, sliding: {size: 10s, slide: 1ms}, function: count}", `size/slide is 10000`},
		{"  - {name: win, type: window, input: k, session: {gap: 0s}, function: count}", `operator "win" (line 5) session.gap: line 5: window size 0s must be greater than 0`},
		{"  - {name: win, type: window, input: k, session: {pause: 1s}, function: count}", `unknown key "pause": want {gap: DURATION}`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, session: {gap: 1s}, function: count}", `operator "win" (line 5) session: more than one window kind (tumbling, session)`},
		{"  - {name: win, type: window, input: k, function: count}", `operator "win" (line 5) tumbling: missing window: set one of tumbling`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, top: 3}", `operator "win" (line 5) top: top needs field`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, top: 3, field: value, function: max}", `top and function are exclusive`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, top: -1, field: value}", `operator "win" (line 5) top: -1: want 1 to 1000`},
		{"  - {name: win, type: window, input: k, tumbling: 10s}", `operator "win" (line 5) function: missing required option`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: median}", `unknown function "median"`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: sum, field: key}", `operator "win" (line 5) field: sum needs a number, "key" is string`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: count, time: wall}", `operator "win" (line 5) time: unknown time "wall"`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: count, time: processing, allowed-lateness: 1s}", `processing-time windows have no late records`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: count, allowed-lateness: -1s}", `allowed-lateness: line 5: -1s must be 0 or more`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: count, late-output: a.b}", `late-output: side output name "a.b"`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: count, as: window_end}", `operator "win" (line 5) as: output field "window_end" collides`},
		{"  - {name: win, type: window, input: src, tumbling: 10s, function: count}", `operator "win" (line 5) input: window needs a keyed input: "src" is a generator, put a key_by between them`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: count}\n  - {name: o, type: print, input: win.late}", `operator "o" (line 6) input: operator "win" (window) has no side output "late"`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: count, late-output: late}\n  - {name: o, type: print, input: win.lat}", `operator "win" has no side output "lat": its side outputs are late`},
		{"  - {name: win, type: window, input: k, tumbling: 10s, function: count}\n  - {name: o, type: print, input: nope.late}", `operator "o" (line 6) input: unknown operator "nope.late"`},
	} {
		checkSpecError(t, head+c.spec+"\n", c.want)
	}
	// An event-time window whose input has no timestamps: refused at plan time; processing
	// time needs none.
	const untimed = `name: w
operators:
  - {name: src, type: generator, count: 10}
  - {name: k, type: key_by, input: src, key: key}
`
	checkSpecError(t, untimed+"  - {name: win, type: window, input: k, tumbling: 10s, function: count}\n", `operator "win" (line 5) time: an event-time window needs timestamped records`)
	if _, err := planSpec(untimed + "  - {name: win, type: window, input: k, tumbling: 10s, function: count, time: processing}\n"); err != nil {
		t.Fatalf("processing-time window without timestamps: %v", err)
	}
}

func planSpec(spec string) (*Plan, error) {
	s, err := ParseSpec([]byte(spec), nil)
	if err != nil {
		return nil, err
	}
	return s.Plan(1)
}

func checkSpecError(t *testing.T, spec, want string) {
	t.Helper()
	if _, err := planSpec(spec); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s\n got %v\nwant %q", spec, err, want)
	}
}

// TestWindowPlanSideOutput: a late side output is an edge of its own from the window's
// vertex, carrying the window's input schema, while the main output chains as before.
func TestWindowPlanSideOutput(t *testing.T) {
	s, err := ParseSpec([]byte(`name: w
operators:
  - {name: src, type: generator, count: 10, timestamp: id, watermark: {max-out-of-orderness: 1s}}
  - {name: k, type: key_by, input: src, key: key}
  - {name: win, type: window, input: k, tumbling: 10s, function: count, late-output: late}
  - {name: o, type: print, input: win}
  - {name: lk, type: key_by, input: win.late, key: key}
  - {name: lc, type: aggregate, input: lk, function: count}
  - {name: lo, type: print, input: lc}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan(2)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range p.Vertices {
		names = append(names, v.Name)
	}
	if got := strings.Join(names, " | "); got != "src | win -> o | lc -> lo" {
		t.Fatalf("vertices %s", got)
	}
	side := p.Edges[len(p.Edges)-1]
	if side.SideOf != "win" || side.Tag != "late" || side.Partitioning != PartitionHash || strings.Join(side.Schema.Names(), ",") != "id,key,value" {
		t.Fatalf("side edge %+v", side)
	}
	if main := p.Edges[0]; main.Tag != "" || main.SideOf != "" {
		t.Fatalf("main edge %+v", main)
	}
	if got := strings.Join(p.ops["win"].schema.Names(), ","); got != "key,window_start,window_end,count" {
		t.Fatalf("window schema %s", got)
	}
}
