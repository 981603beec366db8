package dataflow

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Spec is a parsed job specification, with parameters substituted. It is checked for shape
// (known types, required options) by ParseSpec; Plan checks the graph and compiles expressions.
type Spec struct {
	Name        string            `json:"name"`
	Parameters  map[string]string `json:"parameters,omitempty"` // effective values
	Parallelism int               `json:"parallelism,omitempty"`
	Operators   []*OperatorSpec   `json:"operators"`
	// Config is the job's own configuration (job-level keys such as
	// execution.checkpointing.interval), under what the submitter sets with
	// -D. The JobManager checks each key (config.Config.WithJobSettings).
	Config map[string]string `json:"config,omitempty"`
	// ConfigLine is the line of the config block, for errors.
	ConfigLine int `json:"-"`
}

// OperatorSpec is one operator of a job: the fields every operator has, and the options of
// its type, decoded into the type's own struct.
type OperatorSpec struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Input string `json:"input,omitempty"`
	// Inputs are the inputs of an operator taking two (a join), in order: `inputs: [A, B]`
	// or `left: A` and `right: B`. Empty for every other operator, which uses Input.
	Inputs      []string   `json:"inputs,omitempty"`
	Parallelism int        `json:"parallelism,omitempty"`
	Line        int        `json:"line,omitempty"` // in the YAML, for error messages
	Options     Definition `json:"options"`
	// EventTime is the `timestamp:` and `watermark:` options, which every source type and
	// the watermark operator take (eventtime.go); nil when the operator has neither.
	EventTime *EventTimeSpec `json:"eventTime,omitempty"`

	shape     Shape  // from Options.Check
	inputsKey string // "inputs", or "left" for left:/right:
}

// InputNames lists the operators whose output this one reads.
func (op *OperatorSpec) InputNames() []string {
	if len(op.Inputs) > 0 {
		return op.Inputs
	}
	if op.Input == "" {
		return nil
	}
	return []string{op.Input}
}

// inputOption is the spec key that named input i, for errors.
func (op *OperatorSpec) inputOption(i int) string {
	switch {
	case len(op.Inputs) == 0:
		return "input"
	case op.inputsKey == "inputs":
		return fmt.Sprintf("inputs[%d]", i)
	case i == 0:
		return "left"
	default:
		return "right"
	}
}

func knownTypes() string { return strings.Join(Types(), ", ") }

// ParseSpec parses a YAML job spec. params override the spec's parameter defaults.
func ParseSpec(data []byte, params map[string]string) (*Spec, error) {
	if err := precheckSpecNodes(data); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("job spec is not valid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("job spec is empty")
	}
	if err := checkSpecTree(&doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("job spec line %d: want a mapping with name, parameters and operators", root.Line)
	}
	s := &Spec{}
	// Parameters first: every other scalar may reference them.
	defaults := map[string]string{}
	if pn := mapGet(root, "parameters"); pn != nil {
		if pn.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("parameters (line %d): want a mapping of name: default", pn.Line)
		}
		for i := 0; i+1 < len(pn.Content); i += 2 {
			k, v := pn.Content[i], pn.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("parameters.%s (line %d): want a scalar default", k.Value, v.Line)
			}
			if !validParamName(k.Value) {
				return nil, fmt.Errorf("parameters.%s (line %d): bad name: use letters, digits, '_', '-' and '.'", k.Value, k.Line)
			}
			if v.Tag == "!!null" {
				continue // declared without a default: must be passed
			}
			defaults[k.Value] = v.Value
		}
	}
	values := mergeParams(defaults, params)
	used := map[string]bool{}
	budget := MaxParamExpansion
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value == "parameters" {
			continue
		}
		if err := substituteParams(v, values, used, &budget); err != nil {
			return nil, fmt.Errorf("%s: %w", k.Value, err)
		}
	}
	if err := checkUnknownParams(defaults, params, used); err != nil {
		return nil, err
	}
	s.Parameters = values

	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		var err error
		switch k.Value {
		case "name":
			err = decodeScalar(v, &s.Name, "a string")
		case "parallelism":
			err = decodeScalar(v, &s.Parallelism, "an integer")
			if err == nil && s.Parallelism < 1 {
				err = fmt.Errorf("line %d: must be at least 1", v.Line)
			}
		case "parameters":
		case "config":
			err = s.parseConfig(v)
			s.ConfigLine = k.Line
		case "operators":
			// Operator errors name the operator already.
			if err := s.parseOperators(v); err != nil {
				return nil, err
			}
		default:
			err = fmt.Errorf("line %d: unknown key: want name, parameters, parallelism, config or operators", k.Line)
		}
		if err != nil {
			return nil, fmt.Errorf("job spec %s: %w", k.Value, err)
		}
	}
	if s.Name == "" {
		return nil, errors.New("job spec: missing required \"name\"")
	}
	if len(s.Operators) == 0 {
		return nil, errors.New("job spec: no operators")
	}
	return s, nil
}

