package dataflow

import (
	"strings"
	"testing"
	"time"
)

const joinGens = "name: x\noperators:\n" +
	"  - {name: a, type: generator}\n" +
	"  - {name: b, type: generator}\n"

// TestJoinSpecErrors: each mistake in a join is refused with the operator, its line and the
// option to fix.
func TestJoinSpecErrors(t *testing.T) {
	join := func(opts string) string {
		return joinGens + "  - {name: j, type: join, " + opts + "}\n"
	}
	tests := []struct{ name, spec, want string }{
		{"one input (left only)", join("left: a, left-key: key, right-key: key"),
			`operator "j" (line 5) right: missing required option: a join takes two inputs, and left: a names only one: name the other with right`},
		{"one input (input)", join("input: a, left-key: key, right-key: key"),
			`operator "j" (line 5) input: a join takes two inputs: name them with left and right`},
		{"one input (inputs)", join("inputs: [a], left-key: key, right-key: key"),
			`operator "j" (line 5) inputs: a join takes two inputs: name them with left and right (or inputs: [left, right]); got 1`},
		{"inputs and left", join("inputs: [a, b], left: a, left-key: key, right-key: key"),
			`operator "j" (line 5) left: line 5: give either inputs or left and right, not both`},
		{"unknown left", join("left: c, right: b, left-key: key, right-key: key"),
			`operator "j" (line 5) left: unknown operator "c": known operators are a, b, j`},
		{"unknown right in inputs", join("inputs: [a, d], left-key: key, right-key: key"),
			`operator "j" (line 5) inputs[1]: unknown operator "d"`},
		{"missing left-key", join("left: a, right: b, right-key: key"),
			`operator "j" (line 5) left-key: missing required option`},
		{"missing right-key", join("left: a, right: b, left-key: key"),
			`operator "j" (line 5) right-key: missing required option`},
		{"unknown key field", join("left: a, right: b, left-key: kee, right-key: key"),
			`operator "j" (line 5) left-key: the left input "a": unknown field "kee": input has fields id, key, value`},
		{"keys of other kinds", join("left: a, right: b, left-key: key, right-key: id"),
			`operator "j" (line 5) right-key: the left key "key" is string and the right key "id" is int`},
		{"interval lower above upper", join("left: a, right: b, left-key: key, right-key: key, between: [10s, -5s]"),
			`operator "j" (line 5) between: lower bound 10s is above upper bound -5s`},
		{"interval one bound", join("left: a, right: b, left-key: key, right-key: key, between: [10s]"),
			`operator "j" (line 5) between: want two durations [LOWER, UPPER]`},
		{"interval not a duration", join("left: a, right: b, left-key: key, right-key: key, between: [-5, 10s]"),
			`operator "j" (line 5) between: "-5" is not a duration`},
		{"window and interval", join("left: a, right: b, left-key: key, right-key: key, window: {tumbling: 10s}, between: [-5s, 5s]"),
			`operator "j" (line 5) between: give one of window (window join), between (interval join) or ttl (regular join), not several`},
		{"window of zero", join("left: a, right: b, left-key: key, right-key: key, window: {tumbling: 0s}"),
			`operator "j" (line 5) window: tumbling: a window of 0s: want a size of at least 1ms`},
		{"window not tumbling", join("left: a, right: b, left-key: key, right-key: key, window: {sliding: 1s}"),
			`unknown window option "sliding"`},
		{"bad ttl", join("left: a, right: b, left-key: key, right-key: key, ttl: forever"),
			`operator "j" (line 5) ttl: "forever": want a duration of at least 1ms such as 1h`},
		{"left on a one-input operator", joinGens + "  - {name: f, type: filter, left: a, expr: 'true'}\n",
			`operator "f" (line 5) left: line 5: left names an input of an operator taking two (a join)`},
		{"join after key_by", joinGens + "  - {name: k, type: key_by, input: a, key: key}\n  - {name: j, type: join, left: k, right: b, left-key: key, right-key: key}\n",
			`operator "j" (line 6) left: "k" is a key_by: a join keys its inputs itself (left-key, right-key): read from the key_by's input "a" instead`},
		{"bad fields expression", join("left: a, right: b, left-key: key, right-key: key, fields: {x: id}"),
			`operator "j" (line 5) fields.x: CEL type error`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpec([]byte(tt.spec), nil)
			if err == nil {
				_, err = s.Plan(2)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

// TestJoinPlan: a join starts a vertex with one hash edge per input, each routed by its own
// key, and the gate's layout says which input each channel feeds.
func TestJoinPlan(t *testing.T) {
	spec := "name: x\noperators:\n" +
		"  - {name: b, type: generator, parallelism: 3}\n" +
		"  - {name: a, type: generator, parallelism: 2}\n" +
		"  - {name: j, type: join, left: a, right: b, left-key: key, right-key: 'key + \"\"', window: {tumbling: 1s}}\n" +
		"  - {name: m, type: filter, input: j, expr: 'left_id > 0'}\n"
	s, err := ParseSpec([]byte(spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Vertices) != 3 || strings.Join(p.Vertices[2].Operators, ",") != "j,m" {
		t.Fatalf("vertices %+v, want b, a and j -> m", p.Vertices)
	}
	v := p.Vertices[2]
	if len(v.InEdges) != 2 {
		t.Fatalf("join vertex in-edges %v, want 2", v.InEdges)
	}
	for i, id := range v.InEdges {
		e := p.Edges[id]
		if e.Partitioning != PartitionHash {
			t.Errorf("edge %d: %s, want hash", id, e.Partitioning)
		}
		if want := []string{"key", `key + ""`}[i]; e.Key != want {
			t.Errorf("edge %d key %q, want %q", id, e.Key, want)
		}
	}
	layout := p.InputLayout(v.ID)
	want := []InputGroup{{Edge: 0, Channels: 2, Input: 0}, {Edge: 1, Channels: 3, Input: 1}}
	if len(layout) != 2 || layout[0] != want[0] || layout[1] != want[1] {
		t.Fatalf("layout %+v, want %+v", layout, want)
	}
	if got := p.channelInputs(v.ID); len(got) != 5 || got[1] != 0 || got[2] != 1 {
		t.Fatalf("channel inputs %v, want [0 0 1 1 1]", got)
	}
	if got := p.ChannelIndex(1, 2); got != 4 {
		t.Fatalf("channel of edge 1 subtask 2 = %d, want 4", got)
	}
	if got := p.InputChannels(v.ID); got != 5 {
		t.Fatalf("input channels %d, want 5", got)
	}
}

// TestTumblingWindow: windows are aligned to the epoch, before it too.
func TestTumblingWindow(t *testing.T) {
	for _, c := range []struct{ ts, size, start, end int64 }{
		{0, 10, 0, 10}, {9, 10, 0, 10}, {10, 10, 10, 20}, {-1, 10, -10, 0}, {-10, 10, -10, 0}, {-11, 10, -20, -10},
	} {
		if s, e := TumblingWindow(c.ts, c.size); s != c.start || e != c.end {
			t.Errorf("TumblingWindow(%d, %d) = [%d, %d), want [%d, %d)", c.ts, c.size, s, e, c.start, c.end)
		}
	}
}

// TestJoinUnknownOption lists the join's input keys among the options it takes.
func TestJoinUnknownOption(t *testing.T) {
	_, err := ParseSpec([]byte(joinGens+"  - {name: j, type: join, left: a, right: b, left-key: key, right-key: key, windw: {tumbling: 1s}}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `operator "j" (line 5) windw: line 5: unknown option for type join: want name, type, input, parallelism, inputs, left, right, left-key, right-key, window, between, ttl, fields`) {
		t.Fatalf("got %v", err)
	}
}

// TestJoinStateTTL: the job's state.ttl bounds a regular join that sets no ttl of its own; a
// join's own ttl wins.
func TestJoinStateTTL(t *testing.T) {
	for _, tc := range []struct {
		opts string
		want int64
	}{
		{"", 3_600_000},
		{", ttl: 1m", 60_000},
	} {
		spec := "name: x\noperators:\n" +
			"  - {name: a, type: generator, count: 10}\n  - {name: b, type: generator, count: 10}\n" +
			"  - {name: j, type: join, left: a, right: b, left-key: key, right-key: key" + tc.opts + "}\n" +
			"  - {name: o, type: blackhole, input: j}\n"
		s, err := ParseSpec([]byte(spec), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PlanWith(PlanOptions{DefaultParallelism: 1, StateTTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		var j *JoinOptions
		for _, o := range s.Operators {
			if o.Name == "j" {
				j = o.Options.(*JoinOptions)
			}
		}
		if j.ttl != tc.want {
			t.Errorf("join%s with state.ttl 1h: ttl %d ms, want %d", tc.opts, j.ttl, tc.want)
		}
	}
}
