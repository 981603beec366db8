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
//
// Field names travel in the plan, not on the wire, which keeps small records small.
//
// A record with event time (event.DeliverTimedRecord, network frame DATA_TIMED) is preceded by
// its timestamp as a zigzag varint (ms since the epoch): AppendTimedRecord, SplitTimestamp.
// Records without one are sent as before, so jobs without event time pay nothing for it.

// AppendRecord appends the encoding of r to dst and returns the extended slice.
func AppendRecord(dst []byte, r Record) []byte {
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
	case KindString, KindBytes:
		dst = binary.AppendUvarint(dst, uint64(len(v.s)))
		dst = append(dst, v.s...)
	}
	return dst
}

// DecodeRecord decodes one record from b into *dst, reusing its backing array. b must hold
// exactly one record. Malformed input gives an error naming the offset, never a panic.
//
// Decoding does not allocate: string and bytes values alias b, so they are valid only while b is
// unchanged (an input gate's slice lives until its next Next call). Code that keeps values
// longer must Clone them, as the aggregate operator does for its keys.
func DecodeRecord(b []byte, dst *Record) error {
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
