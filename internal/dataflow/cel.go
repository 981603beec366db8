package dataflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// baseEnv holds the functions every job can use; per-schema environments extend it with the
// record's fields as variables, which is much cheaper than building an environment from scratch.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	str := func(f func(string) string) func(ref.Val) ref.Val {
		return func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			return types.String(f(string(s)))
		}
	}
	return cel.NewEnv(
		ext.Strings(),
		cel.Function("words",
			cel.Overload("words_string", []*cel.Type{cel.StringType}, cel.ListType(cel.StringType),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok {
						return types.MaybeNoSuchOverloadErr(v)
					}
					return types.NewStringList(types.DefaultTypeAdapter, Words(string(s)))
				}))),
		cel.Function("lower",
			cel.Overload("lower_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(str(strings.ToLower)))),
		cel.Function("upper",
			cel.Overload("upper_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(str(strings.ToUpper)))),
		cel.Function("trim",
			cel.Overload("trim_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(str(strings.TrimSpace)))),
		cel.Function("split",
			cel.Overload("split_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.ListType(cel.StringType),
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					s, ok1 := a.(types.String)
					sep, ok2 := b.(types.String)
					if !ok1 || !ok2 {
						return types.MaybeNoSuchOverloadErr(a)
					}
					return types.NewStringList(types.DefaultTypeAdapter, strings.Split(string(s), string(sep)))
				}))),
		// Without a model our functions would cost 1 whatever their input, and their
		// results would have an unknown size, so anything iterating over words(line) could
		// not be estimated. The models serve both the estimate at submission and the
		// tracking during evaluation.
		cel.CostModel(
			stringFunctionCost("lower_string", cost.Scale(cost.Arg(0), 1.5)), // some code points lengthen when case-mapped
			stringFunctionCost("upper_string", cost.Scale(cost.Arg(0), 1.5)),
			stringFunctionCost("trim_string", cost.AtMost(cost.Arg(0))),
			listFunctionCost("words_string", cost.List(cost.AtMost(cost.Sum(cost.Scale(cost.Arg(0), 0.5), cost.Const(1))), cost.AtMost(cost.Arg(0)))),
			listFunctionCost("split_string_string", cost.List(cost.AtMost(cost.Sum(cost.Arg(0), cost.Const(1))), cost.AtMost(cost.Arg(0)))),
		),
	)
})

// stringFunctionCost models a function that scans its string argument once and returns a string.
func stringFunctionCost(id string, result cost.QuantityExpr) cost.OverloadModel {
	return cost.Overload(id,
		cost.EvalCost(cost.Sum(cost.Const(cost.CallCost), cost.StringScan(cost.Length(cost.Arg(0))), cost.Length(cost.Result()))),
		cost.ResultSize(result))
}

// listFunctionCost models a function that scans its string argument and returns a list of parts.
func listFunctionCost(id string, result cost.QuantityExpr) cost.OverloadModel {
	return cost.Overload(id,
		cost.EvalCost(cost.AllocList(cost.StringScan(cost.Length(cost.Arg(0))), cost.Length(cost.Result()))),
		cost.ResultSize(result))
}

// Words splits s into maximal runs of ASCII letters, lowercased: the word definition of the
// wordcount example, exported so tests and tools compute the same reference.
func Words(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		letter := i < len(s) && (s[i]|0x20 >= 'a' && s[i]|0x20 <= 'z')
		switch {
		case letter && start < 0:
			start = i
		case !letter && start >= 0:
			out = append(out, strings.ToLower(s[start:i]))
			start = -1
		}
	}
	return out
}

// schemaEnv returns an environment with one variable per field of the schema.
func schemaEnv(s Schema) (*cel.Env, error) {
	base, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	opts := make([]cel.EnvOption, 0, len(s))
	for _, f := range s {
		if f.Kind == KindStruct {
			opts = append(opts, cel.Variable(f.Name, celObjectType))
			continue
		}
		opts = append(opts, cel.Variable(f.Name, celType(f.Kind)))
	}
	return base.Extend(opts...)
}

