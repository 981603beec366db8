package dataflow

// Expr is a CEL expression compiled against an operator's input, for an operator registered
// from outside the package (the kafka sink's key): PlanContext.CompileExpr compiles it with
// the cost limits every built-in expression has, an Evaluator evaluates it.
type Expr struct{ e *celExpr }

// CompileExpr compiles src against the schema of input, within pipeline.expression.max-cost.
func (pc *PlanContext) CompileExpr(input int, src string) (*Expr, error) {
	e, err := pc.compileExpr(input, src)
	if err != nil {
		return nil, err
	}
	return &Expr{e: e}, nil
}

// Scalar says the expression's type is not a container (list, map, message): a value that
// fits one record field of a scalar kind.
func (x *Expr) Scalar() bool { return !isContainer(x.e.out) }

// Type is the expression's CEL type, for messages.
func (x *Expr) Type() string { return x.e.out.String() }

// Evaluator evaluates expressions on the records of one subtask; it is not safe for
// concurrent use (each subtask has its own).
type Evaluator struct{ act *activation }

// NewEvaluator evaluates on records of schema s; an evaluation under way stops when the
// task's context is cancelled.
func (rc *RuntimeContext) NewEvaluator(s Schema) *Evaluator {
	return &Evaluator{act: newActivation(rc.ctx, s)}
}

// Eval evaluates x on r to a record value.
func (ev *Evaluator) Eval(x *Expr, r Record) (Value, error) { return ev.act.evalValue(x.e, r) }
