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
}

// NamedExpr is one output field of a map operator.
type NamedExpr struct {
	Name string `json:"name"`
	Expr string `json:"expr"`
}

// OperatorSpec is one operator of a job. Only the options of its type are set.
type OperatorSpec struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Input       string `json:"input,omitempty"`
	Parallelism int    `json:"parallelism,omitempty"`
	Line        int    `json:"line,omitempty"` // in the YAML, for error messages

	// generator
	Count int64   `json:"count,omitempty"`
	Rate  float64 `json:"rate,omitempty"`
	Keys  int64   `json:"keys,omitempty"`
	// file, socket, print
	Path   string   `json:"path,omitempty"`
	Format string   `json:"format,omitempty"`
	Fields []string `json:"fields,omitempty"` // file source columns; flat_map map-element keys
	Header *bool    `json:"header,omitempty"` // csv source: first line is a header
	Host   string   `json:"host,omitempty"`
	Port   int      `json:"port,omitempty"`
	// filter, map, flat_map
	Expr  string      `json:"expr,omitempty"`
	As    string      `json:"as,omitempty"`
	Exprs []NamedExpr `json:"exprs,omitempty"` // map: ordered output fields
	// key_by
	Key string `json:"key,omitempty"`
	// aggregate
	Function string `json:"function,omitempty"`
	Field    string `json:"field,omitempty"`
}

// Operator types.
const (
	TypeGenerator = "generator"
	TypeFile      = "file"
	TypeSocket    = "socket"
	TypeFilter    = "filter"
	TypeMap       = "map"
	TypeFlatMap   = "flat_map"
	TypeKeyBy     = "key_by"
	TypeAggregate = "aggregate"
	TypePrint     = "print"
	TypeBlackhole = "blackhole"
)

// options lists the type-specific options each type accepts, so a misspelt option is refused
// rather than silently ignored. "file" is a source without input and a sink with one.
var options = map[string][]string{
	TypeGenerator: {"count", "rate", "keys"},
	TypeFile:      {"path", "format", "fields", "header"},
	TypeSocket:    {"host", "port", "format"},
	TypeFilter:    {"expr"},
	TypeMap:       {"fields", "expr", "as"},
	TypeFlatMap:   {"expr", "as", "fields"},
	TypeKeyBy:     {"key"},
	TypeAggregate: {"function", "field", "as"},
	TypePrint:     {"path"},
	TypeBlackhole: {},
}

func knownTypes() string {
	t := make([]string, 0, len(options))
	for k := range options {
		t = append(t, k)
	}
	slices.Sort(t)
	return strings.Join(t, ", ")
}

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
		case "operators":
			// Operator errors name the operator already.
			if err := s.parseOperators(v); err != nil {
				return nil, err
			}
		default:
			err = fmt.Errorf("line %d: unknown key: want name, parameters, parallelism or operators", k.Line)
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
	allowed, ok := options[op.Type]
	if !ok {
		return nil, op.errf("type", "unknown operator type %q: known types are %s", op.Type, knownTypes())
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch key := k.Value; key {
		case "name", "type":
		case "input":
			err = decodeScalar(v, &op.Input, "an operator name")
		case "parallelism":
			err = decodeScalar(v, &op.Parallelism, "an integer")
			if err == nil && op.Parallelism < 1 {
				err = fmt.Errorf("line %d: must be at least 1", v.Line)
			}
		default:
			if !slices.Contains(allowed, key) {
				return nil, op.errf(key, "line %d: unknown option for type %s: want %s", k.Line, op.Type,
					listOrNone(append([]string{"name", "type", "input", "parallelism"}, allowed...)))
			}
			err = op.setOption(key, v)
		}
		if err != nil {
			return nil, op.errf(k.Value, "%v", err)
		}
	}
	return op, op.check()
}

func (op *OperatorSpec) setOption(key string, v *yaml.Node) error {
	switch key {
	case "count":
		return decodeScalar(v, &op.Count, "an integer")
	case "rate":
		return decodeScalar(v, &op.Rate, "a number")
	case "keys":
		return decodeScalar(v, &op.Keys, "an integer")
	case "path":
		return decodeScalar(v, &op.Path, "a string")
	case "format":
		return decodeScalar(v, &op.Format, "a string")
	case "host":
		return decodeScalar(v, &op.Host, "a string")
	case "port":
		return decodeScalar(v, &op.Port, "an integer")
	case "header":
		var b bool
		if err := decodeScalar(v, &b, "true or false"); err != nil {
			return err
		}
		op.Header = &b
	case "expr":
		return decodeScalar(v, &op.Expr, "a CEL expression")
	case "as":
		return decodeScalar(v, &op.As, "a field name")
	case "key":
		return decodeScalar(v, &op.Key, "a field name or CEL expression")
	case "function":
		return decodeScalar(v, &op.Function, "a string")
	case "field":
		return decodeScalar(v, &op.Field, "a field name")
	case "fields":
		switch {
		case v.Kind == yaml.MappingNode && op.Type == TypeMap:
			// yaml.Node keeps the order the user wrote, which becomes the field order.
			for i := 0; i+1 < len(v.Content); i += 2 {
				var e NamedExpr
				e.Name = v.Content[i].Value
				if err := decodeScalar(v.Content[i+1], &e.Expr, "a CEL expression"); err != nil {
					return fmt.Errorf("%s: %w", e.Name, err)
				}
				op.Exprs = append(op.Exprs, e)
			}
		case v.Kind == yaml.SequenceNode && op.Type != TypeMap:
			for _, c := range v.Content {
				var f string
				if err := decodeScalar(c, &f, "a field name"); err != nil {
					return err
				}
				op.Fields = append(op.Fields, f)
			}
		case op.Type == TypeMap:
			return fmt.Errorf("line %d: want a mapping of output field: CEL expression", v.Line)
		default:
			return fmt.Errorf("line %d: want a list of field names", v.Line)
		}
	}
	return nil
}

