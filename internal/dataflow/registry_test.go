package dataflow

import (
	"strings"
	"testing"
)

// The messages of option decoding are worded from the field's Go type unless a want tag says
// otherwise, as they were when every option was decoded by hand.
func TestOptionMessages(t *testing.T) {
	const gen = "name: x\noperators:\n  - {name: g, type: generator, count: 1}\n"
	tests := []struct{ name, spec, want string }{
		{"integer", "name: x\noperators:\n  - {name: g, type: generator, count: lots}\n",
			`operator "g" (line 3) count: line 3: want an integer, got "lots"`},
		{"number", "name: x\noperators:\n  - {name: g, type: generator, rate: fast}\n",
			`operator "g" (line 3) rate: line 3: want a number, got "fast"`},
		{"bool pointer", "name: x\noperators:\n  - {name: f, type: file, path: /a, format: csv, header: maybe}\n",
			`operator "f" (line 3) header: line 3: want true or false, got "maybe"`},
		{"list", "name: x\noperators:\n  - {name: f, type: file, path: /a, format: json, fields: id}\n",
			`operator "f" (line 3) fields: line 3: want a list of field names`},
		{"list element", "name: x\noperators:\n  - {name: f, type: file, path: /a, format: json, fields: [[id]]}\n",
			`operator "f" (line 3) fields: line 3: want a field name`},
		{"want tag", gen + "  - {name: f, type: filter, input: g, expr: [x]}\n",
			`operator "f" (line 4) expr: line 4: want a CEL expression`},
		{"unmarshaler", gen + "  - {name: m, type: map, input: g, fields: [a]}\n",
			`operator "m" (line 4) fields: line 4: want a mapping of output field: CEL expression`},
		{"unmarshaler element", gen + "  - {name: m, type: map, input: g, fields: {a: [b]}}\n",
			`operator "m" (line 4) fields: a: line 4: want a CEL expression`},
		{"type without options", gen + "  - {name: b, type: blackhole, input: g, path: /x}\n",
			`operator "b" (line 4) path: line 4: unknown option for type blackhole: want name, type, input, parallelism`},
		{"options in field order", gen + "  - {name: a, type: aggregate, input: g, fn: count}\n",
			`operator "a" (line 4) fn: line 4: unknown option for type aggregate: want name, type, input, parallelism, function, field, as`},
		{"socket capped at one subtask", "name: x\noperators:\n  - {name: s, type: socket, host: h, port: 1, parallelism: 0}\n",
			`operator "s" (line 3) parallelism: line 3: must be at least 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.spec), nil)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// Shape.MaxSubtasks caps an operator's parallelism: a socket is one connection.
func TestMaxSubtasks(t *testing.T) {
	p := mustPlan(t, "name: x\nparallelism: 4\noperators:\n  - {name: s, type: socket, host: h, port: 1, parallelism: 3}\n"+
		"  - {name: p, type: print, input: s}\n", nil, 2)
	var got []string
	for _, v := range p.Vertices {
		got = append(got, v.Name+"/"+jsonInt(v.Parallelism))
	}
	if strings.Join(got, " ") != "s/1 p/4" || p.Bounded {
		t.Errorf("vertices %v, bounded %v: want s/1 p/4, unbounded", got, p.Bounded)
	}
}

// Resources and FileAccesses come from each type's Access list.
func TestAccessLists(t *testing.T) {
	s, err := ParseSpec([]byte("name: x\noperators:\n"+
		"  - {name: in, type: file, path: /in.txt}\n"+
		"  - {name: sock, type: socket, host: h, port: 9}\n"+
		"  - {name: out, type: file, input: in, path: /out}\n"+
		"  - {name: pr, type: print, input: sock, path: /pr}\n"+
		"  - {name: st, type: print, input: sock}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, w := s.Resources()
	if strings.Join(r, " ") != "file:/in.txt socket:h:9" || strings.Join(w, " ") != "file:/out file:/pr" {
		t.Errorf("resources %v %v", r, w)
	}
	fa, err := s.FileAccesses(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []FileAccess{{Operator: "in", Path: "/in.txt"}, {Operator: "out", Write: true, Path: "/out"}, {Operator: "pr", Write: true, Path: "/pr"}}
	if len(fa) != len(want) {
		t.Fatalf("file accesses %+v", fa)
	}
	for i := range want {
		if fa[i] != want[i] {
			t.Errorf("file access %d: %+v, want %+v", i, fa[i], want[i])
		}
	}
}
