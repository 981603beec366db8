package dataflow

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// pathRE matches a field path: identifiers separated by dots ("bid.price").
var pathRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// isFieldPath reports whether s names a field (possibly nested) rather than being a CEL
// expression; a reserved word as a name is an expression.
func isFieldPath(s string) bool {
	if !pathRE.MatchString(s) {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if slices.Contains(celReserved, part) {
			return false
		}
	}
	return true
}

// FieldPath reaches one field of a record, possibly nested in struct fields ("bid.price").
// The zero FieldPath reaches nothing; Schema.Resolve makes valid ones.
type FieldPath struct {
	path string
	idx  []int // field index at each level
}

// Resolve finds the field named by path, dot-separated names from the record down through
// nested structs, and returns how to reach it and its kind. The error names the part of the
// path that is unknown and the fields there, for messages that say what to write instead.
func (s Schema) Resolve(path string) (FieldPath, Kind, error) {
	if path == "" {
		return FieldPath{}, KindNull, fmt.Errorf("empty field path")
	}
	p := FieldPath{path: path}
	cur := s
	var kind Kind
	parts := strings.Split(path, ".")
	for i, name := range parts {
		if cur == nil && i > 0 {
			return FieldPath{}, KindNull, fmt.Errorf("unknown field %q: %s is %s, not a nested object", path, strings.Join(parts[:i], "."), kind)
		}
		j := cur.Index(name)
		if j < 0 {
			where := "input has fields "
			if i > 0 {
				where = strings.Join(parts[:i], ".") + " has fields "
			}
			return FieldPath{}, KindNull, fmt.Errorf("unknown field %q: %s%s", path, where, listOrNone(cur.Names()))
		}
		p.idx = append(p.idx, j)
		kind = cur[j].Kind
		if kind == KindStruct {
			cur = cur[j].Fields
		} else {
			cur = nil
		}
	}
	return p, kind, nil
}

// resolveFields returns the fields of the nested object at path, which Resolve found.
func resolveFields(s Schema, path string) Schema {
	cur := s
	var f Field
	for _, name := range strings.Split(path, ".") {
		f = cur[cur.Index(name)]
		cur = f.Fields
	}
	return f.Fields
}

// Get returns the field of r; null when a struct on the way is null. The value aliases r.
func (p FieldPath) Get(r Record) Value {
	if len(p.idx) == 0 || p.idx[0] >= len(r) {
		return Value{}
	}
	v := r[p.idx[0]]
	for _, j := range p.idx[1:] {
		v = v.Field(j)
	}
	return v
}

// Nested reports whether the path goes into a struct field.
func (p FieldPath) Nested() bool { return len(p.idx) > 1 }

// Name is the last name of the path: the name an output field of its value gets.
func (p FieldPath) Name() string {
	return p.path[strings.LastIndexByte(p.path, '.')+1:]
}

// String returns the path as written.
func (p FieldPath) String() string { return p.path }

// celObjectType is how CEL sees a nested object: a map from field name to value, so that
// `bid.price` and `has(bid.price)` work; checkSelects refuses names the schema lacks.
var celObjectType = cel.MapType(cel.StringType, cel.DynType)

// celStruct presents a struct value to CEL without decoding fields it is not asked for.
// A null nested object reads as an object whose fields are all null, as in SQL.
type celStruct struct {
	fields Schema
	s      string // the encoded record; "" for a null object
}

var (
	_ ref.Val       = (*celStruct)(nil)
	_ traits.Mapper = (*celStruct)(nil)
)

func newCELStruct(fields Schema, v Value) *celStruct {
	if v.kind != KindStruct {
		return &celStruct{fields: fields}
	}
	return &celStruct{fields: fields, s: v.s}
}

func (c *celStruct) field(i int) ref.Val {
	v, err := structField(c.s, i)
	if err != nil {
		return types.NewErr("%v", err)
	}
	if c.fields[i].Kind == KindStruct {
		return newCELStruct(c.fields[i].Fields, v)
	}
	return toCEL(v)
}

// Find implements traits.Mapper.
func (c *celStruct) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return nil, false
	}
	i := c.fields.Index(string(k))
	if i < 0 {
		return nil, false
	}
	return c.field(i), true
}

// Get implements traits.Indexer.
func (c *celStruct) Get(key ref.Val) ref.Val {
	if v, ok := c.Find(key); ok {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

// Contains implements traits.Container.
func (c *celStruct) Contains(key ref.Val) ref.Val {
	_, ok := c.Find(key)
	return types.Bool(ok)
}

// Size implements traits.Sizer.
func (c *celStruct) Size() ref.Val { return types.Int(len(c.fields)) }

// Iterator implements traits.Iterable: over the field names.
func (c *celStruct) Iterator() traits.Iterator {
	return types.NewStringList(types.DefaultTypeAdapter, c.fields.Names()).Iterator()
}

// ConvertToNative implements ref.Val: a map of the fields.
func (c *celStruct) ConvertToNative(t reflect.Type) (any, error) {
	m := make(map[string]any, len(c.fields))
	for i, f := range c.fields {
		v, err := c.field(i).ConvertToNative(reflect.TypeOf((*any)(nil)).Elem())
		if err != nil {
			return nil, err
		}
		m[f.Name] = v
	}
	if t == reflect.TypeOf(m) || t.Kind() == reflect.Interface {
		return m, nil
	}
	return nil, fmt.Errorf("a nested object converts to map[string]any, not %v", t)
}

// ConvertToType implements ref.Val.
func (c *celStruct) ConvertToType(t ref.Type) ref.Val {
	if t == types.MapType {
		return c
	}
	if t == types.TypeType {
		return types.MapType
	}
	return types.NewErr("type conversion error from map to %s", t.TypeName())
}

// Equal implements ref.Val: same fields, same values.
func (c *celStruct) Equal(other ref.Val) ref.Val {
	o, ok := other.(*celStruct)
	return types.Bool(ok && o.s == c.s && len(o.fields) == len(c.fields))
}

// Type implements ref.Val.
func (c *celStruct) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (c *celStruct) Value() any { return c }

// checkSelects refuses a field selection on a nested object that its schema does not have
// (`bid.pricee`): CEL types nested objects as maps, so its checker cannot.
func checkSelects(s Schema, checked *cel.Ast) error {
	var err error
	for _, n := range ast.MatchDescendants(ast.NavigateAST(checked.NativeRep()), ast.KindMatcher(ast.SelectKind)) {
		sel := n.AsSelect()
		path, ok := selectPath(sel.Operand())
		if !ok {
			continue
		}
		_, kind, rerr := s.Resolve(path)
		if rerr != nil || kind != KindStruct {
			continue // not a nested object of the record: CEL's checker has judged it
		}
		if _, _, rerr := s.Resolve(path + "." + sel.FieldName()); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// selectPath renders an operand made of identifiers and field selections as a path.
func selectPath(e ast.Expr) (string, bool) {
	switch e.Kind() {
	case ast.IdentKind:
		return e.AsIdent(), true
	case ast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() {
			return "", false
		}
		p, ok := selectPath(sel.Operand())
		return p + "." + sel.FieldName(), ok
	}
	return "", false
}