// check enforces required options and value ranges that need no other operator.
func (op *OperatorSpec) check() error {
	req := func(opt, val string) error {
		if val == "" {
			return op.errf(opt, "missing required option")
		}
		return nil
	}
	switch op.Type {
	case TypeGenerator:
		if op.Count < 0 {
			return op.errf("count", "must be >= 0 (0 = unbounded)")
		}
		if op.Rate < 0 {
			return op.errf("rate", "must be >= 0 (0 = unlimited)")
		}
		if op.Keys < 0 {
			return op.errf("keys", "must be >= 1")
		}
		if op.Keys == 0 {
			op.Keys = 10
		}
	case TypeFile:
		if op.Input == "" {
			if err := req("path", op.Path); err != nil {
				return err
			}
		} else {
			if op.Path == "" {
				return op.errf("path", "missing required option: the output directory")
			}
			if len(op.Fields) > 0 || op.Header != nil {
				return op.errf("fields", "only for file sources")
			}
		}
		if op.Format == "" {
			op.Format = "text"
		}
		if op.Format != "text" && op.Format != "json" && op.Format != "csv" {
			return op.errf("format", "unknown format %q: want text, json or csv", op.Format)
		}
		if op.Input == "" && op.Format == "json" && len(op.Fields) == 0 {
			return op.errf("fields", "missing required option: list the JSON keys to read")
		}
	case TypeSocket:
		if err := req("host", op.Host); err != nil {
			return err
		}
		if op.Port <= 0 || op.Port > 65535 {
			return op.errf("port", "missing required option or out of range: want 1-65535")
		}
		if op.Format != "" && op.Format != "text" {
			return op.errf("format", "unknown format %q: sockets read text lines", op.Format)
		}
		op.Format = "text"
		op.Parallelism = 1 // one connection: a second reader would see a second stream
	case TypeFilter, TypeFlatMap:
		if err := req("expr", op.Expr); err != nil {
			return err
		}
		if op.Type == TypeFlatMap && op.As == "" && len(op.Fields) == 0 {
			return op.errf("as", "missing required option: the field name for scalar elements (or list map keys in fields)")
		}
	case TypeMap:
		switch {
		case len(op.Exprs) > 0 && op.Expr != "":
			return op.errf("expr", "give either fields or expr + as, not both")
		case len(op.Exprs) == 0 && op.Expr == "":
			return op.errf("fields", "missing required option: a mapping of output field: CEL expression (or expr + as)")
		case op.Expr != "" && op.As == "":
			return op.errf("as", "missing required option: the output field name for expr")
		case op.Expr != "":
			op.Exprs = []NamedExpr{{Name: op.As, Expr: op.Expr}}
		}
	case TypeKeyBy:
		if err := req("key", op.Key); err != nil {
			return err
		}
	case TypeAggregate:
		switch op.Function {
		case "":
			return op.errf("function", "missing required option: one of count, sum, min, max, avg")
		case "count":
			if op.Field != "" {
				return op.errf("field", "count takes no field")
			}
		case "sum", "min", "max", "avg":
			if err := req("field", op.Field); err != nil {
				return err
			}
		default:
			return op.errf("function", "unknown function %q: want count, sum, min, max or avg", op.Function)
		}
		if op.As == "" {
			op.As = op.Function
		}
	}
	if isSource(op) && op.Input != "" {
		return op.errf("input", "a %s source takes no input", op.Type)
	}
	if !isSource(op) && op.Input == "" {
		return op.errf("input", "missing required option: the name of the upstream operator")
	}
	return nil
}

func isSource(op *OperatorSpec) bool {
	return op.Type == TypeGenerator || op.Type == TypeSocket || (op.Type == TypeFile && op.Input == "")
}

func isSink(op *OperatorSpec) bool {
	return op.Type == TypePrint || op.Type == TypeBlackhole || (op.Type == TypeFile && op.Input != "")
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
		switch {
		case o.Type == TypeSocket:
			reads = append(reads, fmt.Sprintf("socket:%s:%d", o.Host, o.Port))
		case o.Type == TypeFile && o.Input == "":
			reads = append(reads, "file:"+o.Path)
		case o.Type == TypeFile, o.Type == TypePrint && o.Path != "":
			writes = append(writes, "file:"+o.Path)
		}
	}
	return reads, writes
}
