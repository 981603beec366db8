package dataflow

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// Wire format of a record: uvarint number of values, then per value a kind tag byte followed by
//
//	null:         nothing
//	bool:         one byte, 0 or 1
//	int:          zigzag varint
//	float:        8 bytes, little-endian IEEE 754
//	string/bytes: uvarint length, then the bytes
//	struct:       uvarint length, then the nested record in this format
//
// Field names travel in the plan, not on the wire, which keeps small records small. A nested
// record is length-prefixed so that a reader can skip it, and a struct value is its bytes
// (Value.s), so records with nested objects encode and decode as cheaply as flat ones.
//
// A record with event time (event.DeliverTimedRecord, network frame DATA_TIMED) is preceded by
// its timestamp as a zigzag varint (ms since the epoch): AppendTimedRecord, SplitTimestamp.
// Records without one are sent as before, so jobs without event time pay nothing for it.

// AppendRecord appends the encoding of r to dst and returns the extended slice.
func AppendRecord(dst []byte, r Record) []byte { return appendValues(dst, r) }

// appendValues appends the count and values of r: a record's encoding, and the whole of a
// nested record's, which carries nothing else whatever a record's framing carries.
func appendValues(dst []byte, r Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(r)))
	for _, v := range r {
		dst = appendValue(dst, v)
	}
	return dst
}

// AppendTimedRecord appends the timestamp ts (ms) and the encoding of r to dst: the form of
// event.DeliverTimedRecord.
func AppendTimedRecord(dst []byte, ts int64, r Record) []byte {
	return AppendRecord(binary.AppendVarint(dst, ts), r)
}

// SplitTimestamp splits a timed record (event.DeliverTimedRecord's Data) into its timestamp
// and the encoded record, which aliases b.
func SplitTimestamp(b []byte) (ts int64, rec []byte, err error) {
	ts, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("decode record: bad timestamp varint at offset 0")
	}
	return ts, b[n:], nil
}

// appendValue appends one tagged value; it also gives the key bytes hashed for partitioning.
func appendValue(dst []byte, v Value) []byte {
	dst = append(dst, byte(v.kind))
	switch v.kind {
	case KindBool:
		dst = append(dst, byte(v.n))
	case KindInt:
		dst = binary.AppendVarint(dst, int64(v.n))
	case KindFloat:
		dst = binary.LittleEndian.AppendUint64(dst, v.n)
	case KindString, KindBytes, KindStruct:
		dst = binary.AppendUvarint(dst, uint64(len(v.s)))
		dst = append(dst, v.s...)
	}
	return dst
}

// maxNesting bounds how deep nested records may be: decoding recurses, and a corrupt or
// hostile buffer must not exhaust the stack.
const maxNesting = 32

// bytesOf views s as bytes without copying; the result must not be written.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// decodeRecordString decodes the nested record held by a struct value.
func decodeRecordString(s string, dst *Record, depth int) error {
	if len(s) == 0 {
		*dst = (*dst)[:0]
		return nil
	}
	return decodeRecord(bytesOf(s), dst, depth)
}

// DecodeRecord decodes one record from b into *dst, reusing its backing array. b must hold
// exactly one record. Malformed input gives an error naming the offset, never a panic.
//
// Decoding does not allocate: string and bytes values alias b, so they are valid only while b is
// unchanged (an input gate's slice lives until its next Next call). Code that keeps values
// longer must Clone them, as the aggregate operator does for its keys.
func DecodeRecord(b []byte, dst *Record) error { return decodeRecord(b, dst, 0) }

