package dataflow

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPlan(t testing.TB, spec string, params map[string]string, par int) *Plan {
	t.Helper()
	s, err := ParseSpec([]byte(spec), params)
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	p, err := s.Plan(par)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func TestExamplesPlan(t *testing.T) {
	wc := mustPlan(t, string(readExample(t, "wordcount.yaml")), nil, 4)
	if !wc.Bounded {
		t.Error("wordcount should be bounded")
	}
	gotV := []string{}
	for _, v := range wc.Vertices {
		gotV = append(gotV, v.Name)
	}
	if strings.Join(gotV, "|") != "lines -> words|counts -> out" {
		t.Errorf("vertices %q", gotV)
	}
	if len(wc.Edges) != 1 || wc.Edges[0].Partitioning != PartitionHash || wc.Edges[0].Key != "word" {
		t.Errorf("edges %+v", wc.Edges[0])
	}
	if got := wc.InputChannels(1); got != 4 {
		t.Errorf("InputChannels(1) = %d, want 4", got)
	}
	if got := wc.Targets(0, 2); len(got) != 4 {
		t.Errorf("Targets = %v", got)
	}

	ub := mustPlan(t, string(readExample(t, "unbounded.yaml")), map[string]string{"rate": "50"}, 2)
	if ub.Bounded {
		t.Error("unbounded should not be bounded")
	}
	if ub.Vertices[0].Name != "gen -> double" || ub.Vertices[1].Name != "total -> sink" {
		t.Errorf("vertices %s, %s", ub.Vertices[0].Name, ub.Vertices[1].Name)
	}
	s, _ := ParseSpec(readExample(t, "wordcount.yaml"), map[string]string{"input": "in.txt", "output": "out"})
	if r, w := s.Resources(); !slices.Equal(r, []string{"file:in.txt"}) || !slices.Equal(w, []string{"file:out"}) {
		t.Errorf("resources %v %v", r, w)
	}
	if g := ub.ops["gen"].spec.Options.(*GeneratorOptions); g.Rate != 50 {
		t.Errorf("rate %v", g.Rate)
	}
}

// The TaskManager rebuilds the plan from the shipped spec: ids must match the JobManager's.
func TestPlanDeterministicAndJSON(t *testing.T) {
	spec := string(readExample(t, "wordcount.yaml"))
	var first []byte
	for i := 0; i < 5; i++ {
		b, err := json.Marshal(mustPlan(t, spec, map[string]string{"output": "/tmp/x"}, 3))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if string(b) != string(first) {
			t.Fatalf("plan differs between builds:\n%s\n%s", first, b)
		}
	}
	var back Plan
	if err := json.Unmarshal(first, &back); err != nil {
		t.Fatal(err)
	}
	if back.Compile() == nil {
		t.Error("a plan decoded from JSON cannot run: Compile should say so")
	}
	if !strings.Contains(string(first), `"partitioning":"hash"`) || !strings.Contains(string(first), `"kind":"string"`) {
		t.Errorf("json: %s", first)
	}
}

func TestChaining(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		vertices string // names joined by |
		edges    string // source>target:partitioning joined by |
	}{
		{"all chained", `
name: j
operators:
  - {name: g, type: generator, count: 10}
  - {name: f, type: filter, input: g, expr: "id > 2"}
  - {name: s, type: blackhole, input: f}
`, "g -> f -> s", ""},
		{"rebalance on parallelism change", `
name: j
operators:
  - {name: g, type: generator, count: 10, parallelism: 1}
  - {name: f, type: filter, input: g, expr: "id > 2"}
  - {name: s, type: blackhole, input: f}
`, "g|f -> s", "0>1:rebalance"},
		{"forward on fan-out", `
name: j
operators:
  - {name: g, type: generator, count: 10}
  - {name: a, type: blackhole, input: g}
  - {name: b, type: print, input: g}
`, "g|a|b", "0>1:forward|0>2:forward"},
		{"key_by after fan-out", `
name: j
operators:
  - {name: g, type: generator, count: 10}
  - {name: k, type: key_by, input: g, key: key}
  - {name: c, type: aggregate, input: k, function: count}
  - {name: m, type: aggregate, input: k, function: max, field: value, parallelism: 3}
  - {name: s, type: blackhole, input: c}
`, "g|c -> s|m", "0>1:hash|0>2:hash"},
		{"spec order need not be topological", `
name: j
operators:
  - {name: s, type: blackhole, input: f}
  - {name: f, type: filter, input: g, expr: "true"}
  - {name: g, type: generator, count: 1}
`, "g -> f -> s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPlan(t, tt.spec, nil, 2)
			var vs, es []string
			for _, v := range p.Vertices {
				vs = append(vs, v.Name)
			}
			for _, e := range p.Edges {
				es = append(es, jsonInt(e.Source)+">"+jsonInt(e.Target)+":"+e.Partitioning)
			}
			if got := strings.Join(vs, "|"); got != tt.vertices {
				t.Errorf("vertices %q, want %q", got, tt.vertices)
			}
			if got := strings.Join(es, "|"); got != tt.edges {
				t.Errorf("edges %q, want %q", got, tt.edges)
			}
		})
	}
}

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestParams(t *testing.T) {
	const spec = `
name: ${job}
parameters:
  job: default-name
  n: "5"
  expr: "id > 1"
operators:
  - name: g
    type: generator
    count: ${n}
  - name: f
    type: filter
    input: g
    expr: ${expr}
  - name: p
    type: print
    input: f
    path: "$${HOME}/out-${n}"
`
	tests := []struct {
		name    string
		params  map[string]string
		check   func(*Spec) string
		wantErr string
	}{
		{"defaults", nil, func(s *Spec) string {
			count, path := s.Operators[0].Options.(*GeneratorOptions).Count, s.Operators[2].Options.(*PrintOptions).Path
			if s.Name != "default-name" || count != 5 || path != "${HOME}/out-5" {
				return "got " + s.Name + " " + path
			}
			return ""
		}, ""},
		{"override", map[string]string{"n": "7", "job": "x"}, func(s *Spec) string {
			if s.Name != "x" || s.Operators[0].Options.(*GeneratorOptions).Count != 7 {
				return "not overridden"
			}
			return ""
		}, ""},
		{"no yaml injection", map[string]string{"expr": "true\ninput: evil"}, func(s *Spec) string {
			if expr := s.Operators[1].Options.(*FilterOptions).Expr; expr != "true\ninput: evil" || s.Operators[1].Input != "g" {
				return "injected: " + expr
			}
			return ""
		}, ""},
		{"number must parse", map[string]string{"n": "many"}, nil, `operator "g" (line 8) count: line 10: want an integer, got "many"`},
		{"unknown param", map[string]string{"nn": "1"}, nil, `unknown parameter "nn": the job declares expr, job, n`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpec([]byte(spec), tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(s); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestBadSpecs(t *testing.T) {
	const gen = "  - {name: g, type: generator, count: 10}\n"
	tests := []struct {
		name, spec, want string
	}{
		{"malformed yaml", "name: x\noperators: [\n  - a: b\n", "job spec is not valid YAML: yaml: line"},
		{"missing parameter", "name: x\nparameters: {input: }\noperators:\n  - {name: f, type: file, path: '${input}'}\n",
			`parameter "input" is not set: pass --param input=VALUE`},
		{"undeclared parameter", "name: x\noperators:\n  - {name: f, type: file, path: '${input}'}\n",
			`parameter "input" is not set: pass --param input=VALUE`},
		{"unterminated parameter", "name: x\noperators:\n  - {name: f, type: file, path: '${input'}\n", "unterminated parameter reference"},
		{"missing job name", "operators:\n" + gen, `missing required "name"`},
		{"unknown type", "name: x\noperators:\n  - {name: g, type: generater}\n",
			`operator "g" (line 3) type: unknown operator type "generater": known types are aggregate, blackhole, file, filter, flat_map, generator, join, key_by, map, nexmark, print, socket`},
		{"missing operator name", "name: x\noperators:\n  - {type: generator}\n", `operator #1 (line 3): missing required "name"`},
		{"duplicate name", "name: x\noperators:\n" + gen + gen, `operator "g" (line 4): duplicate name, first used on line 3`},
		{"unknown option", "name: x\noperators:\n  - {name: g, type: generator, cont: 1}\n", `operator "g" (line 3) cont: line 3: unknown option for type generator`},
		{"unknown input", "name: x\noperators:\n" + gen + "  - {name: s, type: blackhole, input: gg}\n",
			`operator "s" (line 4) input: unknown operator "gg": known operators are g, s`},
		{"cycle", "name: x\noperators:\n" + gen + "  - {name: a, type: filter, input: b, expr: 'true'}\n  - {name: b, type: filter, input: a, expr: 'true'}\n",
			`input: cycle: a -> b -> a`},
		{"self cycle", "name: x\noperators:\n  - {name: a, type: filter, input: a, expr: 'true'}\n", `cycle: a -> a`},
		{"missing required option", "name: x\noperators:\n" + gen + "  - {name: f, type: filter, input: g}\n",
			`operator "f" (line 4) expr: missing required option`},
		{"missing path", "name: x\noperators:\n  - {name: f, type: file}\n", `operator "f" (line 3) path: missing required option`},
		{"cel syntax error", "name: x\noperators:\n" + gen + "  - {name: f, type: filter, input: g, expr: 'id >'}\n",
			`operator "f" (line 4) expr: CEL syntax error in "id >"`},
		{"filter not bool", "name: x\noperators:\n" + gen + "  - {name: f, type: filter, input: g, expr: 'id + 1'}\n",
			`operator "f" (line 4) expr: CEL type error: filter expression "id + 1" is of type int, want bool`},
		{"unknown field in cel", "name: x\noperators:\n" + gen + "  - {name: f, type: filter, input: g, expr: 'idd > 1'}\n",
			`CEL type error in "idd > 1": ERROR: <input>:1:1: undeclared reference to 'idd'`},
		{"cel type mismatch", "name: x\noperators:\n" + gen + "  - {name: m, type: map, input: g, expr: 'key + 1', as: k}\n",
			`operator "m" (line 4) fields.k: CEL type error in "key + 1"`},
		{"flat_map not list", "name: x\noperators:\n" + gen + "  - {name: m, type: flat_map, input: g, expr: 'key', as: k}\n",
			`flat_map expression "key" is of type string, want a list`},
		{"key_by unknown field", "name: x\noperators:\n" + gen + "  - {name: k, type: key_by, input: g, key: kee}\n",
			`operator "k" (line 4) key: unknown field "kee": input "g" has fields id, key, value`},
		{"aggregate not after key_by", "name: x\noperators:\n" + gen + "  - {name: a, type: aggregate, input: g, function: count}\n",
			`operator "a" (line 4) input: aggregate needs a keyed input: "g" is a generator, put a key_by between them`},
		{"aggregate unknown function", "name: x\noperators:\n" + gen + "  - {name: a, type: aggregate, input: g, function: median}\n",
			`unknown function "median"`},
		{"aggregate missing field", "name: x\noperators:\n" + gen + "  - {name: k, type: key_by, input: g, key: key}\n  - {name: a, type: aggregate, input: k, function: sum}\n",
			`operator "a" (line 5) field: missing required option`},
		{"aggregate sum of string", "name: x\noperators:\n" + gen + "  - {name: k, type: key_by, input: g, key: key}\n  - {name: a, type: aggregate, input: k, function: sum, field: key}\n",
			`sum needs a number, "key" is string`},
		{"sink as input", "name: x\noperators:\n" + gen + "  - {name: s, type: blackhole, input: g}\n  - {name: t, type: print, input: s}\n",
			`operator "t" (line 5) input: "s" is a blackhole sink and has no output`},
		{"source with input", "name: x\noperators:\n" + gen + "  - {name: h, type: generator, input: g}\n",
			`operator "h" (line 4) input: a generator source takes no input`},
		{"transform without input", "name: x\noperators:\n  - {name: f, type: filter, expr: 'true'}\n",
			`operator "f" (line 3) input: missing required option`},
		{"bad format", "name: x\noperators:\n  - {name: f, type: file, path: a, format: xml}\n", `unknown format "xml"`},
		{"bad field name", "name: x\noperators:\n" + gen + "  - {name: m, type: map, input: g, fields: {my-field: id}}\n",
			`field name "my-field" must be an identifier`},
		{"no operators", "name: x\n", "no operators"},
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

func FuzzParseSpec(f *testing.F) {
	f.Add(readExample(f, "wordcount.yaml"))
	f.Add(readExample(f, "unbounded.yaml"))
	f.Add([]byte("name: x\noperators:\n  - {name: a, type: filter, input: a, expr: 'true'}\n"))
	f.Add([]byte("name: $${x}${y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSpec(b, map[string]string{"input": "x.txt"})
		if err != nil {
			return
		}
		p, err := s.Plan(2)
		if err != nil {
			return
		}
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("plan does not marshal: %v", err)
		}
	})
}
