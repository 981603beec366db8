package nexmarkbench

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// benchSpec rewrites a query spec for a measurement: every nexmark source
// generates exactly events events (over all its subtasks) and reads no file,
// whatever the spec's parameters say; every sink (an operator that reads an
// input and that no operator reads) becomes a blackhole, so what is measured
// is the query and not the writing of its results. It works on the YAML tree
// before parameter substitution, so it does not depend on how a spec names
// its parameters.
func benchSpec(spec []byte, events int64) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("want a job spec: a mapping with name, parameters and operators")
	}
	ops := mapValue(doc.Content[0], "operators")
	if ops == nil || ops.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("no operators list")
	}
	read := map[string]bool{}
	mark := func(in string) {
		read[in] = true
		// OPERATOR.TAG reads a side output of OPERATOR.
		if i := strings.LastIndexByte(in, '.'); i > 0 {
			read[in[:i]] = true
		}
	}
	for _, op := range ops.Content {
		if op.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: want an operator as a mapping", op.Line)
		}
		for _, key := range []string{"input", "left", "right"} {
			if v := mapValue(op, key); v != nil && v.Kind == yaml.ScalarNode {
				mark(v.Value)
			}
		}
		if v := mapValue(op, "inputs"); v != nil && v.Kind == yaml.SequenceNode {
			for _, in := range v.Content {
				mark(in.Value)
			}
		}
	}
	sources, sinks := 0, 0
	for i, op := range ops.Content {
		name, typ := scalar(op, "name"), scalar(op, "type")
		hasInput := mapValue(op, "input") != nil || mapValue(op, "inputs") != nil || mapValue(op, "left") != nil
		switch {
		case typ == "nexmark":
			sources++
			deleteKey(op, "path")
			setScalar(op, "events", strconv.FormatInt(events, 10))
		case hasInput && !read[name]:
			sinks++
			keep := &yaml.Node{Kind: yaml.MappingNode, Line: op.Line, Column: op.Column}
			for j := 0; j+1 < len(op.Content); j += 2 {
				switch op.Content[j].Value {
				case "name", "input", "parallelism":
					keep.Content = append(keep.Content, op.Content[j], op.Content[j+1])
				}
			}
			setScalar(keep, "type", "blackhole")
			ops.Content[i] = keep
		}
	}
	if sources == 0 {
		return nil, fmt.Errorf("no operator of type nexmark: the benchmark measures a query over the nexmark source")
	}
	if sinks == 0 {
		return nil, fmt.Errorf("no sink (an operator with an input that no operator reads)")
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("write the rewritten spec: %w", err)
	}
	return out, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(m *yaml.Node, key string) string {
	if v := mapValue(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func setScalar(m *yaml.Node, key, value string) {
	v := &yaml.Node{Kind: yaml.ScalarNode, Value: value}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}

func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}
