package dataflow

import (
	"math"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// A native expression evaluates the common shapes of filter and map expressions (fields,
// constants, comparisons, &&, ||, !, integer and double arithmetic, double()) in Go, without
// the CEL interpreter's activation, frames and boxing of every value, which cost several
// times the work of such an expression. It answers only where the answer cannot differ from
// CEL's: when a field is null or not of its schema's kind, an integer operation overflows or
// divides by zero, or a double is NaN where CEL refuses to order it, it reports false and the
// caller evaluates the expression with CEL, which gives the value or the error CEL gives.
type nativeExpr func(r Record) (Value, bool)

// compileNative compiles the checked expression and returns it with the kind of its
// value, or nil when it has a part that is not a native shape (then CEL evaluates every
// record).
func compileNative(s Schema, checked *cel.Ast) (nativeExpr, Kind) {
	return nativeOf(s, checked.NativeRep().Expr())
}

// nativeOf compiles e and returns it with the kind of its value.
func nativeOf(s Schema, e ast.Expr) (nativeExpr, Kind) {
	switch e.Kind() {
	case ast.LiteralKind:
		var v Value
		switch x := e.AsLiteral().(type) {
		case types.Int:
			v = Int(int64(x))
		case types.Double:
			v = Float(float64(x))
		case types.Bool:
			v = Bool(bool(x))
		case types.String:
			v = String(string(x))
		default:
			return nil, KindNull
		}
		return func(Record) (Value, bool) { return v, true }, v.kind
	case ast.IdentKind, ast.SelectKind:
		path, ok := selectPath(e)
		if !ok {
			return nil, KindNull
		}
		p, kind, err := s.Resolve(path)
		if err != nil {
			return nil, KindNull
		}
		switch kind {
		case KindInt, KindFloat, KindBool, KindString:
		default:
			return nil, KindNull
		}
		if !p.Nested() {
			i := p.idx[0]
			return func(r Record) (Value, bool) {
				if i >= len(r) || r[i].kind != kind {
					return Value{}, false
				}
				return r[i], true
			}, kind
		}
		return func(r Record) (Value, bool) {
			v := p.Get(r)
			return v, v.kind == kind
		}, kind
	case ast.CallKind:
		return nativeCall(s, e.AsCall())
	}
	return nil, KindNull
}

func nativeCall(s Schema, c ast.CallExpr) (nativeExpr, Kind) {
	if c.IsMemberFunction() {
		return nil, KindNull
	}
	args := c.Args()
	fn := c.FunctionName()
	if len(args) == 1 {
		a, ak := nativeOf(s, args[0])
		if a == nil {
			return nil, KindNull
		}
		switch {
		case fn == "!_" && ak == KindBool:
			return func(r Record) (Value, bool) {
				v, ok := a(r)
				return Bool(v.n == 0), ok
			}, KindBool
		case fn == "-_" && ak == KindInt:
			return func(r Record) (Value, bool) {
				v, ok := a(r)
				if !ok || int64(v.n) == math.MinInt64 {
					return Value{}, false
				}
				return Int(-int64(v.n)), true
			}, KindInt
		case fn == "-_" && ak == KindFloat:
			return func(r Record) (Value, bool) {
				v, ok := a(r)
				return Float(-v.AsFloat()), ok
			}, KindFloat
		case fn == "double" && ak == KindInt:
			return func(r Record) (Value, bool) {
				v, ok := a(r)
				return Float(float64(int64(v.n))), ok
			}, KindFloat
		case fn == "double" && ak == KindFloat:
			return a, KindFloat
		}
		return nil, KindNull
	}
	if len(args) != 2 {
		return nil, KindNull
	}
	a, ak := nativeOf(s, args[0])
	b, bk := nativeOf(s, args[1])
	if fn == "_&&_" || fn == "_||_" {
		return nativeLogic(fn, a, ak, b, bk)
	}
	if fn == "@in" {
		return nativeIn(a, ak, args[1])
	}
	if a == nil || b == nil || ak != bk {
		return nil, KindNull
	}
	switch fn {
	case "_==_", "_!=_":
		ne := fn == "_!=_"
		return func(r Record) (Value, bool) {
			x, ok := a(r)
			if !ok {
				return Value{}, false
			}
			y, ok := b(r)
			if !ok {
				return Value{}, false
			}
			var eq bool
			switch ak {
			case KindFloat:
				eq = x.AsFloat() == y.AsFloat() // NaN != NaN, -0 == 0, as CEL
			case KindString:
				eq = x.s == y.s
			default:
				eq = x.n == y.n
			}
			return Bool(eq != ne), true
		}, KindBool
	case "_<_", "_<=_", "_>_", "_>=_":
		if ak == KindBool {
			return nil, KindNull
		}
		return nativeOrder(fn, ak, a, b), KindBool
	case "_+_", "_-_", "_*_", "_/_", "_%_":
		switch ak {
		case KindInt:
			return nativeIntArith(fn, a, b), KindInt
		case KindFloat:
			if fn == "_%_" {
				return nil, KindNull
			}
			return nativeFloatArith(fn, a, b), KindFloat
		}
	}
	return nil, KindNull
}

// nativeLogic is && or ||. CEL gives the deciding value (false for &&, true for ||) of
// either side even when the other side is an error, so one native side decides the records
// it decides even when the other side is not native (`event_type == 0 && person.state in
// [...]`, on the many records that are not persons); an undecided record goes to CEL.
func nativeLogic(fn string, a nativeExpr, ak Kind, b nativeExpr, bk Kind) (nativeExpr, Kind) {
	if ak != KindBool {
		a = nil
	}
	if bk != KindBool {
		b = nil
	}
	if a == nil && b == nil {
		return nil, KindNull
	}
	stop := uint64(0)
	if fn == "_||_" {
		stop = 1
	}
	if a == nil || b == nil {
		one := a
		if one == nil {
			one = b
		}
		return func(r Record) (Value, bool) {
			x, ok := one(r)
			return x, ok && x.n == stop
		}, KindBool
	}
	return func(r Record) (Value, bool) {
		x, ok := a(r)
		if ok && x.n == stop {
			return x, true
		}
		y, ok2 := b(r)
		if ok2 && y.n == stop {
			return y, true
		}
		return y, ok && ok2
	}, KindBool
}

// nativeIn is `x in [c1, c2, ...]` with a list of constants of x's kind (not doubles, whose
// equality with NaN and -0 CEL defines).
func nativeIn(a nativeExpr, ak Kind, list ast.Expr) (nativeExpr, Kind) {
	if a == nil || (ak != KindInt && ak != KindString && ak != KindBool) || list.Kind() != ast.ListKind {
		return nil, KindNull
	}
	l := list.AsList()
	if len(l.OptionalIndices()) > 0 {
		return nil, KindNull
	}
	var consts []Value
	for _, el := range l.Elements() {
		if el.Kind() != ast.LiteralKind {
			return nil, KindNull
		}
		c, ck := nativeOf(nil, el)
		if c == nil || ck != ak {
			return nil, KindNull
		}
		v, _ := c(nil)
		consts = append(consts, v)
	}
	return func(r Record) (Value, bool) {
		x, ok := a(r)
		if !ok {
			return Value{}, false
		}
		for _, c := range consts {
			if (ak == KindString && c.s == x.s) || (ak != KindString && c.n == x.n) {
				return Bool(true), true
			}
		}
		return Bool(false), true
	}, KindBool
}

// nativeOrder compares two values of kind k; c gives the sign CEL's Compare gives.
func nativeOrder(fn string, k Kind, a, b nativeExpr) nativeExpr {
	want := map[string]func(c int) bool{
		"_<_": func(c int) bool { return c < 0 }, "_<=_": func(c int) bool { return c <= 0 },
		"_>_": func(c int) bool { return c > 0 }, "_>=_": func(c int) bool { return c >= 0 },
	}[fn]
	return func(r Record) (Value, bool) {
		x, ok := a(r)
		if !ok {
			return Value{}, false
		}
		y, ok := b(r)
		if !ok {
			return Value{}, false
		}
		var c int
		switch k {
		case KindInt:
			c = cmpOrdered(int64(x.n), int64(y.n))
		case KindFloat:
			f, g := x.AsFloat(), y.AsFloat()
			if math.IsNaN(f) || math.IsNaN(g) {
				return Value{}, false // CEL: NaN values cannot be ordered
			}
			c = cmpOrdered(f, g)
		case KindString:
			c = strings.Compare(x.s, y.s)
		}
		return Bool(want(c)), true
	}
}

func cmpOrdered[T int64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// nativeIntArith is CEL's int arithmetic: an overflow or a division by zero is CEL's error.
func nativeIntArith(fn string, a, b nativeExpr) nativeExpr {
	return func(r Record) (Value, bool) {
		x, ok := a(r)
		if !ok {
			return Value{}, false
		}
		y, ok := b(r)
		if !ok {
			return Value{}, false
		}
		i, j := int64(x.n), int64(y.n)
		var z int64
		switch fn {
		case "_+_":
			z = i + j
			if (z > i) != (j > 0) {
				return Value{}, false
			}
		case "_-_":
			z = i - j
			if (z < i) != (j > 0) {
				return Value{}, false
			}
		case "_*_":
			if i != 0 && j != 0 {
				z = i * j
				if (i == -1 && j == math.MinInt64) || (j == -1 && i == math.MinInt64) || z/j != i {
					return Value{}, false
				}
			}
		case "_/_", "_%_":
			if j == 0 || (i == math.MinInt64 && j == -1) {
				return Value{}, false
			}
			if fn == "_/_" {
				z = i / j
			} else {
				z = i % j
			}
		}
		return Int(z), true
	}
}

func nativeFloatArith(fn string, a, b nativeExpr) nativeExpr {
	return func(r Record) (Value, bool) {
		x, ok := a(r)
		if !ok {
			return Value{}, false
		}
		y, ok := b(r)
		if !ok {
			return Value{}, false
		}
		f, g := x.AsFloat(), y.AsFloat()
		var z float64
		switch fn {
		case "_+_":
			z = f + g
		case "_-_":
			z = f - g
		case "_*_":
			z = f * g
		case "_/_":
			z = f / g
		}
		return Float(z), true
	}
}
