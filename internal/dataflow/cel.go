package dataflow

import (
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
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
	)
})

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

// celExpr is one compiled expression. The program is safe for concurrent use, so subtasks of a
// vertex share it; each subtask has its own activation.
type celExpr struct {
	src  string
	out  *cel.Type
	prog cel.Program
}

// compileExpr parses, type-checks and plans src against the schema. Syntax and type errors are
// told apart because they call for different fixes.
func compileExpr(s Schema, src string) (*celExpr, error) {
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
	prog, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("CEL program %q: %w", src, err)
	}
	return &celExpr{src: src, out: checked.OutputType(), prog: prog}, nil
}

// activation exposes the current record's fields to CEL without building a map per record.
type activation struct {
	names map[string]int
	rec   Record
}

var _ interpreter.Activation = (*activation)(nil)

func newActivation(s Schema) *activation {
	a := &activation{names: make(map[string]int, len(s))}
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
	return toCEL(a.rec[i]), true
}

func (a *activation) Parent() interpreter.Activation { return nil }

// eval evaluates e on r.
func (a *activation) eval(e *celExpr, r Record) (ref.Val, error) {
	a.rec = r
	out, _, err := e.prog.Eval(a)
	a.rec = nil
	if err != nil {
		return nil, fmt.Errorf("evaluate %q: %w", e.src, err)
	}
	return out, nil
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