func (s *Spec) parseOperators(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: want a list of operators", n.Line)
	}
	seen := map[string]int{}
	for i, on := range n.Content {
		op, err := parseOperator(on, i)
		if err != nil {
			return err
		}
		if prev, dup := seen[op.Name]; dup {
			return fmt.Errorf("operator %q (line %d): duplicate name, first used on line %d", op.Name, op.Line, prev)
		}
		seen[op.Name] = op.Line
		s.Operators = append(s.Operators, op)
	}
	return nil
}

func parseOperator(n *yaml.Node, index int) (*OperatorSpec, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("operator #%d (line %d): want a mapping", index+1, n.Line)
	}
	op := &OperatorSpec{Line: n.Line}
	if v := mapGet(n, "name"); v != nil {
		if err := decodeScalar(v, &op.Name, "a string"); err != nil {
			return nil, fmt.Errorf("operator #%d name: %w", index+1, err)
		}
	}
	if op.Name == "" {
		return nil, fmt.Errorf("operator #%d (line %d): missing required \"name\"", index+1, n.Line)
	}
	if v := mapGet(n, "type"); v != nil {
		if err := decodeScalar(v, &op.Type, "a string"); err != nil {
			return nil, op.errf("type", "%v", err)
		}
	}
	if op.Type == "" {
		return nil, op.errf("type", "missing required option: one of %s", knownTypes())
	}
	t, ok := Lookup(op.Type)
	if !ok {
		return nil, op.errf("type", "unknown operator type %q: known types are %s", op.Type, knownTypes())
	}
	def := t.New()
	fields := optionFields(def)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch key := k.Value; key {
		case "name", "type":
		case "input":
			err = decodeScalar(v, &op.Input, "an operator name")
		case "inputs":
			err = op.parseInputs(v)
		case "left", "right":
			if _, isOpt := def.(leftRightOptions); isOpt {
				err = parseSide(op, key, v)
			} else {
				err = fmt.Errorf("line %d: %s names an input of an operator taking two (a join); a %s takes %s", k.Line, key, op.Type, "one: use input")
			}
		case "parallelism":
			err = decodeScalar(v, &op.Parallelism, "an integer")
			if err == nil && op.Parallelism < 1 {
				err = fmt.Errorf("line %d: must be at least 1", v.Line)
			}
		default:
			at := slices.IndexFunc(fields, func(f optionField) bool { return f.name == key })
			if po, ok := def.(PrefixedOptions); ok && at < 0 && strings.HasPrefix(key, po.OptionPrefix()) && len(key) > len(po.OptionPrefix()) {
				var val string
				if err = decodeScalar(v, &val, "a string"); err == nil {
					err = po.SetPrefixedOption(strings.TrimPrefix(key, po.OptionPrefix()), val)
				}
				break
			}
			if at < 0 && slices.Contains(eventTimeOptions, key) {
				// Common to all sources: checked against the shape after Check.
				err = parseEventTime(op, key, v)
				break
			}
			if at < 0 {
				want := slices.Clone(commonOptions)
				if _, ok := def.(leftRightOptions); ok {
					want = append(want, "inputs", "left", "right")
				}
				for _, f := range fields {
					want = append(want, f.name)
				}
				if po, ok := def.(PrefixedOptions); ok {
					want = append(want, po.OptionPrefix()+"*")
				}
				return nil, op.errf(key, "line %d: unknown option for type %s: want %s", k.Line, op.Type, listOrNone(want))
			}
			err = setOption(def, fields[at], v)
		}
		if err != nil {
			return nil, op.errf(k.Value, "%v", err)
		}
	}
	op.Options = def
	shape, err := def.Check(op)
	if err != nil {
		return nil, err
	}
	if err := checkEventTime(op, shape); err != nil {
		return nil, err
	}
	if err := checkInputs(op, shape); err != nil {
		return nil, err
	}
	if _, ok := def.(Partitioner); shape.Partitioner && (!ok || shape.Inputs != 1) {
		// A mistake in the type's code, not in the spec; said here rather than at run time.
		return nil, op.errf("type", "type %s declares itself a partitioner but is not a one-input dataflow.Partitioner", op.Type)
	}
	op.shape = shape
	return op, nil
}

// PrefixedOptions is implemented by the options of a type that takes options under a prefix
// besides its fields: a Kafka connector's `properties.*`, passed on to the client under
// Kafka's own names, as Flink's connector does.
type PrefixedOptions interface {
	OptionPrefix() string                       // "properties."
	SetPrefixedOption(name, value string) error // name without the prefix
}

// OptionWarner is implemented by the options of a type that accepts a spec it has doubts
// about (an unknown Kafka property): the JobManager shows the warnings at submit.
type OptionWarner interface {
	OptionWarnings(op *OperatorSpec) []string
}

// OptionWarnings lists the warnings of every operator's options (OptionWarner).
func (s *Spec) OptionWarnings() []string {
	var out []string
	for _, o := range s.Operators {
		if w, ok := o.Options.(OptionWarner); ok {
			out = append(out, w.OptionWarnings(o)...)
		}
	}
	return out
}

