package dataflow

import (
	"context"
	"fmt"
	"strings"
)

// TypeKeyBy partitions its input by key: it is never a task, but makes the edges to its
// consumers hash edges, and keyed operators read through it.
const TypeKeyBy = "key_by"

func init() {
	Register(OperatorType{Name: TypeKeyBy, New: func() Definition { return new(KeyByOptions) }})
}

// KeyByOptions are the options of a key_by: a field name, or a CEL expression.
type KeyByOptions struct {
	By string `yaml:"key" want:"a field name or CEL expression"`

	// After Plan.
	name   string
	schema Schema
	field  bool      // the key is a field (possibly nested), not an expression
	path   FieldPath // when it is a field
	expr   *celExpr  // when the key is an expression
	info   KeyInfo
}

var _ Partitioner = (*KeyByOptions)(nil)

// Check implements Definition.
func (k *KeyByOptions) Check(op *OperatorSpec) (Shape, error) {
	if k.By == "" {
		return Shape{}, op.errf("key", "missing required option")
	}
	return Shape{Inputs: 1, Partitioner: true}, nil
}

// Plan implements Definition: the output is the input.
func (k *KeyByOptions) Plan(pc *PlanContext) (Schema, error) {
	o, in := pc.Op, pc.Inputs[0]
	k.name, k.schema, k.field, k.expr = o.Name, in, false, nil
	if isFieldPath(k.By) {
		p, kind, err := in.Resolve(k.By)
		if err != nil && in.Index(k.By) < 0 && !strings.Contains(k.By, ".") {
			return nil, o.errf("key", "unknown field %q: input %q has fields %s", k.By, o.Input, listOrNone(in.Names()))
		}
		if err != nil {
			return nil, o.errf("key", "%v (input %q)", err, o.Input)
		}
		if kind == KindStruct {
			return nil, o.errf("key", "%q is a nested object: key by one of its fields", k.By)
		}
		k.field, k.path = true, p
		// A nested key is named by its last part, as the field of an aggregate's output.
		k.info = KeyInfo{Name: p.Name(), Kind: kind, Expr: k.By}
		return in, nil
	}
	e, err := pc.compileExpr(0, k.By)
	if err != nil {
		return nil, o.errf("key", "%v", err)
	}
	if isContainer(e.out) {
		return nil, o.errf("key", "CEL type error: key %q is of type %s, want a scalar", k.By, e.out)
	}
	k.expr = e
	k.info = KeyInfo{Name: "key", Kind: kindOf(e.out), Expr: k.By}
	return in, nil
}

// Access implements Definition.
func (k *KeyByOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition. The planner never makes a key_by a task: its consumers
// take its key through NewKeySelector.
func (k *KeyByOptions) NewOperator() Operator { return keyByOp{} }

// keyByOp refuses to run: a key_by shapes the edges to its consumers and is never chained.
type keyByOp struct{ NoInput }

func (keyByOp) Open(_ context.Context, rc *RuntimeContext) error {
	return opErr(rc.Operator, fmt.Errorf("a %s is not a task: its consumers read through it", TypeKeyBy))
}
func (keyByOp) Finish() error { return nil }
func (keyByOp) Close() error  { return nil }

// Key implements Partitioner. Expr is known from the spec alone.
func (k *KeyByOptions) Key() KeyInfo {
	info := k.info
	info.Expr = k.By
	return info
}

// NewKeySelector implements Partitioner.
func (k *KeyByOptions) NewKeySelector(ctx context.Context) KeySelector {
	f := &keyFunc{field: k.field, path: k.path, expr: k.expr, name: k.name}
	if k.expr != nil {
		f.act = newActivation(ctx, k.schema)
	}
	return f
}

// keyFunc extracts the key of a key_by from a record of its input.
type keyFunc struct {
	field bool
	path  FieldPath
	expr  *celExpr
	act   *activation
	name  string
}

// Key implements KeySelector.
func (k *keyFunc) Key(r Record) (Value, error) {
	if k.field {
		return k.path.Get(r), nil
	}
	v, err := k.act.evalValue(k.expr, r)
	if err != nil {
		return Value{}, opErr(k.name, err)
	}
	return v, nil
}
