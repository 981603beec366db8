package dataflow

import "slices"

// PlannedOperator is what the JobManager's checkpoint coordinator and the
// restore checks know of one operator of a plan.
type PlannedOperator struct {
	Name        string
	Type        string
	Index       int // in the spec: state files are named by it
	Vertex      int
	Parallelism int
	Keyed       bool // reads a hash edge: its state is keyed
	Source      bool
}

// Operators lists the plan's operators in spec order.
func (p *Plan) Operators() []PlannedOperator {
	out := make([]PlannedOperator, 0, len(p.ops))
	for _, o := range p.ops {
		out = append(out, PlannedOperator{
			Name: o.spec.Name, Type: o.spec.Type, Index: o.index, Vertex: o.vertex,
			Parallelism: o.parallelism, Keyed: o.shape.KeyedInput, Source: o.shape.Inputs == 0,
		})
	}
	slices.SortFunc(out, func(a, b PlannedOperator) int { return a.Index - b.Index })
	return out
}
