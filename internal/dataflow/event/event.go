// Package event defines the in-band events of the data plane (checkpoint
// barriers, cancel barriers, end of data, watermarks and watermark status)
// and their wire encoding, and the
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
//	4 WATERMARK       i64 timestamp (ms): no record with a timestamp at or
//	                  below it follows on this channel             9 bytes
//	5 WATERMARK_STATUS u8 status: 0 active, 1 idle (the channel holds
//	                  no watermark back while idle)                2 bytes
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
	KindWatermark     Kind = 4 // event time advanced to Event.Watermark
	// KindWatermarkStatus says a channel went idle (it holds no watermark back) or
	// became active again: Flink's WatermarkStatus.
	KindWatermarkStatus Kind = 5
)

var kindNames = [...]string{
	KindBarrier:         "BARRIER",
	KindCancelBarrier:   "CANCEL_BARRIER",
	KindEndOfData:       "END_OF_DATA",
	KindWatermark:       "WATERMARK",
	KindWatermarkStatus: "WATERMARK_STATUS",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("event kind %d", uint8(k))
}

// size is the exact encoded size of each kind, 0 for unknown kinds.
var size = [...]int{
	KindBarrier:         18,
	KindCancelBarrier:   9,
	KindEndOfData:       1,
	KindWatermark:       9,
	KindWatermarkStatus: 2,
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

// WatermarkStatus is the status a WATERMARK_STATUS event announces. The
// numbering is part of the wire protocol.
type WatermarkStatus uint8

// Watermark statuses.
const (
	Active WatermarkStatus = 0
	Idle   WatermarkStatus = 1
)

func (s WatermarkStatus) String() string {
	switch s {
	case Active:
		return "ACTIVE"
	case Idle:
		return "IDLE"
	}
	return fmt.Sprintf("watermark status %d", uint8(s))
}

// Event is one decoded event.
type Event struct {
	Kind    Kind
	Barrier Barrier // KindBarrier; only Barrier.ID for KindCancelBarrier
	// Watermark is the event time (ms since the epoch) of a KindWatermark:
	// math.MaxInt64 at the end of input.
	Watermark int64
	Status    WatermarkStatus // KindWatermarkStatus
}

func (e Event) String() string {
	switch e.Kind {
	case KindBarrier:
		return fmt.Sprintf("BARRIER %d (%v at %d)", e.Barrier.ID, e.Barrier.Type, e.Barrier.Timestamp)
	case KindCancelBarrier:
		return fmt.Sprintf("CANCEL_BARRIER %d", e.Barrier.ID)
	case KindWatermark:
		if e.Watermark == math.MaxInt64 {
			return "WATERMARK MAX"
		}
		return fmt.Sprintf("WATERMARK %d", e.Watermark)
	case KindWatermarkStatus:
		return fmt.Sprintf("WATERMARK_STATUS %v", e.Status)
	}
	return e.Kind.String()
}

// Append appends the encoding of e to dst. The fields Decode ignores for e's
// kind are not encoded. Append panics on a kind it cannot encode (unknown):
// events are built by sluice's own code,
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
	case KindWatermark:
		dst = append(dst, byte(KindWatermark))
		return binary.BigEndian.AppendUint64(dst, uint64(e.Watermark))
	case KindWatermarkStatus:
		return append(dst, byte(KindWatermarkStatus), byte(e.Status))
	}
	panic(fmt.Sprintf("event.Append: cannot encode %v", e.Kind))
}

// Decode decodes one event payload. It accepts only known kinds of their
// exact size, known snapshot types, known watermark statuses and checkpoint
// ids > 0, so that Append(nil, e) reproduces every payload it accepts. It
// never panics, whatever p holds.
func Decode(p []byte) (Event, error) {
	if len(p) == 0 {
		return Event{}, fmt.Errorf("event: empty payload, want a kind byte")
	}
	k := Kind(p[0])
	if int(k) >= len(size) || size[k] == 0 {
		return Event{}, fmt.Errorf("event: unknown kind %d", p[0])
	}
	if len(p) != size[k] {
		return Event{}, fmt.Errorf("event: %v has %d bytes, want %d", k, len(p), size[k])
	}
	e := Event{Kind: k}
	switch k {
	case KindEndOfData:
		return e, nil
	case KindWatermark:
		e.Watermark = int64(binary.BigEndian.Uint64(p[1:9]))
		return e, nil
	case KindWatermarkStatus:
		if p[1] > byte(Idle) {
			return Event{}, fmt.Errorf("event: WATERMARK_STATUS has unknown status %d, want 0 (active) or 1 (idle)", p[1])
		}
		e.Status = WatermarkStatus(p[1])
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
