// Package keygroup maps keys to key groups and key groups to subtasks, as
// Flink's KeyGroupRangeAssignment does.
//
// A keyed operator's state is divided into maxParallelism key groups (the
// job's pipeline.max-parallelism). A key always belongs to the same key
// group; each subtask owns a contiguous range of key groups, so a job can
// be restored at another parallelism by handing whole key groups to the new
// subtasks, never by rehashing keys.
package keygroup

import (
	"fmt"
	"math/bits"
)

// MaxParallelism is the largest number of key groups (Flink's
// UPPER_BOUND_MAX_PARALLELISM, 2^15): ranges are computed in int, and the
// bound keeps kg*parallelism far from overflow everywhere.
const MaxParallelism = 1 << 15

// Hash is FNV-1a (32 bit) over the key's encoding: stable across processes,
// platforms and versions, unlike Go's map hash, so a key lands in the same
// key group in every TaskManager and after a restore.
func Hash(key []byte) uint32 {
	const (
		offset = 2166136261
		prime  = 16777619
	)
	h := uint32(offset)
	for _, b := range key {
		h ^= uint32(b)
		h *= prime
	}
	return h
}

// murmur is Flink's MathUtils.murmurHash: one murmur3 (32 bit) mixing round
// of the hash as a 4-byte block, the length (4) folded in, the finaliser,
// then made non-negative as Java does (negated, and MIN_VALUE mapped to 0).
// The hash is Java's int: uint32 arithmetic wraps exactly as Java's int does.
func murmur(code uint32) int32 {
	code *= 0xcc9e2d51
	code = bits.RotateLeft32(code, 15)
	code *= 0x1b873593
	code = bits.RotateLeft32(code, 13)
	code = code*5 + 0xe6546b64
	code ^= 4
	code ^= code >> 16
	code *= 0x85ebca6b
	code ^= code >> 13
	code *= 0xc2b2ae35
	code ^= code >> 16
	c := int32(code)
	switch {
	case c >= 0:
		return c
	case c == -1<<31:
		return 0
	default:
		return -c
	}
}

// Of maps a key hash to its key group: one murmur3 mixing round over the
// hash, made non-negative, modulo maxParallelism (Flink's
// computeKeyGroupForKeyHash). The extra mixing spreads hashes whose low
// bits are poor; for the same 32-bit hash (Java's int) the result equals
// Flink's. maxParallelism must be in [1, MaxParallelism].
func Of(hash uint32, maxParallelism int) int {
	checkMax(maxParallelism)
	return int(murmur(hash)) % maxParallelism
}

// Operator is the subtask owning key group kg at the given parallelism:
// kg * parallelism / maxParallelism (Flink's
// computeOperatorIndexForKeyGroup). It is the inverse of RangeOf.
func Operator(kg, parallelism, maxParallelism int) int {
	checkParallelism(parallelism, maxParallelism)
	if kg < 0 || kg >= maxParallelism {
		panic(fmt.Sprintf("keygroup: key group %d outside [0, %d)", kg, maxParallelism))
	}
	return kg * parallelism / maxParallelism
}

// Range is a contiguous, inclusive range of key groups. It marshals as the
// JSON array [first, last] (see json.go), as _metadata stores it.
type Range struct{ First, Last int }

// RangeOf is the key groups of subtask i at the given parallelism:
// [ceil(i*max/p), floor(((i+1)*max-1)/p)] (Flink's
// computeKeyGroupRangeForOperatorIndex). The ranges of subtasks 0..p-1
// partition [0, max) in order, and none is empty because p <= max.
func RangeOf(subtask, parallelism, maxParallelism int) Range {
	checkParallelism(parallelism, maxParallelism)
	if subtask < 0 || subtask >= parallelism {
		panic(fmt.Sprintf("keygroup: subtask %d outside [0, %d)", subtask, parallelism))
	}
	return Range{
		First: (subtask*maxParallelism + parallelism - 1) / parallelism,
		Last:  ((subtask+1)*maxParallelism - 1) / parallelism,
	}
}

// Len is the number of key groups in the range (0 if it is empty).
func (r Range) Len() int {
	if r.Last < r.First {
		return 0
	}
	return r.Last - r.First + 1
}

// Contains reports whether key group kg is in the range.
func (r Range) Contains(kg int) bool { return r.First <= kg && kg <= r.Last }

// Intersect is the key groups in both ranges; ok is false if there are none.
func (r Range) Intersect(o Range) (Range, bool) {
	x := Range{First: max(r.First, o.First), Last: min(r.Last, o.Last)}
	if x.First > x.Last {
		return Range{}, false
	}
	return x, true
}

// String formats the range as [first, last], as _metadata writes it.
func (r Range) String() string { return fmt.Sprintf("[%d, %d]", r.First, r.Last) }

// CheckMaxParallelism reports whether maxParallelism is a valid number of
// key groups, with an error naming the configuration key.
func CheckMaxParallelism(maxParallelism int) error {
	if maxParallelism < 1 || maxParallelism > MaxParallelism {
		return fmt.Errorf("pipeline.max-parallelism: %d is outside 1..%d", maxParallelism, MaxParallelism)
	}
	return nil
}

// CheckParallelism reports whether an operator at parallelism can run with
// maxParallelism key groups: every subtask needs at least one.
func CheckParallelism(parallelism, maxParallelism int) error {
	if err := CheckMaxParallelism(maxParallelism); err != nil {
		return err
	}
	if parallelism < 1 || parallelism > maxParallelism {
		return fmt.Errorf("parallelism %d is outside 1..%d: pipeline.max-parallelism (%d) bounds the parallelism of keyed operators and sources; raise it or lower the parallelism", parallelism, maxParallelism, maxParallelism)
	}
	return nil
}

// The arithmetic functions panic on invalid arguments, as Flink's
// Preconditions do: callers validate the job's settings once (with the
// Check functions) and a bad value here is a programming error that
// would otherwise silently route keys to a wrong subtask.
func checkMax(maxParallelism int) {
	if err := CheckMaxParallelism(maxParallelism); err != nil {
		panic("keygroup: " + err.Error())
	}
}

func checkParallelism(parallelism, maxParallelism int) {
	if err := CheckParallelism(parallelism, maxParallelism); err != nil {
		panic("keygroup: " + err.Error())
	}
}
