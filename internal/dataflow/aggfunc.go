package dataflow

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The aggregate functions (count, sum, min, max, avg) of the `aggregate` and `window`
// operators: one implementation of their options, their checks, the accumulator, its fixed
// binary codec and its merge (session windows), so both operators fold the same way.

// AggFunction is the `function`, `field` and `as` options both operators take.
type AggFunction struct {
	Function string `yaml:"function"`
	Field    string `yaml:"field" want:"a field name or path (bid.price)"` // not for count
	As       string `yaml:"as" want:"a field name"`                        // the output field; default: the function
}

// check validates and defaults the options alone.
func (a *AggFunction) check(op *OperatorSpec) error {
	switch a.Function {
	case "":
		return op.errf("function", "missing required option: one of count, sum, min, max, avg")
	case "count":
		if a.Field != "" {
			return op.errf("field", "count takes no field")
		}
	case "sum", "min", "max", "avg":
		if a.Field == "" {
			return op.errf("field", "missing required option")
		}
	default:
		return op.errf("function", "unknown function %q: want count, sum, min, max or avg", a.Function)
	}
	if a.As == "" {
		a.As = a.Function
	}
	return nil
}

// plan resolves the field in the input and returns the function's compiled form and the
// kind of its result.
func (a *AggFunction) plan(o *OperatorSpec, in Schema) (aggFunc, Kind, error) {
	f := aggFunc{function: a.Function}
	if err := CheckFieldName(o, "as", a.As); err != nil {
		return f, 0, err
	}
	if a.Function == "count" {
		return f, KindInt, nil
	}
	p, fk, err := in.Resolve(a.Field)
	if err != nil {
		return f, 0, o.errf("field", "%v", err)
	}
	if fk == KindStruct {
		return f, 0, o.errf("field", "%q is a nested object: aggregate one of its fields", a.Field)
	}
	f.hasField, f.path = true, p
	switch a.Function {
	case "sum", "avg":
		if fk != KindInt && fk != KindFloat && fk != KindAny {
			return f, 0, o.errf("field", "%s needs a number, %q is %s", a.Function, a.Field, fk)
		}
		if a.Function == "avg" {
			return f, KindFloat, nil
		}
	}
	return f, fk, nil
}

// aggFunc is a planned aggregate function: what to fold and from which input field.
type aggFunc struct {
	function string
	hasField bool      // false for count
	path     FieldPath // of the field in the input (a nested one too)
}

// aggState is the running aggregate of one key (or of one key and window).
type aggState struct {
	count  int64 // records seen
	n      int64 // non-null values folded
	isum   int64
	fsum   float64
	float  bool // a float was summed: the sum is a float
	minmax Value
}

// add folds one record into st.
func (f aggFunc) add(st *aggState, r Record) error {
	st.count++
	if !f.hasField {
		return nil
	}
	v := f.path.Get(r)
	if v.kind == KindNull {
		return nil
	}
	switch f.function {
	case "sum", "avg":
		switch v.kind {
		case KindInt:
			st.isum += v.AsInt()
			st.fsum += v.AsFloat()
		case KindFloat:
			st.float = true
			st.fsum += v.AsFloat()
		default:
			return fmt.Errorf("%s of a %s value %q", f.function, v.kind, v.Text())
		}
	case "min":
		if st.n == 0 || compareValues(v, st.minmax) < 0 {
			st.minmax = v.Clone()
		}
	case "max":
		if st.n == 0 || compareValues(v, st.minmax) > 0 {
			st.minmax = v.Clone()
		}
	}
	st.n++
	return nil
}

// merge folds src into dst, as if dst had seen src's records too (merging session windows).
func (f aggFunc) merge(dst *aggState, src *aggState) {
	if src.n > 0 {
		switch {
		case f.function == "min" && (dst.n == 0 || compareValues(src.minmax, dst.minmax) < 0),
			f.function == "max" && (dst.n == 0 || compareValues(src.minmax, dst.minmax) > 0):
			dst.minmax = src.minmax
		}
	}
	dst.count += src.count
	dst.n += src.n
	dst.isum += src.isum
	dst.fsum += src.fsum
	dst.float = dst.float || src.float
}

// result is the function's value of st.
func (f aggFunc) result(st *aggState) Value {
	switch f.function {
	case "count":
		return Int(st.count)
	case "sum":
		if st.float {
			return Float(st.fsum)
		}
		return Int(st.isum)
	case "avg":
		if st.n == 0 {
			return Null()
		}
		return Float(st.fsum / float64(st.n))
	}
	if st.n == 0 {
		return Null()
	}
	return st.minmax
}

// aggCodec encodes an aggState in a fixed layout, the format of the state's bytes in the
// backend and in its snapshots: a format byte (aggFormat), then count, n and isum as 8-byte little-endian integers, fsum as
// the 8 bytes of its IEEE 754 bits, one byte for float (0 or 1), then minmax as a record of one
// value. The fixed layout costs no varint work per record; the aggregate reads and rewrites its
// state for every record, so this is on the hot path.
type aggCodec struct{ scratch Record }

// aggFormat is the first byte of an encoded aggState. The earlier encoding, a record of six
// values, starts with its value count 6, so state in that format is refused with an error
// rather than misread.
const aggFormat = 0xa2

// aggFixedLen is the length of the fixed part of an encoded aggState.
const aggFixedLen = 1 + 4*8 + 1

func (c *aggCodec) Append(dst []byte, st aggState) []byte {
	dst = append(dst, aggFormat)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(st.count))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(st.n))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(st.isum))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(st.fsum))
	f := byte(0)
	if st.float {
		f = 1
	}
	dst = append(dst, f)
	// The tail is a record of one value, as AppendRecord writes it: a count of 1, then the value.
	return appendValue(append(dst, 1), st.minmax)
}

func (c *aggCodec) Decode(b []byte) (aggState, error) {
	if len(b) < aggFixedLen+2 {
		return aggState{}, fmt.Errorf("aggregate state: malformed accumulator of %d bytes, want at least %d", len(b), aggFixedLen+2)
	}
	if b[0] != aggFormat {
		return aggState{}, fmt.Errorf("aggregate state: accumulator in format %#x, want %#x (state written by another sluice version)", b[0], aggFormat)
	}
	if b[33] > 1 {
		return aggState{}, fmt.Errorf("aggregate state: malformed accumulator: float flag %d, want 0 or 1", b[33])
	}
	if err := DecodeRecord(b[aggFixedLen:], &c.scratch); err != nil {
		return aggState{}, fmt.Errorf("aggregate state: %w", err)
	}
	if len(c.scratch) != 1 {
		return aggState{}, fmt.Errorf("aggregate state: malformed accumulator: %d min/max values, want 1", len(c.scratch))
	}
	// minmax aliases b, which the backend may reuse: the state keeps its own copy.
	return aggState{
		count:  int64(binary.LittleEndian.Uint64(b[1:])),
		n:      int64(binary.LittleEndian.Uint64(b[9:])),
		isum:   int64(binary.LittleEndian.Uint64(b[17:])),
		fsum:   math.Float64frombits(binary.LittleEndian.Uint64(b[25:])),
		float:  b[33] == 1,
		minmax: c.scratch[0].Clone(),
	}, nil
}
