package dataflow_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// upper is an operator type registered from outside the package, through the same seam as the
// built-in types: it upper-cases one string field.
type upperOptions struct {
	Field string `yaml:"field" want:"a field name"`

	idx int // after Plan
}

func (u *upperOptions) Check(op *dataflow.OperatorSpec) (dataflow.Shape, error) {
	if u.Field == "" {
		return dataflow.Shape{}, op.Errorf("field", "missing required option: the string field to upper-case")
	}
	return dataflow.Shape{Inputs: 1}, nil
}

func (u *upperOptions) Plan(pc *dataflow.PlanContext) (dataflow.Schema, error) {
	in := pc.Inputs[0]
	u.idx = in.Index(u.Field)
	if u.idx < 0 {
		return nil, pc.Op.Errorf("field", "unknown field %q: input has fields %s", u.Field, strings.Join(in.Names(), ", "))
	}
	if k := in[u.idx].Kind; k != dataflow.KindString && k != dataflow.KindAny {
		return nil, pc.Op.Errorf("field", "%q is %s, want a string", u.Field, k)
	}
	return in, nil
}

func (u *upperOptions) Access(*dataflow.OperatorSpec) []dataflow.Access { return nil }

func (u *upperOptions) NewOperator() dataflow.Operator { return &upperOp{idx: u.idx} }

// upperCalls counts lifecycle calls over all subtasks of a run.
var upperCalls struct{ open, finish, close, records atomic.Int64 }

type upperOp struct {
	idx  int
	name string
	out  dataflow.Output
	rec  dataflow.Record
}

func (o *upperOp) Open(_ context.Context, rc *dataflow.RuntimeContext) error {
	upperCalls.open.Add(1)
	o.out, o.name = rc.Output, rc.Operator
	calls.add(o.name, "open")
	rc.Logger.Debug("upper opened", "parallelism", rc.Parallelism, "job-attempt", rc.Job.Attempt)
	return nil
}

func (o *upperOp) Process(_ int, e *dataflow.Element) error {
	upperCalls.records.Add(1)
	if k := e.Record[o.idx].Kind(); k != dataflow.KindString {
		return fmt.Errorf("field %d is %s, want a string", o.idx, k)
	}
	o.rec = append(o.rec[:0], e.Record...)
	o.rec[o.idx] = dataflow.String(strings.ToUpper(o.rec[o.idx].AsString()))
	el := *e
	el.Record = o.rec
	return o.out.Collect(&el)
}

func (o *upperOp) Finish() error {
	upperCalls.finish.Add(1)
	calls.add(o.name, "finish")
	return nil
}

func (o *upperOp) Close() error {
	upperCalls.close.Add(1)
	calls.add(o.name, "close")
	return nil
}

// countdownOptions are the options of ticks, a source type registered from outside the package
// (named to sort after the built-ins in "known types" messages): it emits (n) for n from
// its option down to 1, split over its subtasks, idling once on the way so the task waits on
// Available.
type countdownOptions struct {
	From int64 `yaml:"from"`
}

func (c *countdownOptions) Check(op *dataflow.OperatorSpec) (dataflow.Shape, error) {
	if c.From <= 0 {
		return dataflow.Shape{}, op.Errorf("from", "must be at least 1")
	}
	return dataflow.Shape{Bounded: true}, nil
}

func (c *countdownOptions) Plan(*dataflow.PlanContext) (dataflow.Schema, error) {
	return dataflow.Schema{{Name: "n", Kind: dataflow.KindInt}}, nil
}

func (c *countdownOptions) Access(*dataflow.OperatorSpec) []dataflow.Access { return nil }

func (c *countdownOptions) NewOperator() dataflow.Operator { return &countdownOp{from: c.From} }

type countdownOp struct {
	dataflow.NoInput
	from      int64
	name      string
	n, stride int64
	idled     bool
	ready     chan struct{}
	out       dataflow.Output
	el        dataflow.Element
}

func (o *countdownOp) Open(_ context.Context, rc *dataflow.RuntimeContext) error {
	o.name = rc.Operator
	calls.add(o.name, "open")
	o.out, o.n, o.stride = rc.Output, o.from-int64(rc.Subtask), int64(rc.Parallelism)
	o.el = dataflow.Element{Record: make(dataflow.Record, 1), Timestamp: dataflow.NoTimestamp}
	o.ready = make(chan struct{}, 1)
	return nil
}

