package dataflow

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"
)

// Kind is the type of one value of a record, or of one field of a schema.
type Kind uint8

// The kinds a value can have. KindAny appears only in schemas, for fields whose kind is known at
// run time only (for example a CEL expression of type dyn); every value on the wire has a
// concrete kind.
const (
	KindNull Kind = iota
	KindBool
	KindInt
	KindFloat
	KindString
	KindBytes
	KindAny
	// KindStruct is a nested object: a value holding a record of its own, whose fields
	// the schema lists in Field.Fields (a Nexmark event's bid, person and auction).
	KindStruct
)

var kindNames = [...]string{"null", "bool", "int", "float", "string", "bytes", "any", "struct"}

// String returns the name used in plans and error messages.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalJSON writes the kind by name so plans shown by the JobManager are readable.
func (k Kind) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// UnmarshalJSON reads a kind written by MarshalJSON.
func (k *Kind) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	for i, n := range kindNames {
		if n == s {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown kind %q", s)
}

// Field is one named, typed column of a schema. A KindStruct field lists the fields of its
// nested records in Fields.
type Field struct {
	Name   string `json:"name"`
	Kind   Kind   `json:"kind"`
	Fields Schema `json:"fields,omitempty"`
}

// Schema lists the fields of the records on one edge. Field names are not sent on the wire:
// both ends know the schema from the plan.
type Schema []Field

// Index returns the position of the named field, or -1.
func (s Schema) Index(name string) int {
	for i, f := range s {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// Names returns the field names, for error messages.
func (s Schema) Names() []string {
	out := make([]string, len(s))
	for i, f := range s {
		out[i] = f.Name
	}
	return out
}

// String renders the schema as "name:kind, ...", a nested one as "name:{name:kind, ...}".
func (s Schema) String() string {
	parts := make([]string, len(s))
	for i, f := range s {
		if f.Kind == KindStruct {
			parts[i] = f.Name + ":{" + f.Fields.String() + "}"
			continue
		}
		parts[i] = f.Name + ":" + f.Kind.String()
	}
	return strings.Join(parts, ", ")
}

// Value is one typed value, small (32 bytes) and comparable with ==. Values built by the
// constructors are immutable; values from DecodeRecord alias the decode buffer until cloned.
//
// A struct value holds its nested record in its wire encoding (AppendRecord), so it stays
// 32 bytes and comparable, travels without re-encoding, and a field of it is read by
// skipping to it (Field) rather than by decoding the whole record.
type Value struct {
	kind Kind
	n    uint64 // bool (0/1), int64 bits, float64 bits
	s    string // string and bytes; a struct's encoded record
}

// Null returns the null value.
func Null() Value { return Value{} }

// Bool returns a bool value.
func Bool(b bool) Value {
	if b {
		return Value{kind: KindBool, n: 1}
	}
	return Value{kind: KindBool}
}

// Int returns an int value.
func Int(i int64) Value { return Value{kind: KindInt, n: uint64(i)} }

// Float returns a float value.
func Float(f float64) Value { return Value{kind: KindFloat, n: math.Float64bits(f)} }

// String returns a string value.
func String(s string) Value { return Value{kind: KindString, s: s} }

// Bytes returns a bytes value; b is copied.
func Bytes(b []byte) Value { return Value{kind: KindBytes, s: string(b)} }

// Struct returns a struct value holding the record r (encoded as a nested record, so later
// changes to r do not show).
func Struct(r Record) Value {
	return Value{kind: KindStruct, s: string(appendValues(nil, r))}
}

// structOf returns a struct value holding enc, the encoding of a record, without copying:
// enc must not change while the value is used (the aliasing contract of DecodeRecord).
func structOf(enc []byte) Value {
	if len(enc) == 0 {
		return Value{kind: KindStruct}
	}
	return Value{kind: KindStruct, s: unsafe.String(&enc[0], len(enc))}
}

// Field returns field i of a struct value, aliasing it; null when v is not a struct (a null
// nested object) or has no field i.
func (v Value) Field(i int) Value {
	if v.kind != KindStruct {
		return Value{}
	}
	f, _ := structField(v.s, i)
	return f
}

// Fields decodes a struct value into *dst (reusing its backing array) and returns it; a
// null value gives an empty record. Values alias v.
func (v Value) Fields(dst Record) (Record, error) {
	if v.kind != KindStruct {
		return dst[:0], nil
	}
	err := decodeRecordString(v.s, &dst, 0)
	return dst, err
}

// Clone returns a copy that does not alias a decode buffer (see DecodeRecord).
func (v Value) Clone() Value {
	if v.s != "" {
		v.s = strings.Clone(v.s)
	}
	return v
}

// Kind returns the value's kind.
func (v Value) Kind() Kind { return v.kind }

// AsBool returns the bool held, false for other kinds.
func (v Value) AsBool() bool { return v.kind == KindBool && v.n != 0 }

// AsInt returns the int held; floats are truncated, other kinds give 0.
func (v Value) AsInt() int64 {
	switch v.kind {
	case KindInt:
		return int64(v.n)
	case KindFloat:
		return int64(math.Float64frombits(v.n))
	}
	return 0
}

// AsFloat returns the number held as a float64, 0 for non-numbers.
func (v Value) AsFloat() float64 {
	switch v.kind {
	case KindInt:
		return float64(int64(v.n))
	case KindFloat:
		return math.Float64frombits(v.n)
	}
	return 0
}

// AsString returns the string (or bytes) held, "" for other kinds.
func (v Value) AsString() string {
	if v.kind == KindStruct {
		return ""
	}
	return v.s
}

// Text renders the value as the print sink and text files show it.
func (v Value) Text() string {
	switch v.kind {
	case KindNull:
		return "null"
	case KindBool:
		return strconv.FormatBool(v.n != 0)
	case KindInt:
		return strconv.FormatInt(int64(v.n), 10)
	case KindFloat:
		return strconv.FormatFloat(math.Float64frombits(v.n), 'g', -1, 64)
	case KindStruct:
		return string(v.appendText(nil))
	default:
		return v.s
	}
}

// appendText appends Text without allocating a string.
func (v Value) appendText(dst []byte) []byte {
	switch v.kind {
	case KindNull:
		return append(dst, "null"...)
	case KindBool:
		return strconv.AppendBool(dst, v.n != 0)
	case KindInt:
		return strconv.AppendInt(dst, int64(v.n), 10)
	case KindFloat:
		return strconv.AppendFloat(dst, math.Float64frombits(v.n), 'g', -1, 64)
	case KindStruct:
		// Nested values in braces, as the print sink shows them: names are in the schema.
		var r Record
		if err := decodeRecordString(v.s, &r, 0); err != nil {
			return append(dst, "{?}"...)
		}
		dst = append(dst, '{')
		dst = appendTextLine(dst, r)
		return append(dst, '}')
	default:
		return append(dst, v.s...)
	}
}

// native returns the value as a plain Go value (for JSON output).
func (v Value) native() any {
	switch v.kind {
	case KindBool:
		return v.n != 0
	case KindInt:
		return int64(v.n)
	case KindFloat:
		return math.Float64frombits(v.n)
	case KindString:
		return v.s
	case KindBytes:
		return []byte(v.s)
	}
	return nil
}

// String implements fmt.Stringer for debugging.
func (v Value) String() string { return v.Text() }

// compareValues orders values: by kind group first (null < bool < numbers < strings < bytes),
// then by value; ints and floats compare numerically.
func compareValues(a, b Value) int {
	ga, gb := kindGroup(a.kind), kindGroup(b.kind)
	if ga != gb {
		return ga - gb
	}
	switch a.kind {
	case KindNull:
		return 0
	case KindBool:
		return int(a.n) - int(b.n)
	case KindInt, KindFloat:
		if a.kind == KindInt && b.kind == KindInt {
			x, y := int64(a.n), int64(b.n)
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
		x, y := a.AsFloat(), b.AsFloat()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	return strings.Compare(a.s, b.s)
}

func kindGroup(k Kind) int {
	if k == KindFloat {
		return int(KindInt)
	}
	return int(k)
}

// Record is one row. Its schema is known from the edge it travels on.
type Record []Value

// Clone returns a deep copy that does not alias a decode buffer.
func (r Record) Clone() Record {
	out := make(Record, len(r))
	for i, v := range r {
		out[i] = v.Clone()
	}
	return out
}

// String renders the record as the print sink does.
func (r Record) String() string { return string(appendTextLine(nil, r)) }

// appendTextLine renders the values separated by single spaces, without a newline.
func appendTextLine(dst []byte, r Record) []byte {
	for i, v := range r {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = v.appendText(dst)
	}
	return dst
}
