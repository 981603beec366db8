package dataflow

import (
	"context"
	"fmt"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/traits"
)

// TypeFlatMap emits one record per element of the list a CEL expression returns.
const TypeFlatMap = "flat_map"

func init() {
	Register(OperatorType{Name: TypeFlatMap, New: func() Definition { return new(FlatMapOptions) }})
}

// FlatMapOptions are the options of a flat_map: as names the field of scalar elements, fields
// lists the keys of map elements.
type FlatMapOptions struct {
	Expr   string   `yaml:"expr" want:"a CEL expression"`
	As     string   `yaml:"as" want:"a field name"`
	Fields []string `yaml:"fields" want:"a list of field names" elem:"a field name"`

	expr    *celExpr // after Plan
	mapped  bool     // after Plan: elements are maps (fields) rather than scalars (as)
	outSize int
}

// Check implements Definition.
func (f *FlatMapOptions) Check(op *OperatorSpec) (Shape, error) {
	if f.Expr == "" {
		return Shape{}, op.errf("expr", "missing required option")
	}
	if f.As == "" && len(f.Fields) == 0 {
		return Shape{}, op.errf("as", "missing required option: the field name for scalar elements (or list map keys in fields)")
	}
	return Shape{Inputs: 1}, nil
}

// Plan implements Definition.
func (f *FlatMapOptions) Plan(pc *PlanContext) (Schema, error) {
	o := pc.Op
	e, err := pc.compileExpr(0, f.Expr)
	if err != nil {
		return nil, o.errf("expr", "%v", err)
	}
	var elem Kind = KindAny
	mapElems := false
	switch e.out.Kind() {
	case typesListKind:
		et := e.out.Parameters()[0]
		elem = kindOf(et)
		mapElems = et.Kind() == typesMapKind
		if isContainer(et) && !mapElems {
			return nil, o.errf("expr", "CEL type error: %q is a list of %s: elements must be scalars or maps", f.Expr, et)
		}
	case typesDynKind:
	default:
		return nil, o.errf("expr", "CEL type error: flat_map expression %q is of type %s, want a list", f.Expr, e.out)
	}
	var schema Schema
	if len(f.Fields) > 0 {
		for _, name := range f.Fields {
			if err := CheckFieldName(o, "fields", name); err != nil {
				return nil, err
			}
			schema = append(schema, Field{Name: name, Kind: KindAny})
		}
	} else {
		if mapElems {
			return nil, o.errf("fields", "missing required option: the elements of %q are maps, list their keys", f.Expr)
		}
		if err := CheckFieldName(o, "as", f.As); err != nil {
			return nil, err
		}
		schema = Schema{{Name: f.As, Kind: elem}}
	}
	f.expr, f.mapped, f.outSize = e, len(f.Fields) > 0, len(schema)
	return schema, nil
}

// Access implements Definition.
func (f *FlatMapOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (f *FlatMapOptions) NewOperator() Operator {
	op := &flatMapOp{expr: f.expr, rec: make(Record, f.outSize)}
	if f.mapped {
		op.fields = f.Fields
	}
	return op
}

// flatMapOp emits one record per element of the list its expression returns.
type flatMapOp struct {
	expr   *celExpr
	act    *activation
	fields []string // set: elements are maps with these keys
	rec    Record
	el     Element
	out    Output
}

func (f *flatMapOp) Open(_ context.Context, rc *RuntimeContext) error {
	f.act, f.out = newActivation(rc.ctx, rc.in), rc.Output
	return nil
}

func (f *flatMapOp) Process(_ int, e *Element) error {
	v, err := f.act.eval(f.expr, e.Record)
	if err != nil {
		return err
	}
	l, err := listOf(v)
	if err != nil {
		return fmt.Errorf("%q: %w", f.expr.src, err)
	}
	n, ok := l.Size().(types.Int)
	if !ok {
		return fmt.Errorf("%q: list without size", f.expr.src)
	}
	f.el = *e
	f.el.Record = f.rec
	for i := types.Int(0); i < n; i++ {
		el := l.Get(i)
		if f.fields == nil {
			if f.rec[0], err = fromCEL(el); err != nil {
				return fmt.Errorf("%q element %d: %w", f.expr.src, i, err)
			}
		} else {
			m, ok := el.(traits.Mapper)
			if !ok {
				return fmt.Errorf("%q element %d is a %v, want a map with keys %v", f.expr.src, i, el.Type(), f.fields)
			}
			for j, k := range f.fields {
				fv, found := m.Find(types.String(k))
				if !found {
					f.rec[j] = Null()
					continue
				}
				if f.rec[j], err = fromCEL(fv); err != nil {
					return fmt.Errorf("%q element %d key %s: %w", f.expr.src, i, k, err)
				}
			}
		}
		if err := f.out.Collect(&f.el); err != nil {
			return err
		}
	}
	return nil
}

func (f *flatMapOp) Finish() error { return nil }
func (f *flatMapOp) Close() error  { return nil }