func (o *countdownOp) Poll(context.Context) (dataflow.PollStatus, error) {
	if o.n <= 0 {
		return dataflow.PollEnd, nil
	}
	if !o.idled && o.n%2 == 0 {
		// Idle once, with data "there again" at once, as after a pacing timer.
		o.idled = true
		o.ready <- struct{}{}
		return dataflow.PollIdle, nil
	}
	o.el.Record[0] = dataflow.Int(o.n)
	o.n -= o.stride
	return dataflow.PollMore, o.out.Collect(&o.el)
}

func (o *countdownOp) Available() <-chan struct{} { return o.ready }
func (o *countdownOp) Finish() error              { calls.add(o.name, "finish"); return nil }
func (o *countdownOp) Close() error               { calls.add(o.name, "close"); return nil }

// callLog records the lifecycle calls of the test operators, in order.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(op, call string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, op+"."+call)
}

func (l *callLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

var calls callLog

func init() {
	dataflow.Register(dataflow.OperatorType{Name: "upper", New: func() dataflow.Definition { return new(upperOptions) }})
	dataflow.Register(dataflow.OperatorType{Name: "ticks", New: func() dataflow.Definition { return new(countdownOptions) }})
}

func resetUpperCalls() {
	upperCalls.open.Store(0)
	upperCalls.finish.Store(0)
	upperCalls.close.Store(0)
	upperCalls.records.Store(0)
}

func runSpec(t *testing.T, spec string, par int) (string, error) {
	t.Helper()
	s, err := dataflow.ParseSpec([]byte(spec), nil)
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	p, err := s.Plan(par)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	var out bytes.Buffer
	err = dataflow.RunLocal(context.Background(), p, &out)
	return out.String(), err
}

func sorted(s string) []string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(l)
	return l
}

func TestRegisteredOperatorRuns(t *testing.T) {
	tests := []struct {
		name, spec string
		want       []string
	}{
		{"chained", "name: j\noperators:\n" +
			"  - {name: g, type: generator, count: 4, keys: 3}\n" +
			"  - {name: u, type: upper, input: g, field: key}\n" +
			"  - {name: p, type: print, input: u}\n",
			[]string{"0 KEY-0 0", "1 KEY-1 1", "2 KEY-2 2", "3 KEY-0 3"}},
		{"after a hash edge, before a built-in", "name: j\noperators:\n" +
			"  - {name: g, type: generator, count: 4, keys: 3}\n" +
			"  - {name: k, type: key_by, input: g, key: key}\n" +
			"  - {name: u, type: upper, input: k, field: key, parallelism: 3}\n" +
			"  - {name: m, type: map, input: u, expr: 'key + \"!\"', as: shout}\n" +
			"  - {name: p, type: print, input: m}\n",
			[]string{"KEY-0!", "KEY-0!", "KEY-1!", "KEY-2!"}},
		{"feeding a keyed aggregate", "name: j\noperators:\n" +
			"  - {name: g, type: generator, count: 4, keys: 3}\n" +
			"  - {name: u, type: upper, input: g, field: key}\n" +
			"  - {name: k, type: key_by, input: u, key: key}\n" +
			"  - {name: c, type: aggregate, input: k, function: count}\n" +
			"  - {name: p, type: print, input: c}\n",
			[]string{"KEY-0 2", "KEY-1 1", "KEY-2 1"}},
	}
	for _, tt := range tests {
		for _, par := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/p%d", tt.name, par), func(t *testing.T) {
				resetUpperCalls()
				out, err := runSpec(t, tt.spec, par)
				if err != nil {
					t.Fatal(err)
				}
				if got := sorted(out); !slices.Equal(got, tt.want) {
					t.Errorf("p%d: got %q, want %q", par, got, tt.want)
				}
				open, fin, cl := upperCalls.open.Load(), upperCalls.finish.Load(), upperCalls.close.Load()
				if open == 0 || fin != open || cl != open || upperCalls.records.Load() != 4 {
					t.Errorf("p%d: open %d, finish %d, close %d, records %d: want every subtask opened, finished and closed once, 4 records",
						par, open, fin, cl, upperCalls.records.Load())
				}
			})
		}
	}
}

// A registered source runs like a built-in one: polled until it ends, chained with the operators
// after it, each given the whole lifecycle (opened tail first, finished and closed head first).
func TestRegisteredSourceRuns(t *testing.T) {
	const spec = "name: j\noperators:\n" +
		"  - {name: c, type: ticks, from: 5}\n" +
		"  - {name: u, type: upper, input: m, field: s}\n" +
		"  - {name: m, type: map, input: c, fields: {n: n, s: 'n > 2 ? \"hi\" : \"lo\"'}}\n" +
		"  - {name: p, type: print, input: u}\n"
	want := []string{"1 LO", "2 LO", "3 HI", "4 HI", "5 HI"}
	for _, par := range []int{1, 2} {
		calls.take()
		out, err := runSpec(t, spec, par)
		if err != nil {
			t.Fatalf("p%d: %v", par, err)
		}
		if got := sorted(out); !slices.Equal(got, want) {
			t.Errorf("p%d: got %q, want %q", par, got, want)
		}
		if par == 1 {
			got := strings.Join(calls.take(), " ")
			if want := "u.open c.open c.finish u.finish c.close u.close"; got != want {
				t.Errorf("lifecycle calls %q, want %q", got, want)
			}
		}
	}
}

