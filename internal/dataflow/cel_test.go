package dataflow

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var lineSchema = Schema{{Name: "line", Kind: KindString}}

// Expressions whose work is quadratic (or worse) in the size of a field are refused when the
// plan is built, with an error naming the operator, its line, the estimate and the key.
func TestCostEstimateRefusesQuadraticExpressions(t *testing.T) {
	refused := []struct{ name, expr string }{
		{"nested exists", `words(line).exists(a, words(line).exists(b, a == b))`},
		{"nested all over split", `split(line, ",").all(a, split(line, ",").all(b, a != b + "x"))`},
		{"exists in map", `words(line).map(a, words(line).filter(b, b == a).size()).exists(n, n > 3)`},
		{"replace blow-up", `line.replace("", line).replace("", line).size() > 0`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			spec := "name: j\noperators:\n  - {name: src, type: socket, host: localhost, port: 9}\n" +
				"  - name: costly\n    type: filter\n    input: src\n    expr: '" + tt.expr + "'\n" +
				"  - {name: out, type: blackhole, input: costly}\n"
			s, err := ParseSpec([]byte(spec), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Plan(1)
			if err == nil {
				t.Fatalf("plan accepted %s", tt.expr)
			}
			for _, want := range []string{`operator "costly" (line 4)`, "estimated cost", MaxExpressionCostKey} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			// The key lets an operator who means it accept the cost.
			if _, err := s.PlanWith(PlanOptions{DefaultParallelism: 1, MaxExpressionCost: 1 << 62}); err != nil {
				t.Errorf("with a raised %s: %v", MaxExpressionCostKey, err)
			}
		})
	}
	// Ordinary expressions, linear in their input, pass with the default.
	for _, expr := range []string{
		`line.contains("x")`, `words(line).exists(w, w == "liberty")`, `lower(line).startsWith("four")`,
		`split(line, ",").size() > 2`, `size(words(line)) > 3 && line.matches("[a-z]+")`,
	} {
		if _, err := compileExpr(lineSchema, expr, 0); err != nil {
			t.Errorf("%s refused: %v", expr, err)
		}
	}
	for _, ex := range []string{"wordcount.yaml", "unbounded.yaml"} {
		s, err := ParseSpec(readExample(t, ex), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Plan(2); err != nil {
			t.Errorf("%s: %v", ex, err)
		}
	}
}

// A record larger than the estimate assumed cannot make one evaluation run unbounded: the
// actual cost is limited too, and the error names the key.
func TestRuntimeCostLimit(t *testing.T) {
	e, err := compileExpr(lineSchema, `words(line).exists(w, w == "zzz")`, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := newActivation(context.Background(), lineSchema)
	if _, err := a.eval(e, Record{String("four score and seven years ago")}); err != nil {
		t.Fatalf("small record: %v", err)
	}
	big := strings.Repeat("ab ", 8<<20/3) // 8 MiB, 2.8 million words
	_, err = a.eval(e, Record{String(big)})
	if err == nil || !strings.Contains(err.Error(), "exceeded the cost limit") || !strings.Contains(err.Error(), MaxExpressionCostKey) {
		t.Fatalf("got %v, want the cost limit error naming %s", err, MaxExpressionCostKey)
	}
}

// costlyFilter passes the estimate only because the limit is raised; on a line of n words it
// does n² work.
const costlyFilter = `words(line).exists(a, words(line).exists(b, a + b == "never"))`

// Cancelling the subtask's context stops an evaluation that would run for minutes.
func TestEvaluationStopsOnCancel(t *testing.T) {
	e, err := compileExpr(lineSchema, costlyFilter, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := newActivation(ctx, lineSchema)
	line := strings.Repeat("ab ", 100_000) // 10^10 inner iterations: minutes
	done := make(chan error, 1)
	go func() {
		_, err := a.eval(e, Record{String(line)})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("evaluation ended before the cancel: %v", err)
	default:
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		t.Logf("stopped %s after the cancel", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("evaluation still running a second after the cancel")
	}
}

// The same through a running subtask: it returns context.Canceled promptly.
func TestSubtaskWithCostlyFilterStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte(strings.Repeat("ab ", 100_000)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := "name: j\noperators:\n  - {name: src, type: file, path: " + in + "}\n" +
		"  - {name: f, type: filter, input: src, expr: '" + costlyFilter + "'}\n" +
		"  - {name: out, type: blackhole, input: f}\n"
	s, err := ParseSpec([]byte(spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.PlanWith(PlanOptions{DefaultParallelism: 1, MaxExpressionCost: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := s.FileAccesses(func(string) bool { return false }, "")
	if err != nil {
		t.Fatal(err)
	}
	files, err := NewJobFiles(acc, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var m VertexMetrics
	done := make(chan error, 1)
	go func() { done <- p.RunSubtask(ctx, 0, 0, TaskIO{Metrics: &m, Files: files}) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("subtask still running 2 s after the cancel")
	}
}

// A fixed but large cost, let through by a raised limit, is interruptible too.
func TestFixedCostEvaluationStopsOnCancel(t *testing.T) {
	list := "[" + strings.TrimSuffix(strings.Repeat("1,", 1000), ",") + "]"
	expr := list + ".exists(a, " + list + ".exists(b, " + list + ".exists(c, a + b + c + value < 0)))"
	s := Schema{{Name: "value", Kind: KindInt}}
	if _, err := compileExpr(s, expr, 0); err == nil || !strings.Contains(err.Error(), MaxExpressionCostKey) {
		t.Fatalf("default limit: got %v, want a refusal naming %s", err, MaxExpressionCostKey)
	}
	e, err := compileExpr(s, expr, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := newActivation(ctx, s)
	done := make(chan error, 1)
	go func() {
		_, err := a.eval(e, Record{Int(1)})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("evaluation still running a second after the cancel")
	}
}
