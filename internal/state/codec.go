package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Codec encodes the values of a typed state. Decode's input is valid only
// during the call: a codec of a reference type copies what it keeps.
// Decode reads input that may come from a tampered snapshot and must fail,
// not panic, on anything malformed.
type Codec[T any] interface {
	Append(dst []byte, v T) []byte
	Decode(b []byte) (T, error)
}

// Codecs of common types. Operators of records use dataflow's RecordCodec
// and ValueCodec.
var (
	StringCodec  Codec[string]  = stringCodec{}
	BytesCodec   Codec[[]byte]  = bytesCodec{}
	Int64Codec   Codec[int64]   = int64Codec{}
	Float64Codec Codec[float64] = float64Codec{}
)

type stringCodec struct{}

func (stringCodec) Append(dst []byte, v string) []byte { return append(dst, v...) }
func (stringCodec) Decode(b []byte) (string, error)    { return string(b), nil }

type bytesCodec struct{}

func (bytesCodec) Append(dst []byte, v []byte) []byte { return append(dst, v...) }
func (bytesCodec) Decode(b []byte) ([]byte, error)    { return append([]byte(nil), b...), nil }

// int64Codec is a zigzag varint: small counts take one byte.
type int64Codec struct{}

func (int64Codec) Append(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }
func (int64Codec) Decode(b []byte) (int64, error) {
	v, n := binary.Varint(b)
	if n <= 0 || n != len(b) {
		return 0, fmt.Errorf("int64: %d bytes are not one varint", len(b))
	}
	return v, nil
}

type float64Codec struct{}

func (float64Codec) Append(dst []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(v))
}
func (float64Codec) Decode(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("float64: %d bytes, want 8", len(b))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// AppendElement appends one list element to a list's encoding: a uvarint
// length and the element. A list state's value is its elements so encoded,
// concatenated (as pebble's merge operator concatenates them).
func AppendElement(dst, element []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(element)))
	return append(dst, element...)
}

var errBadList = errors.New("malformed list encoding")

// Elements calls fn with each element of a list's encoding, in order.
func Elements(list []byte, fn func(element []byte) error) error {
	for len(list) > 0 {
		n, k := binary.Uvarint(list)
		if k <= 0 || n > uint64(len(list)-k) {
			return errBadList
		}
		if err := fn(list[k : k+int(n)]); err != nil {
			return err
		}
		list = list[k+int(n):]
	}
	return nil
}

// CheckElements reports whether list is a well-formed list encoding.
func CheckElements(list []byte) error {
	return Elements(list, func([]byte) error { return nil })
}