func celType(k Kind) *cel.Type {
	switch k {
	case KindBool:
		return cel.BoolType
	case KindInt:
		return cel.IntType
	case KindFloat:
		return cel.DoubleType
	case KindString:
		return cel.StringType
	case KindBytes:
		return cel.BytesType
	}
	return cel.DynType
}

// kindOf maps a CEL type to a record kind; containers and dyn give KindAny.
func kindOf(t *cel.Type) Kind {
	switch t.Kind() {
	case types.BoolKind:
		return KindBool
	case types.IntKind, types.UintKind:
		return KindInt
	case types.DoubleKind:
		return KindFloat
	case types.StringKind:
		return KindString
	case types.BytesKind:
		return KindBytes
	case types.NullTypeKind:
		return KindNull
	}
	return KindAny
}

// MaxExpressionCostKey is the setting that bounds the cost of one expression evaluation.
const MaxExpressionCostKey = "pipeline.expression.max-cost"

// DefaultMaxExpressionCost is the default of pipeline.expression.max-cost (registered in
// internal/config with the same value). A cost unit is roughly one CEL operation, tens of
// nanoseconds: an evaluation that reaches the default took 0.1 to 1 s in our measurements,
// depending on what it allocates. Expressions whose work is linear in a field of maxFieldSize
// stay below it, those that are quadratic in one (nested exists over the words of a line)
// are orders of magnitude above.
const DefaultMaxExpressionCost = 10_000_000

// maxFieldSize is the size the cost estimate assumes for a string or bytes field: records that
// cross the network are at most a frame, 1 MiB by default (network.DefaultMaxFrameSize).
// Records larger than that, which a source may chain to an expression without crossing the
// network, are still bounded: their evaluations track the actual cost.
const maxFieldSize = 1 << 20

// interruptCheckFrequency is how many comprehension iterations run between two checks of the
// task's context: small enough that a cancelled task stops within microseconds, large enough
// that the check costs nothing measurable.
const interruptCheckFrequency = 100

// interruptFreeCost is the largest fixed cost evaluated without watching the context: a
// few milliseconds at most.
const interruptFreeCost = 100_000

// fieldSizes tells the cost estimator how large a record field can be. Every variable of a
// job's expressions is a record field, a scalar or a nested object (whose fields are in
// nested: a field of it is no larger than the object).
type fieldSizes struct{ nested map[string]bool }

var _ cost.Estimator = fieldSizes{}

func (f fieldSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) == 0 || (len(path) > 1 && !f.nested[path[0]]) {
		return nil
	}
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind, types.DynKind:
		return &cost.SizeEstimate{Min: 0, Max: maxFieldSize}
	}
	return nil
}

