package dataflow

import (
	"context"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// TypeMap computes a record of new fields, one CEL expression each.
const TypeMap = "map"

func init() {
	Register(OperatorType{Name: TypeMap, New: func() Definition { return new(MapOptions) }})
}

// NamedExpr is one output field of a map operator.
type NamedExpr struct {
	Name string `json:"name"`
	Expr string `json:"expr"`
}

// MapFields is the ordered mapping of output field to CEL expression of a map operator.
type MapFields []NamedExpr

// UnmarshalYAML keeps the order the user wrote, which becomes the field order.
func (m *MapFields) UnmarshalYAML(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of output field: CEL expression", v.Line)
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		var e NamedExpr
		e.Name = v.Content[i].Value
		if err := decodeScalar(v.Content[i+1], &e.Expr, "a CEL expression"); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		*m = append(*m, e)
	}
	return nil
}

// MapOptions are the options of a map: fields, or expr and as for a single field.
type MapOptions struct {
	Fields MapFields `yaml:"fields"`
	Expr   string    `yaml:"expr" want:"a CEL expression"`
	As     string    `yaml:"as" want:"a field name"`

	out   []NamedExpr // from Check: fields, or expr as the one field as
	exprs []*celExpr  // after Plan; nil where the field is a path
	paths []FieldPath // after Plan: a field (possibly nested) copied as it is
}

// Check implements Definition.
func (m *MapOptions) Check(op *OperatorSpec) (Shape, error) {
	switch {
	case len(m.Fields) > 0 && m.Expr != "":
		return Shape{}, op.errf("expr", "give either fields or expr + as, not both")
	case len(m.Fields) == 0 && m.Expr == "":
		return Shape{}, op.errf("fields", "missing required option: a mapping of output field: CEL expression (or expr + as)")
	case m.Expr != "" && m.As == "":
		return Shape{}, op.errf("as", "missing required option: the output field name for expr")
	case m.Expr != "":
		m.out = []NamedExpr{{Name: m.As, Expr: m.Expr}}
	default:
		m.out = m.Fields
	}
	return Shape{Inputs: 1}, nil
}

// Plan implements Definition.
func (m *MapOptions) Plan(pc *PlanContext) (Schema, error) {
	o := pc.Op
	seen := map[string]bool{}
	var schema Schema
	var exprs []*celExpr
	var paths []FieldPath
	for _, ne := range m.out {
		if err := CheckFieldName(o, "fields."+ne.Name, ne.Name); err != nil {
			return nil, err
		}
		if seen[ne.Name] {
			return nil, o.errf("fields."+ne.Name, "duplicate output field")
		}
		seen[ne.Name] = true
		// A field or a path to one is copied without evaluating anything, and may be a
		// nested object, which an expression's result cannot be.
		if isFieldPath(ne.Expr) {
			if p, kind, err := pc.Inputs[0].Resolve(ne.Expr); err == nil {
				f := Field{Name: ne.Name, Kind: kind}
				if kind == KindStruct {
					f.Fields = resolveFields(pc.Inputs[0], ne.Expr)
				}
				exprs, paths = append(exprs, nil), append(paths, p)
				schema = append(schema, f)
				continue
			}
		}
		e, err := pc.compileExpr(0, ne.Expr)
		if err != nil {
			return nil, o.errf("fields."+ne.Name, "%v", err)
		}
		if isContainer(e.out) {
			return nil, o.errf("fields."+ne.Name, "CEL type error: %q is of type %s: a field must be a scalar", ne.Expr, e.out)
		}
		exprs, paths = append(exprs, e), append(paths, FieldPath{})
		schema = append(schema, Field{Name: ne.Name, Kind: kindOf(e.out)})
	}
	m.exprs, m.paths = exprs, paths
	return schema, nil
}

// Access implements Definition.
func (m *MapOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (m *MapOptions) NewOperator() Operator {
	return &mapOp{exprs: m.exprs, paths: m.paths, rec: make(Record, len(m.exprs))}
}

// mapOp emits one record of its expressions' values per element.
type mapOp struct {
	exprs []*celExpr
	paths []FieldPath
	act   *activation
	rec   Record
	el    Element
	out   Output
}

func (m *mapOp) Open(_ context.Context, rc *RuntimeContext) error {
	m.act, m.out = newActivation(rc.ctx, rc.in), rc.Output
	return nil
}

func (m *mapOp) Process(_ int, e *Element) error {
	for i, x := range m.exprs {
		if x == nil {
			m.rec[i] = m.paths[i].Get(e.Record)
			continue
		}
		v, err := m.act.evalValue(x, e.Record)
		if err != nil {
			return err
		}
		m.rec[i] = v
	}
	m.el = *e
	m.el.Record = m.rec
	return m.out.Collect(&m.el)
}

func (m *mapOp) Finish() error { return nil }
func (m *mapOp) Close() error  { return nil }
