package dataflow

import (
	"encoding/binary"
	"fmt"
)

// A source's position in one split, as an entry of its split list state: uvarint split,
// uvarint S (the number of splits, pipeline.max-parallelism, when it was written), then the
// source's position fields as varints. Keeping S refuses a restore into a job whose splits
// are numbered differently, which would read records twice or never.

type splitPosition struct {
	split int64
	pos   []int64
}

func appendSplitPosition(dst []byte, split, splits int64, pos ...int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(split))
	dst = binary.AppendUvarint(dst, uint64(splits))
	for _, p := range pos {
		dst = binary.AppendVarint(dst, p)
	}
	return dst
}

// decodeSplitPosition decodes an entry of n position fields for a source of splits splits.
func decodeSplitPosition(b []byte, splits int64, n int) (splitPosition, error) {
	var sp splitPosition
	k, i := binary.Uvarint(b)
	if i <= 0 {
		return sp, fmt.Errorf("split state: malformed split number")
	}
	b = b[i:]
	s, i := binary.Uvarint(b)
	if i <= 0 {
		return sp, fmt.Errorf("split state: malformed split count")
	}
	b = b[i:]
	if int64(s) != splits {
		return sp, fmt.Errorf("split state: written with %d splits, the job has %d (pipeline.max-parallelism must not change across a restore)", s, splits)
	}
	if k >= s {
		return sp, fmt.Errorf("split state: split %d of %d", k, s)
	}
	sp.split = int64(k)
	for range n {
		v, i := binary.Varint(b)
		if i <= 0 {
			return sp, fmt.Errorf("split state of split %d: malformed position", k)
		}
		sp.pos = append(sp.pos, v)
		b = b[i:]
	}
	if len(b) != 0 {
		return sp, fmt.Errorf("split state of split %d: %d bytes after the position", k, len(b))
	}
	return sp, nil
}