// An operator's runtime context names its job and subtask, and its logger says the same.
func TestRuntimeContextLogger(t *testing.T) {
	s, err := dataflow.ParseSpec([]byte("name: j\noperators:\n"+
		"  - {name: g, type: generator, count: 2}\n"+
		"  - {name: u, type: upper, input: g, field: key}\n"+
		"  - {name: p, type: blackhole, input: u}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Plan(3)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	err = p.RunSubtask(context.Background(), 0, 2, dataflow.TaskIO{Logger: logger,
		Job: dataflow.JobInfo{ID: "job-1", Name: "j", Attempt: 4}})
	if err != nil {
		t.Fatal(err)
	}
	want := `msg="upper opened" job=job-1 job-name=j attempt=4 operator=u subtask=2 parallelism=3 job-attempt=4`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log %q, want a line with %s", logs.String(), want)
	}
}

// A failure downstream of the registered operator closes it without finishing it.
func TestRegisteredOperatorClosedOnFailure(t *testing.T) {
	resetUpperCalls()
	_, err := runSpec(t, "name: j\noperators:\n"+
		"  - {name: g, type: generator, count: 4}\n"+
		"  - {name: u, type: upper, input: g, field: key}\n"+
		"  - {name: m, type: map, input: u, expr: '10 / (id - 2)', as: q}\n"+
		"  - {name: p, type: blackhole, input: m}\n", 1)
	if err == nil || !strings.HasPrefix(err.Error(), `operator "m"`) || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("got %v, want the map's division by zero", err)
	}
	if o, f, c := upperCalls.open.Load(), upperCalls.finish.Load(), upperCalls.close.Load(); o != 1 || f != 0 || c != 1 {
		t.Errorf("open %d, finish %d, close %d: want 1, 0, 1", o, f, c)
	}
}

// The registered operator's own errors name it; errors from further down name theirs.
func TestRegisteredOperatorErrors(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(in, []byte("{\"v\": \"a\"}\n{\"v\": 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runSpec(t, "name: j\noperators:\n"+
		"  - {name: f, type: file, format: json, fields: [v], path: "+in+"}\n"+
		"  - {name: u, type: upper, input: f, field: v}\n"+
		"  - {name: p, type: blackhole, input: u}\n", 1)
	if want := `operator "u": field 0 is int, want a string`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestRegisteredOperatorOptions(t *testing.T) {
	const gen = "name: j\noperators:\n  - {name: g, type: generator, count: 1}\n"
	tests := []struct{ name, spec, want string }{
		{"misspelt option", gen + "  - name: u\n    type: upper\n    input: g\n    feild: key\n",
			`operator "u" (line 4) feild: line 7: unknown option for type upper: want name, type, input, parallelism, field`},
		{"not a scalar", gen + "  - {name: u, type: upper, input: g, field: [key]}\n",
			`operator "u" (line 4) field: line 4: want a field name`},
		{"missing", gen + "  - {name: u, type: upper, input: g}\n",
			`operator "u" (line 4) field: missing required option: the string field to upper-case`},
		{"no input", "name: j\noperators:\n  - {name: u, type: upper, field: key}\n",
			`operator "u" (line 3) input: missing required option: the name of the upstream operator`},
		{"unknown field", gen + "  - {name: u, type: upper, input: g, field: nope}\n",
			`operator "u" (line 4) field: unknown field "nope": input has fields id, key, value`},
		{"not a string", gen + "  - {name: u, type: upper, input: g, field: id}\n",
			`operator "u" (line 4) field: "id" is int, want a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := dataflow.ParseSpec([]byte(tt.spec), nil)
			if err == nil {
				_, err = s.Plan(1)
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	if !slices.Contains(dataflow.Types(), "upper") || !slices.IsSorted(dataflow.Types()) {
		t.Fatalf("Types() = %v: want upper among sorted names", dataflow.Types())
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `"upper" registered twice`) {
			t.Errorf("recovered %v, want a panic naming the type", r)
		}
	}()
	dataflow.Register(dataflow.OperatorType{Name: "upper", New: func() dataflow.Definition { return new(upperOptions) }})
}
