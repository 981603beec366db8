package dataflow

import (
	"context"
	"fmt"

	"cel.dev/cel-go/common/types"
)

// TypeFilter keeps the records for which a CEL expression is true.
const TypeFilter = "filter"

func init() {
	Register(OperatorType{Name: TypeFilter, New: func() Definition { return new(FilterOptions) }})
}

// FilterOptions are the options of a filter.
type FilterOptions struct {
	Expr string `yaml:"expr" want:"a CEL expression"`

	expr *celExpr // after Plan
}

// Check implements Definition.
func (f *FilterOptions) Check(op *OperatorSpec) (Shape, error) {
	if f.Expr == "" {
		return Shape{}, op.errf("expr", "missing required option")
	}
	return Shape{Inputs: 1}, nil
}

// Plan implements Definition: the output is the input.
func (f *FilterOptions) Plan(pc *PlanContext) (Schema, error) {
	o := pc.Op
	e, err := pc.compileExpr(0, f.Expr)
	if err != nil {
		return nil, o.errf("expr", "%v", err)
	}
	if k := kindOf(e.out); k != KindBool && k != KindAny {
		return nil, o.errf("expr", "CEL type error: filter expression %q is of type %s, want bool", f.Expr, e.out)
	}
	f.expr = e
	return pc.Inputs[0], nil
}

// Access implements Definition.
func (f *FilterOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (f *FilterOptions) NewOperator() Operator { return &filterOp{expr: f.expr} }

// filterOp passes on the elements its expression is true for.
type filterOp struct {
	expr *celExpr
	act  *activation
	out  Output
}

func (f *filterOp) Open(_ context.Context, rc *RuntimeContext) error {
	f.act, f.out = newActivation(rc.ctx, rc.in), rc.Output
	return nil
}

func (f *filterOp) Process(_ int, e *Element) error {
	if f.expr.native != nil && f.expr.nativeKind == KindBool {
		if v, ok := f.expr.native(e.Record); ok {
			if v.n == 0 {
				return nil
			}
			return f.out.Collect(e)
		}
	}
	v, err := f.act.eval(f.expr, e.Record)
	if err != nil {
		return err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return fmt.Errorf("filter %q gave %v, want a bool", f.expr.src, v)
	}
	if !b {
		return nil
	}
	return f.out.Collect(e)
}

func (f *filterOp) Finish() error { return nil }
func (f *filterOp) Close() error  { return nil }