func decodeRecord(b []byte, dst *Record, depth int) error {
	n, off := binary.Uvarint(b)
	if off <= 0 {
		return fmt.Errorf("decode record: bad value count at offset 0")
	}
	// Every value takes at least one byte, so a larger count is garbage; checking first
	// keeps a corrupt count from allocating gigabytes.
	if n > uint64(len(b)-off) {
		return fmt.Errorf("decode record: value count %d exceeds remaining %d bytes at offset 0", n, len(b)-off)
	}
	r := *dst
	if cap(r) < int(n) {
		r = make(Record, n)
	} else {
		r = r[:n]
	}
	for i := range r {
		if off >= len(b) {
			return fmt.Errorf("decode record: truncated at offset %d (value %d)", off, i)
		}
		kind := Kind(b[off])
		start := off
		off++
		switch kind {
		case KindNull:
			r[i] = Value{}
		case KindBool:
			if off >= len(b) || b[off] > 1 {
				return fmt.Errorf("decode record: bad bool at offset %d", start)
			}
			r[i] = Value{kind: KindBool, n: uint64(b[off])}
			off++
		case KindInt:
			x, k := binary.Varint(b[off:])
			if k <= 0 {
				return fmt.Errorf("decode record: bad varint at offset %d", off)
			}
			r[i] = Value{kind: KindInt, n: uint64(x)}
			off += k
		case KindFloat:
			if len(b)-off < 8 {
				return fmt.Errorf("decode record: truncated float at offset %d", off)
			}
			r[i] = Value{kind: KindFloat, n: binary.LittleEndian.Uint64(b[off:])}
			off += 8
		case KindString, KindBytes:
			l, k := binary.Uvarint(b[off:])
			if k <= 0 {
				return fmt.Errorf("decode record: bad length at offset %d", off)
			}
			off += k
			if l > uint64(len(b)-off) {
				return fmt.Errorf("decode record: length %d exceeds remaining %d bytes at offset %d", l, len(b)-off, off-k)
			}
			if l > 0 {
				r[i] = Value{kind: kind, s: unsafe.String(&b[off], int(l))}
			} else {
				r[i] = Value{kind: kind}
			}
			off += int(l)
		case KindStruct:
			l, k := binary.Uvarint(b[off:])
			if k <= 0 {
				return fmt.Errorf("decode record: bad length at offset %d", off)
			}
			off += k
			if l > uint64(len(b)-off) {
				return fmt.Errorf("decode record: length %d exceeds remaining %d bytes at offset %d", l, len(b)-off, off-k)
			}
			nested := b[off : off+int(l)]
			// Checked once here, so that reading a field of the value later cannot fail.
			if err := checkRecord(nested, depth+1); err != nil {
				return fmt.Errorf("nested record at offset %d: %w", off, err)
			}
			r[i] = structOf(nested)
			off += int(l)
		default:
			return fmt.Errorf("decode record: unknown kind tag %d at offset %d", kind, start)
		}
	}
	if off != len(b) {
		return fmt.Errorf("decode record: %d trailing bytes at offset %d", len(b)-off, off)
	}
	*dst = r
	return nil
}

// checkRecord validates the encoding of a nested record without decoding it. An empty
// encoding is the record of no fields.
func checkRecord(b []byte, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("decode record: nested deeper than %d", maxNesting)
	}
	if len(b) == 0 {
		return nil
	}
	n, off := binary.Uvarint(b)
	if off <= 0 {
		return fmt.Errorf("decode record: bad value count at offset 0")
	}
	if n > uint64(len(b)-off) {
		return fmt.Errorf("decode record: value count %d exceeds remaining %d bytes at offset 0", n, len(b)-off)
	}
	for i := uint64(0); i < n; i++ {
		next, err := skipValue(b, off, depth)
		if err != nil {
			return err
		}
		off = next
	}
	if off != len(b) {
		return fmt.Errorf("decode record: %d trailing bytes at offset %d", len(b)-off, off)
	}
	return nil
}

