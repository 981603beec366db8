package dataflow

import (
	"slices"
	"strings"
)

// Side outputs (docs/architecture.md, "Engine", §11): an operator emits records besides its
// main output to a named side output (RuntimeContext.SideOutput), and a downstream operator
// reads one with `input: OPERATOR.TAG` (a window's late records: `late-output: late`, read
// as `input: counts.late`). A side output is never chained: its records go on an edge of
// their own (Edge.SideOf, Edge.Tag), forward or rebalanced like any non-keyed edge, and it
// carries the task's watermarks, barriers and end of data like every edge.

// SideOutputs is implemented by a Definition whose operator emits side outputs.
type SideOutputs interface {
	// SideOutputTags names the side outputs, valid after Check.
	SideOutputTags() []string
	// SideOutputSchema is the schema of the records of side output tag, valid after Plan.
	SideOutputSchema(tag string) Schema
}

// sideInput resolves `input: OPERATOR.TAG`: the operator and the tag of its side output.
func sideInput(s *Spec, ops map[string]*opInfo, o *OperatorSpec) (*opInfo, string, error) {
	name, tag, ok := cutLast(o.Input, ".")
	in := ops[name]
	if !ok || in == nil {
		return nil, "", o.errf("input", "unknown operator %q: known operators are %s (a side output is read as OPERATOR.NAME)", o.Input, strings.Join(opNames(s), ", "))
	}
	so, _ := in.def.(SideOutputs)
	var tags []string
	if so != nil {
		tags = so.SideOutputTags()
	}
	if !slices.Contains(tags, tag) {
		if len(tags) == 0 {
			return nil, "", o.errf("input", "operator %q (%s) has no side output %q: it has none (a window declares one with late-output: NAME)", name, in.spec.Type, tag)
		}
		return nil, "", o.errf("input", "operator %q has no side output %q: its side outputs are %s", name, tag, strings.Join(tags, ", "))
	}
	return in, tag, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// SideOutput is where the operator emits the records of its side output tag. Records of a
// side output no operator reads are dropped, as in Flink.
func (rc *RuntimeContext) SideOutput(tag string) Output {
	if rc.side == nil {
		return discardOutput{}
	}
	return rc.side(tag)
}

type discardOutput struct{}

func (discardOutput) Collect(*Element) error { return nil }

// sideOutput writes one side output of one operator to its edges.
type sideOutput struct {
	o     *output
	edges []*edgeOutput
}

func (s *sideOutput) Collect(e *Element) error {
	if err := s.o.writeTo(s.edges, e.Record, e.Timestamp); err != nil {
		return &downstreamError{err}
	}
	return nil
}

// side is the Output of operator op's side output tag in this task.
func (o *output) side(op, tag string) Output {
	var edges []*edgeOutput
	for _, eo := range o.edges {
		if eo.edge.SideOf == op && eo.edge.Tag == tag {
			edges = append(edges, eo)
		}
	}
	if len(edges) == 0 {
		return discardOutput{}
	}
	return &sideOutput{o: o, edges: edges}
}
