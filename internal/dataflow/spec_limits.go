package dataflow

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// MaxSpecNodes bounds the YAML nodes of a job spec. A real job has a few hundred; the cap keeps
// a spec that is small in bytes but huge in nodes (a flow list of one-letter items) from
// costing the JobManager and every TaskManager memory and time in each pass over the tree.
const MaxSpecNodes = 100_000

// precheckSpecNodes refuses, before the YAML parser builds a tree, a spec that is bound to have
// too many nodes: the tree costs some 200 bytes a node, so counting after parsing would let a
// 1 MiB spec of one-letter list items cost 100 MB first. Every node but the first of a
// collection follows a line break or a comma, and every flow collection opens with a bracket,
// so counting those bounds the nodes from below within a factor of two (a key and its value
// share a line); comments and blank lines count too, which a real spec has few of.
func precheckSpecNodes(data []byte) error {
	n := 0
	for _, c := range data {
		if c == '\n' || c == ',' || c == '[' || c == '{' {
			n++
		}
	}
	if n > MaxSpecNodes {
		return fmt.Errorf("job spec has more than %d YAML nodes or lines: a job spec describes operators, not data; put data in an attached file or an input", MaxSpecNodes)
	}
	return nil
}

// checkSpecTree counts the nodes of a parsed spec and refuses anchors and aliases. An alias
// would make the tree a graph: every pass over it (parameter substitution, operator parsing)
// would visit a shared node once per reference, which is exponential for nested aliases (the
// "billion laughs"), and substitution would expand an already substituted value again.
func checkSpecTree(root *yaml.Node) error {
	n := 0
	stack := []*yaml.Node{root}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n++
		if n > MaxSpecNodes {
			return fmt.Errorf("job spec has more than %d YAML nodes (near line %d): a job spec describes operators, not data; put data in an attached file or an input", MaxSpecNodes, cur.Line)
		}
		if cur.Kind == yaml.AliasNode {
			return fmt.Errorf("job spec line %d: YAML alias *%s: aliases and anchors are not allowed in job specs; write the value out, or use a parameter", cur.Line, cur.Value)
		}
		if cur.Anchor != "" {
			return fmt.Errorf("job spec line %d: YAML anchor &%s: aliases and anchors are not allowed in job specs; write the value out, or use a parameter", cur.Line, cur.Anchor)
		}
		stack = append(stack, cur.Content...)
	}
	return nil
}
