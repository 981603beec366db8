package state

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// The canonical key-group stream ("kg-stream/1", docs/architecture.md §5.4),
// written by hashmap checkpoints and by every savepoint:
//
//	"SLKG" u8 version=1
//	uvarint nstates; per state: uvarint id, uvarint len, name, u8 kind
//	per key group of the handle's range, in order (its start offset is in the handle):
//	    entries: uvarint state id (>0), uvarint len, key, uvarint len, namespace,
//	             uvarint len, user key, uvarint len, value
//	    uvarint 0 (end of key group)
//
// Entries within a key group are in no particular order: the writer streams
// without sorting, so the asynchronous part of a checkpoint stays cheap.

// StreamFormat is the Format of a key-group stream's handle.
const StreamFormat = "kg-stream/1"

const (
	streamMagic   = "SLKG"
	streamVersion = 1
)

// StreamHandle describes a written key-group stream; it is what _metadata
// keeps of a keyed snapshot besides the file's path (checkpoint.KeyedHandle).
type StreamHandle struct {
	Format    string
	KeyGroups KeyGroupRange
	// Offsets[i] is the byte offset at which key group KeyGroups.First+i starts.
	Offsets []int64
	States  []StateInfo
	Size    int64 // bytes written
}

// StreamWriter writes one key-group stream. Key groups are written in
// order with BeginKeyGroup; those skipped are written empty.
type StreamWriter struct {
	w       *bufio.Writer
	n       int64
	h       StreamHandle
	ids     map[ID]bool
	cur     int // key group being written; First-1 before the first
	scratch []byte
	err     error
}

// NewStreamWriter writes the header of a stream holding states for key groups kgs.
func NewStreamWriter(w io.Writer, kgs KeyGroupRange, states []StateInfo) (*StreamWriter, error) {
	if err := kgs.check(); err != nil {
		return nil, fmt.Errorf("key-group stream: %w", err)
	}
	if len(states) > MaxStates {
		return nil, fmt.Errorf("key-group stream: %d states, at most %d", len(states), MaxStates)
	}
	sw := &StreamWriter{
		w:   bufio.NewWriterSize(w, 64<<10),
		h:   StreamHandle{Format: StreamFormat, KeyGroups: kgs, Offsets: make([]int64, 0, kgs.Len()), States: states},
		ids: make(map[ID]bool, len(states)),
		cur: kgs.First - 1,
	}
	b := append([]byte(streamMagic), streamVersion)
	b = binary.AppendUvarint(b, uint64(len(states)))
	for _, s := range states {
		if s.ID == 0 || sw.ids[s.ID] || !s.Kind.Valid() || len(s.Name) == 0 || len(s.Name) > MaxNameLen {
			return nil, fmt.Errorf("key-group stream: invalid state %+v", s)
		}
		sw.ids[s.ID] = true
		b = binary.AppendUvarint(b, uint64(s.ID))
		b = binary.AppendUvarint(b, uint64(len(s.Name)))
		b = append(b, s.Name...)
		b = append(b, byte(s.Kind))
	}
	sw.write(b)
	return sw, sw.err
}

func (sw *StreamWriter) write(b []byte) {
	if sw.err != nil {
		return
	}
	n, err := sw.w.Write(b)
	sw.n += int64(n)
	if err != nil {
		sw.err = fmt.Errorf("write key-group stream: %w", err)
	}
}

// BeginKeyGroup ends the key group being written and starts kg, which must
// come after it within the range.
func (sw *StreamWriter) BeginKeyGroup(kg int) error {
	if sw.err != nil {
		return sw.err
	}
	if kg <= sw.cur || !sw.h.KeyGroups.Contains(kg) {
		return fmt.Errorf("key-group stream: key group %d out of order (after %d) or outside %s", kg, sw.cur, sw.h.KeyGroups)
	}
	for sw.cur < kg {
		if sw.cur >= sw.h.KeyGroups.First {
			sw.write([]byte{0})
		}
		sw.cur++
		sw.h.Offsets = append(sw.h.Offsets, sw.n)
	}
	return sw.err
}

// Entry writes one entry of the current key group.
func (sw *StreamWriter) Entry(id ID, key, ns, userKey, value []byte) error {
	if sw.err != nil {
		return sw.err
	}
	if sw.cur < sw.h.KeyGroups.First {
		return fmt.Errorf("key-group stream: entry before the first key group")
	}
	if !sw.ids[id] {
		return fmt.Errorf("key-group stream: entry of undeclared state %d", id)
	}
	// Refuse what the reader would refuse: a snapshot that cannot be
	// restored is worse than a failed checkpoint.
	if len(key) > MaxKeyLen || len(ns) > MaxKeyLen || len(userKey) > MaxKeyLen || len(value) > MaxValueLen {
		return fmt.Errorf("key-group stream: state %d: an entry's key, namespace or user key is longer than %d bytes, or its value longer than %d", id, MaxKeyLen, MaxValueLen)
	}
	b := binary.AppendUvarint(sw.scratch[:0], uint64(id))
	for _, f := range [...][]byte{key, ns, userKey} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendUvarint(b, uint64(len(value)))
	sw.scratch = b
	sw.write(b)
	sw.write(value)
	return sw.err
}

// Finish ends the remaining key groups, flushes, and returns the handle.
func (sw *StreamWriter) Finish() (*StreamHandle, error) {
	if sw.err != nil {
		return nil, sw.err
	}
	if sw.cur < sw.h.KeyGroups.Last {
		if err := sw.BeginKeyGroup(sw.h.KeyGroups.Last); err != nil {
			return nil, err
		}
	}
	sw.write([]byte{0})
	if sw.err == nil {
		if err := sw.w.Flush(); err != nil {
			sw.err = fmt.Errorf("write key-group stream: %w", err)
		}
	}
	if sw.err != nil {
		return nil, sw.err
	}
	h := sw.h
	h.Size = sw.n
	return &h, nil
}
