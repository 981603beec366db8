// Package event defines the in-band events of the data plane (checkpoint
// barriers, cancel barriers, end of data) and their wire encoding, and the
// Delivery an input gate hands to its task. It imports nothing of sluice, so
// the network and the dataflow runtime share these types without importing
// each other and without an adapter on the record path.
//
// Wire encoding (big-endian, like the frame header of the data plane):
//
//	byte 0  kind
//	1 BARRIER         u64 checkpoint id (> 0), i64 trigger time (Unix ms),
//	                  u8 snapshot type                            18 bytes
//	2 CANCEL_BARRIER  u64 checkpoint id (> 0)                      9 bytes
//	3 END_OF_DATA     nothing                                      1 byte
//	4 WATERMARK       i64 timestamp (ms): reserved, refused until event
//	                  time ships                                   9 bytes
//
// Every kind has one exact size, so a payload either decodes completely or is
// refused; no event is larger than MaxSize.
package event

import (
	"encoding/binary"
	"fmt"
	"math"
)

// MaxSize is the largest encoded event. The data plane refuses larger EVENT
// frames before reading them.
const MaxSize = 32

// Kind is byte 0 of an event payload. The numbering is part of the wire
// protocol.
type Kind uint8

// Event kinds.
const (
	KindBarrier       Kind = 1 // a checkpoint or savepoint barrier
	KindCancelBarrier Kind = 2 // the checkpoint of Barrier.ID was aborted
	KindEndOfData     Kind = 3 // the producer will send no more records
	KindWatermark     Kind = 4 // reserved for event time; refused by Decode
)

var kindNames = [...]string{
	KindBarrier:       "BARRIER",
	KindCancelBarrier: "CANCEL_BARRIER",
	KindEndOfData:     "END_OF_DATA",
	KindWatermark:     "WATERMARK",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("event kind %d", uint8(k))
}

// size is the exact encoded size of each kind, 0 for unknown kinds.
var size = [...]int{
	KindBarrier:       18,
	KindCancelBarrier: 9,
	KindEndOfData:     1,
	KindWatermark:     9,
}

// SnapshotType says what a barrier takes: a checkpoint, or one of the kinds
// of savepoint. The numbering is part of the wire protocol.
type SnapshotType uint8

// Snapshot types.
const (
	Checkpoint         SnapshotType = 0
	Savepoint          SnapshotType = 1
	SavepointSuspend   SnapshotType = 2 // stop: the job ends after the savepoint
	SavepointTerminate SnapshotType = 3 // stop --drain: end of data first, then the savepoint
)

var snapshotTypeNames = [...]string{
	Checkpoint:         "checkpoint",
	Savepoint:          "savepoint",
	SavepointSuspend:   "savepoint-suspend",
	SavepointTerminate: "savepoint-terminate",
}

func (t SnapshotType) String() string {
	if int(t) < len(snapshotTypeNames) {
		return snapshotTypeNames[t]
	}
	return fmt.Sprintf("snapshot type %d", uint8(t))
}

// Barrier identifies one checkpoint or savepoint.
type Barrier struct {
	ID        int64 // checkpoint id, > 0
	Timestamp int64 // Unix ms of the trigger
	Type      SnapshotType
}

// Event is one decoded event.
type Event struct {
	Kind    Kind
	Barrier Barrier // KindBarrier; only Barrier.ID for KindCancelBarrier
}

func (e Event) String() string {
	switch e.Kind {
	case KindBarrier:
		return fmt.Sprintf("BARRIER %d (%v at %d)", e.Barrier.ID, e.Barrier.Type, e.Barrier.Timestamp)
	case KindCancelBarrier:
		return fmt.Sprintf("CANCEL_BARRIER %d", e.Barrier.ID)
	}
	return e.Kind.String()
}

// Append appends the encoding of e to dst. The fields Decode ignores for e's
// kind are not encoded. Append panics on a kind it cannot encode (unknown, or
// WATERMARK, which has no field yet): events are built by sluice's own code,
// so that is a programming error, never input. Values Decode refuses (an id
// of 0, an unknown snapshot type) are encoded as given; Writer.WriteEvent
// checks a payload with Decode before it sends it.
func Append(dst []byte, e Event) []byte {
	switch e.Kind {
	case KindBarrier:
		dst = append(dst, byte(KindBarrier))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.Barrier.ID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.Barrier.Timestamp))
		return append(dst, byte(e.Barrier.Type))
	case KindCancelBarrier:
		dst = append(dst, byte(KindCancelBarrier))
		return binary.BigEndian.AppendUint64(dst, uint64(e.Barrier.ID))
	case KindEndOfData:
		return append(dst, byte(KindEndOfData))
	}
	panic(fmt.Sprintf("event.Append: cannot encode %v", e.Kind))
}

// Decode decodes one event payload. It accepts only known kinds of their
// exact size, known snapshot types and checkpoint ids > 0, so that
// Append(nil, e) reproduces every payload it accepts; the reserved WATERMARK
// is refused. It never panics, whatever p holds.
func Decode(p []byte) (Event, error) {
	if len(p) == 0 {
		return Event{}, fmt.Errorf("event: empty payload, want a kind byte")
	}
	k := Kind(p[0])
	if int(k) >= len(size) || size[k] == 0 {
		return Event{}, fmt.Errorf("event: unknown kind %d", p[0])
	}
	if k == KindWatermark {
		return Event{}, fmt.Errorf("event: %v is reserved for event time, which this version does not support", k)
	}
	if len(p) != size[k] {
		return Event{}, fmt.Errorf("event: %v has %d bytes, want %d", k, len(p), size[k])
	}
	e := Event{Kind: k}
	if k == KindEndOfData {
		return e, nil
	}
	id := binary.BigEndian.Uint64(p[1:9])
	if id == 0 || id > math.MaxInt64 {
		return Event{}, fmt.Errorf("event: %v has checkpoint id %d, want 1..%d", k, id, int64(math.MaxInt64))
	}
	e.Barrier.ID = int64(id)
	if k == KindBarrier {
		e.Barrier.Timestamp = int64(binary.BigEndian.Uint64(p[9:17]))
		t := SnapshotType(p[17])
		if int(t) >= len(snapshotTypeNames) {
			return Event{}, fmt.Errorf("event: BARRIER %d has unknown snapshot type %d", id, p[17])
		}
		e.Barrier.Type = t
	}
	return e, nil
}