func (fieldSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// celExpr is one compiled expression. The program is safe for concurrent use, so subtasks of a
// vertex share it; each subtask has its own activation.
type celExpr struct {
	src     string
	out     *cel.Type
	prog    cel.Program
	maxCost uint64
	// interruptible: prog may run long and has a comprehension, so it watches the context.
	interruptible bool
	// tracked, when the cost depends on the size of the fields, is prog with the actual
	// cost limited to maxCost: for records with a field larger than the estimate assumed.
	tracked      cel.Program
	trackedLoops bool
	// native, when the expression has a native shape (cel_native.go), evaluates it
	// without the interpreter where its answer is CEL's.
	native     nativeExpr
	nativeKind Kind
}

// compileExpr parses, type-checks and plans src against the schema. Syntax and type errors are
// told apart because they call for different fixes. An expression whose estimated worst-case
// cost exceeds maxCost is refused, and no evaluation may cost more than maxCost (0 means
// DefaultMaxExpressionCost): the estimate bounds it, and where a record is beyond what the
// estimate assumed, the actual cost is tracked and the evaluation stopped at the limit.
func compileExpr(s Schema, src string, maxCost uint64) (*celExpr, error) {
	if maxCost == 0 {
		maxCost = DefaultMaxExpressionCost
	}
	env, err := schemaEnv(s)
	if err != nil {
		return nil, err
	}
	parsed, iss := env.Parse(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("CEL syntax error in %q: %v", src, iss.Err())
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, fmt.Errorf("CEL type error in %q: %v (fields: %s)", src, iss.Err(), s)
	}
	if err := checkSelects(s, checked); err != nil {
		return nil, fmt.Errorf("CEL type error in %q: %w", src, err)
	}
	sizes := fieldSizes{nested: map[string]bool{}}
	for _, f := range s {
		if f.Kind == KindStruct {
			sizes.nested[f.Name] = true
		}
	}
	est, err := env.EstimateCost(checked, sizes)
	if err != nil {
		return nil, fmt.Errorf("CEL cost of %q: %w", src, err)
	}
	if est.Max > maxCost {
		return nil, fmt.Errorf("CEL expression %q has an estimated cost of %s per record, above the limit of %d (%s): "+
			"its work grows too fast with the size of its input (for example a comprehension nested in another over the same list); "+
			"rewrite it, or raise %s on the JobManager if the cost is intended",
			src, costText(est.Max), maxCost, MaxExpressionCostKey, MaxExpressionCostKey)
	}
	// The estimate bounds the actual cost of every record whose string and bytes fields are
	// at most maxFieldSize, so such records are evaluated without tracking the cost, which
	// costs more than most expressions themselves (~200 ns and 4 allocations an evaluation).
	// A record with a larger field, which the estimate says nothing about, goes to a program
	// that tracks the cost against maxCost, unless the cost does not depend on sizes at all.
	anySize, err := env.EstimateCost(checked, unboundedSizes{})
	if err != nil {
		return nil, fmt.Errorf("CEL cost of %q: %w", src, err)
	}
	e := &celExpr{src: src, out: checked.OutputType(), maxCost: maxCost}
	e.native, e.nativeKind = compileNative(s, checked)
	// Watching the context costs ~250 ns and 3 allocations an evaluation, and only
	// comprehensions check it: it is watched where an evaluation loops and may take long,
	// which includes a cost that a raised limit lets through.
	loops := len(ast.MatchDescendants(ast.NavigateAST(checked.NativeRep()), ast.KindMatcher(ast.ComprehensionKind))) > 0
	e.interruptible = loops && est.Max > interruptFreeCost
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if loops {
		opts = append(opts, cel.InterruptCheckFrequency(interruptCheckFrequency))
	}
	if e.prog, err = env.Program(checked, opts...); err != nil {
		return nil, fmt.Errorf("CEL program %q: %w", src, err)
	}
	if anySize.Max > maxCost {
		if e.tracked, err = env.Program(checked, append(opts, cel.CostLimit(maxCost))...); err != nil {
			return nil, fmt.Errorf("CEL program %q: %w", src, err)
		}
		e.trackedLoops = loops
	}
	return e, nil
}

// unboundedSizes leaves every size unknown, so an estimate made with it holds for any record.
type unboundedSizes struct{}

func (unboundedSizes) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }
func (unboundedSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// costText prints an estimate; the unbounded one is not a number anybody can act on.
func costText(c uint64) string {
	if c == ^uint64(0) {
		return "unbounded"
	}
	return fmt.Sprint(c)
}

// activation exposes the current record's fields to CEL without building a map per record.
// ctx is the subtask's: cancelling it stops an evaluation under way.
type activation struct {
	ctx    context.Context
	names  map[string]int
	fields Schema
	rec    Record
	// structs holds one view per field, reused from record to record so that reading a
	// nested field allocates nothing: a view is only read during the evaluation that
	// resolved it (results that are containers never become record fields).
	structs []celStruct
}

var _ interpreter.Activation = (*activation)(nil)

func newActivation(ctx context.Context, s Schema) *activation {
	a := &activation{ctx: ctx, names: make(map[string]int, len(s)), fields: s}
	for i, f := range s {
		a.names[f.Name] = i
	}
	return a
}

func (a *activation) ResolveName(name string) (any, bool) {
	i, ok := a.names[name]
	if !ok || i >= len(a.rec) {
		return nil, false
	}
	if a.fields[i].Kind == KindStruct {
		if a.structs == nil {
			a.structs = make([]celStruct, len(a.fields))
		}
		v, c := a.rec[i], &a.structs[i]
		c.fields, c.s = a.fields[i].Fields, ""
		if v.kind == KindStruct {
			c.s = v.s
		}
		return c, true
	}
	return toCEL(a.rec[i]), true
}

func (a *activation) Parent() interpreter.Activation { return nil }

// eval evaluates e on r.
func (a *activation) eval(e *celExpr, r Record) (ref.Val, error) {
	a.rec = r
	var out ref.Val
	var err error
	switch {
	case e.tracked != nil && oversized(r):
		if e.trackedLoops {
			out, _, err = e.tracked.ContextEval(a.ctx, a)
		} else {
			out, _, err = e.tracked.Eval(a)
		}
	case e.interruptible:
		out, _, err = e.prog.ContextEval(a.ctx, a)
	default:
		out, _, err = e.prog.Eval(a)
	}
	a.rec = nil
	if err != nil {
		var ce interpreter.EvalCancelledError
		if errors.As(err, &ce) && ce.Cause == interpreter.CostLimitExceeded {
			return nil, fmt.Errorf("evaluate %q: stopped: the evaluation exceeded the cost limit of %d on this record (%s); "+
				"rewrite the expression, or raise %s on the JobManager", e.src, e.maxCost, MaxExpressionCostKey, MaxExpressionCostKey)
		}
		return nil, fmt.Errorf("evaluate %q: %w", e.src, err)
	}
	return out, nil
}

// evalValue evaluates e on r to a record value: natively where it can (cel_native.go),
// else with CEL.
func (a *activation) evalValue(e *celExpr, r Record) (Value, error) {
	if e.native != nil {
		if v, ok := e.native(r); ok {
			return v, nil
		}
	}
	v, err := a.eval(e, r)
	if err != nil {
		return Value{}, err
	}
	out, err := fromCEL(v)
	if err != nil {
		return Value{}, fmt.Errorf("%q: %w", e.src, err)
	}
	return out, nil
}

// oversized reports whether a field of r is larger than the cost estimate assumed.
func oversized(r Record) bool {
	for _, v := range r {
		if (v.kind == KindString || v.kind == KindBytes || v.kind == KindStruct) && len(v.s) > maxFieldSize {
			return true
		}
	}
	return false
}

func toCEL(v Value) ref.Val {
	switch v.kind {
	case KindBool:
		return types.Bool(v.n != 0)
	case KindInt:
		return types.Int(int64(v.n))
	case KindFloat:
		return types.Double(v.AsFloat())
	case KindString:
		return types.String(v.s)
	case KindBytes:
		return types.Bytes(v.s)
	}
	return types.NullValue
}

// fromCEL converts a scalar CEL result to a value.
func fromCEL(v ref.Val) (Value, error) {
	switch x := v.(type) {
	case types.Bool:
		return Bool(bool(x)), nil
	case types.Int:
		return Int(int64(x)), nil
	case types.Uint:
		return Int(int64(x)), nil
	case types.Double:
		return Float(float64(x)), nil
	case types.String:
		return String(string(x)), nil
	case types.Bytes:
		return Value{kind: KindBytes, s: string(x)}, nil
	case types.Null:
		return Null(), nil
	}
	return Value{}, fmt.Errorf("result of type %s cannot be a record field: want bool, int, double, string, bytes or null", v.Type().TypeName())
}

// listOf returns v as a list, for flat_map.
func listOf(v ref.Val) (traits.Lister, error) {
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("result is a %s, want a list", v.Type().TypeName())
	}
	return l, nil
}

const (
	typesListKind = types.ListKind
	typesMapKind  = types.MapKind
	typesDynKind  = types.DynKind
)

func isContainer(t *cel.Type) bool {
	k := t.Kind()
	return k == types.ListKind || k == types.MapKind || k == types.StructKind || k == types.OpaqueKind
}