// skipValue returns the offset after the value at off, checking it (and a nested record
// in it) as DecodeRecord would.
func skipValue(b []byte, off, depth int) (int, error) {
	if off >= len(b) {
		return 0, fmt.Errorf("decode record: truncated at offset %d", off)
	}
	kind := Kind(b[off])
	start := off
	off++
	switch kind {
	case KindNull:
	case KindBool:
		if off >= len(b) || b[off] > 1 {
			return 0, fmt.Errorf("decode record: bad bool at offset %d", start)
		}
		off++
	case KindInt:
		_, k := binary.Varint(b[off:])
		if k <= 0 {
			return 0, fmt.Errorf("decode record: bad varint at offset %d", off)
		}
		off += k
	case KindFloat:
		if len(b)-off < 8 {
			return 0, fmt.Errorf("decode record: truncated float at offset %d", off)
		}
		off += 8
	case KindString, KindBytes, KindStruct:
		l, k := binary.Uvarint(b[off:])
		if k <= 0 {
			return 0, fmt.Errorf("decode record: bad length at offset %d", off)
		}
		off += k
		if l > uint64(len(b)-off) {
			return 0, fmt.Errorf("decode record: length %d exceeds remaining %d bytes at offset %d", l, len(b)-off, off-k)
		}
		if kind == KindStruct {
			if err := checkRecord(b[off:off+int(l)], depth+1); err != nil {
				return 0, err
			}
		}
		off += int(l)
	default:
		return 0, fmt.Errorf("decode record: unknown kind tag %d at offset %d", kind, start)
	}
	return off, nil
}

// structField returns field i of the encoded record s without decoding the others; s was
// checked when it was decoded or built by AppendRecord. Null when there is no field i.
func structField(s string, i int) (Value, error) {
	if len(s) == 0 || i < 0 {
		return Value{}, nil
	}
	b := bytesOf(s)
	n, off := binary.Uvarint(b)
	if off <= 0 || uint64(i) >= n {
		return Value{}, nil
	}
	for range i {
		next, err := skipShallow(b, off)
		if err != nil {
			return Value{}, err
		}
		off = next
	}
	return valueAt(b, off)
}

// skipShallow is skipValue without checking nested records again.
func skipShallow(b []byte, off int) (int, error) {
	if off >= len(b) {
		return 0, fmt.Errorf("decode record: truncated at offset %d", off)
	}
	switch Kind(b[off]) {
	case KindNull:
		return off + 1, nil
	case KindBool:
		return off + 2, nil
	case KindInt:
		_, k := binary.Varint(b[off+1:])
		if k <= 0 {
			return 0, fmt.Errorf("decode record: bad varint at offset %d", off+1)
		}
		return off + 1 + k, nil
	case KindFloat:
		return off + 9, nil
	case KindString, KindBytes, KindStruct:
		l, k := binary.Uvarint(b[off+1:])
		if k <= 0 || l > uint64(len(b)-off-1-k) {
			return 0, fmt.Errorf("decode record: bad length at offset %d", off+1)
		}
		return off + 1 + k + int(l), nil
	}
	return 0, fmt.Errorf("decode record: unknown kind tag %d at offset %d", b[off], off)
}

// valueAt decodes the value at off, aliasing b.
func valueAt(b []byte, off int) (Value, error) {
	end, err := skipShallow(b, off)
	if err != nil || end > len(b) {
		return Value{}, fmt.Errorf("decode record: bad value at offset %d", off)
	}
	kind := Kind(b[off])
	switch kind {
	case KindNull:
		return Value{}, nil
	case KindBool:
		return Value{kind: KindBool, n: uint64(b[off+1] & 1)}, nil
	case KindInt:
		x, _ := binary.Varint(b[off+1:])
		return Value{kind: KindInt, n: uint64(x)}, nil
	case KindFloat:
		return Value{kind: KindFloat, n: binary.LittleEndian.Uint64(b[off+1:])}, nil
	}
	l, k := binary.Uvarint(b[off+1:])
	if l == 0 {
		return Value{kind: kind}, nil
	}
	start := off + 1 + k
	return Value{kind: kind, s: unsafe.String(&b[start], int(l))}, nil
}
