package dataflow

import "testing"

// TestFileSinkOptional: a file sink needs its path unless optional: true, and then an empty
// path discards the records (it neither asks for nor writes a directory); a source refuses
// optional.
func TestFileSinkOptional(t *testing.T) {
	const head = `name: f
operators:
  - {name: src, type: generator, count: 10}
`
	checkSpecError(t, head+"  - {name: out, type: file, input: src, format: json, path: \"\"}\n",
		`operator "out" (line 4) path: missing required option: the output directory (or optional: true`)
	checkSpecError(t, "name: f\noperators:\n  - {name: src, type: file, path: in.txt, optional: true}\n  - {name: out, type: blackhole, input: src}\n",
		`operator "src" (line 3) optional: only for file sinks`)

	s, err := ParseSpec([]byte(head+"  - {name: out, type: file, input: src, format: json, path: \"\", optional: true}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Plan(1); err != nil {
		t.Fatalf("optional sink without a path: %v", err)
	}
	var out *OperatorSpec
	for i := range s.Operators {
		if s.Operators[i].Name == "out" {
			out = s.Operators[i]
		}
	}
	if out == nil {
		t.Fatal("no operator out")
	}
	if a := out.Options.Access(out); len(a) != 0 {
		t.Fatalf("an optional sink without a path asks for %v, want no access", a)
	}
	if _, ok := out.Options.NewOperator().(blackholeSink); !ok {
		t.Fatalf("an optional sink without a path runs as %T, want a blackhole", out.Options.NewOperator())
	}

	s, err = ParseSpec([]byte(head+"  - {name: out, type: file, input: src, format: json, path: /tmp/x, optional: true}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Plan(1); err != nil {
		t.Fatal(err)
	}
	for i := range s.Operators {
		if op := s.Operators[i]; op.Name == "out" {
			if _, ok := op.Options.NewOperator().(*fileSink); !ok {
				t.Fatalf("an optional sink with a path runs as %T, want a file sink", op.Options.NewOperator())
			}
		}
	}
}