// leftRightOptions is implemented by the options of two-input types whose inputs the spec
// may name with left: and right: (the join).
type leftRightOptions interface{ leftRight() }

// parseInputs reads `inputs: [A, B]`.
func (op *OperatorSpec) parseInputs(v *yaml.Node) error {
	if v.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: want a list of operator names, e.g. [left-op, right-op]", v.Line)
	}
	if op.inputsKey == "left" {
		return fmt.Errorf("line %d: give either inputs or left and right, not both", v.Line)
	}
	op.inputsKey = "inputs"
	for _, n := range v.Content {
		var name string
		if err := decodeScalar(n, &name, "an operator name"); err != nil {
			return err
		}
		op.Inputs = append(op.Inputs, name)
	}
	return nil
}

// parseSide reads `left: A` or `right: B`.
func parseSide(op *OperatorSpec, key string, v *yaml.Node) error {
	if op.inputsKey == "inputs" {
		return fmt.Errorf("line %d: give either inputs or left and right, not both", v.Line)
	}
	var name string
	if err := decodeScalar(v, &name, "an operator name"); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("line %d: want an operator name", v.Line)
	}
	op.inputsKey = "left"
	for len(op.Inputs) < 2 {
		op.Inputs = append(op.Inputs, "")
	}
	if key == "left" {
		op.Inputs[0] = name
	} else {
		op.Inputs[1] = name
	}
	return nil
}

// checkInputs checks the inputs the spec names against the number the type takes.
func checkInputs(op *OperatorSpec, shape Shape) error {
	switch {
	case shape.Inputs == 0 && (op.Input != "" || len(op.Inputs) > 0):
		return op.errf("input", "a %s source takes no input", op.Type)
	case shape.Inputs == 1 && len(op.Inputs) > 0:
		return op.errf(op.inputsKey, "a %s takes one input: name it with input", op.Type)
	case shape.Inputs == 1 && op.Input == "":
		return op.errf("input", "missing required option: the name of the upstream operator")
	case shape.Inputs == 2 && op.Input != "":
		return op.errf("input", "a %s takes two inputs: name them with left and right (or inputs: [left, right]), not input", op.Type)
	case shape.Inputs == 2 && op.inputsKey == "left" && op.Inputs[0] == "":
		return op.errf("left", "missing required option: a %s takes two inputs, and right: %s names only one: name the other with left", op.Type, op.Inputs[1])
	case shape.Inputs == 2 && op.inputsKey == "left" && op.Inputs[1] == "":
		return op.errf("right", "missing required option: a %s takes two inputs, and left: %s names only one: name the other with right", op.Type, op.Inputs[0])
	case shape.Inputs == 2 && len(op.Inputs) != 2:
		return op.errf("inputs", "a %s takes two inputs: name them with left and right (or inputs: [left, right]); got %d", op.Type, len(op.Inputs))
	case shape.Inputs > 2:
		return op.errf("type", "type %s takes %d inputs: at most two are supported", op.Type, shape.Inputs)
	}
	return nil
}

// Errorf returns an error about option opt of the operator, worded like every other: a
// registered type's Check and Plan use it so its messages name what to fix the same way.
func (op *OperatorSpec) Errorf(opt, format string, args ...any) error {
	return op.errf(opt, format, args...)
}

// errf names the operator and option, so the user knows exactly what to fix.
func (op *OperatorSpec) errf(opt, format string, args ...any) error {
	return fmt.Errorf("operator %q (line %d) %s: %s", op.Name, op.Line, opt, fmt.Sprintf(format, args...))
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// decodeScalar decodes one scalar node with a message naming what was wanted.
func decodeScalar(n *yaml.Node, dst any, want string) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want %s", n.Line, want)
	}
	if err := n.Decode(dst); err != nil {
		return fmt.Errorf("line %d: want %s, got %q", n.Line, want, n.Value)
	}
	return nil
}

// Resources lists what the job reads and writes ("file:PATH", "socket:HOST:PORT"), so an
// authorizer can decide on a submission before anything runs.
func (s *Spec) Resources() (reads, writes []string) {
	for _, o := range s.Operators {
		for _, a := range o.Options.Access(o) {
			if a.Write {
				writes = append(writes, a.Resource())
			} else {
				reads = append(reads, a.Resource())
			}
		}
	}
	return reads, writes
}

// parseConfig reads the spec's config block: a mapping of configuration keys
// to scalar values. Which keys a job may set is checked by the JobManager.
func (s *Spec) parseConfig(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of configuration key: value", n.Line)
	}
	s.Config = map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("config.%s (line %d): want a scalar value", k.Value, v.Line)
		}
		if _, dup := s.Config[k.Value]; dup {
			return fmt.Errorf("config.%s (line %d): set twice", k.Value, k.Line)
		}
		s.Config[k.Value] = v.Value
	}
	return nil
}
