package state

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Bounds on what a key-group stream may hold. A snapshot is input from disk
// that may have been altered: every length and count read is checked
// against these before anything is allocated for it, and the writer and
// backends refuse to produce what the reader would refuse.
const (
	MaxNameLen  = 1 << 10   // state name
	MaxKeyLen   = 4 << 20   // key, namespace, user key
	MaxValueLen = 256 << 20 // value (a list's elements together)
)

// readChunk bounds each allocation while reading a long field, so that a
// length claiming more than the file holds fails at the end of the file
// instead of allocating it up front.
const readChunk = 1 << 20

// Entry is one entry of a key-group stream. Its byte slices are valid only
// during the callback that receives it.
type Entry struct {
	KeyGroup  int
	State     StateInfo
	Key       []byte
	Namespace []byte
	UserKey   []byte
	Value     []byte
}

// StreamReader reads a key-group stream.
type StreamReader struct {
	name   string
	h      *StreamHandle
	src    io.Reader
	br     *bufio.Reader
	pos    int64
	next   int // next key group in file order
	states []StateInfo
	byID   map[ID]StateInfo
	bufs   [4][]byte
}

// NewStreamReader checks h and reads the header of the stream r, which must
// be positioned at the beginning of the file. name is the file's name in
// errors.
func NewStreamReader(r io.Reader, name string, h *StreamHandle) (*StreamReader, error) {
	sr := &StreamReader{name: name, h: h, src: r, br: bufio.NewReaderSize(r, 64<<10)}
	if err := sr.checkHandle(); err != nil {
		return nil, err
	}
	sr.next = h.KeyGroups.First
	if err := sr.readHeader(); err != nil {
		return nil, err
	}
	return sr, nil
}

func (sr *StreamReader) errorf(format string, args ...any) error {
	return fmt.Errorf("keyed state file %s: "+format, append([]any{sr.name}, args...)...)
}

func (sr *StreamReader) checkHandle() error {
	h := sr.h
	if h == nil {
		return sr.errorf("no handle")
	}
	if h.Format != StreamFormat {
		return sr.errorf("format %q, want %q", h.Format, StreamFormat)
	}
	if err := h.KeyGroups.check(); err != nil {
		return sr.errorf("key-groups: %w", err)
	}
	if h.Size < 0 {
		return sr.errorf("size %d is negative", h.Size)
	}
	if len(h.Offsets) == 0 {
		return nil
	}
	if len(h.Offsets) != h.KeyGroups.Len() {
		return sr.errorf("%d offsets for the %d key groups %s", len(h.Offsets), h.KeyGroups.Len(), h.KeyGroups)
	}
	for i, o := range h.Offsets {
		// Every key group takes at least its end marker: offsets increase strictly.
		if o < int64(len(streamMagic)+1) || (i > 0 && o <= h.Offsets[i-1]) || (h.Size > 0 && o >= h.Size) {
			return sr.errorf("offsets[%d] = %d is out of order or outside the file (size %d)", i, o, h.Size)
		}
	}
	return nil
}

func (sr *StreamReader) readHeader() error {
	var magic [len(streamMagic) + 1]byte
	if err := sr.readFull(magic[:]); err != nil {
		return sr.errorf("header: %w", err)
	}
	if string(magic[:len(streamMagic)]) != streamMagic {
		return sr.errorf("not a key-group stream (magic %q)", magic[:len(streamMagic)])
	}
	if v := magic[len(streamMagic)]; v != streamVersion {
		return sr.errorf("key-group stream version %d, this sluice reads version %d", v, streamVersion)
	}
	n, err := sr.uvarint("number of states")
	if err != nil {
		return err
	}
	if n > MaxStates {
		return sr.errorf("number of states %d exceeds the limit %d", n, MaxStates)
	}
	sr.byID = make(map[ID]StateInfo, min(n, 64))
	names := make(map[string]bool, min(n, 64))
	for i := range n {
		id, err := sr.uvarint("state id")
		if err != nil {
			return err
		}
		if id == 0 || id > MaxStates {
			return sr.errorf("state %d: id %d outside [1, %d]", i, id, MaxStates)
		}
		name, err := sr.field(0, MaxNameLen, "state name")
		if err != nil {
			return err
		}
		k, err := sr.br.ReadByte()
		if err != nil {
			return sr.errorf("state %q kind: %w", name, eofIsTruncation(err))
		}
		sr.pos++
		st := StateInfo{ID: ID(id), Name: string(name), Kind: Kind(k)}
		switch {
		case len(name) == 0:
			return sr.errorf("state %d: empty name", id)
		case !st.Kind.Valid():
			return sr.errorf("state %q: unknown kind %d", st.Name, k)
		case names[st.Name]:
			return sr.errorf("state %q declared twice", st.Name)
		}
		if _, dup := sr.byID[st.ID]; dup {
			return sr.errorf("state id %d declared twice", st.ID)
		}
		names[st.Name] = true
		sr.byID[st.ID] = st
		sr.states = append(sr.states, st)
	}
	if hs := sr.h.States; hs != nil {
		if len(hs) != len(sr.states) {
			return sr.errorf("the file declares %d states, its handle %d", len(sr.states), len(hs))
		}
		for i := range hs {
			if hs[i] != sr.states[i] {
				return sr.errorf("state %d is %+v in the file but %+v in its handle", i, sr.states[i], hs[i])
			}
		}
	}
	if len(sr.h.Offsets) > 0 && sr.h.Offsets[0] != sr.pos {
		return sr.errorf("offsets[0] = %d but the first key group starts at %d", sr.h.Offsets[0], sr.pos)
	}
	return nil
}

// States are the states the stream declares, in file order.
func (sr *StreamReader) States() []StateInfo { return sr.states }

// ReadKeyGroups calls fn for every entry of the key groups of the stream
// that lie in want, in key-group order. Key groups before them are skipped
// (by seeking when the reader can and the handle has offsets); reading stops
// after the last one wanted. Reading to the end of the stream checks that
// nothing follows it. ReadKeyGroups may be called again for key groups
// after those already read.
func (sr *StreamReader) ReadKeyGroups(want KeyGroupRange, fn func(*Entry) error) error {
	rng, ok := sr.h.KeyGroups.Intersect(want)
	if !ok {
		return nil
	}
	if rng.First < sr.next {
		return fmt.Errorf("keyed state file %s: key group %d already read", sr.name, rng.First)
	}
	if len(sr.h.Offsets) > 0 && rng.First > sr.next {
		if err := sr.skipTo(sr.h.Offsets[rng.First-sr.h.KeyGroups.First]); err != nil {
			return err
		}
		sr.next = rng.First
	}
	var e Entry
	for ; sr.next <= rng.Last; sr.next++ {
		if len(sr.h.Offsets) > 0 {
			if o := sr.h.Offsets[sr.next-sr.h.KeyGroups.First]; o != sr.pos {
				return sr.errorf("offsets[%d] = %d but key group %d starts at %d", sr.next-sr.h.KeyGroups.First, o, sr.next, sr.pos)
			}
		}
		if err := sr.readKeyGroup(sr.next, sr.next >= rng.First, &e, fn); err != nil {
			return err
		}
	}
	if sr.next > sr.h.KeyGroups.Last {
		return sr.checkEnd()
	}
	return nil
}

func (sr *StreamReader) readKeyGroup(kg int, deliver bool, e *Entry, fn func(*Entry) error) error {
	for {
		id, err := sr.uvarint("state id")
		if err != nil {
			return err
		}
		if id == 0 {
			return nil
		}
		st, ok := sr.byID[ID(id)]
		if !ok || id > MaxStates {
			return sr.errorf("key group %d: entry of undeclared state id %d", kg, id)
		}
		*e = Entry{KeyGroup: kg, State: st}
		if e.Key, err = sr.field(0, MaxKeyLen, "key"); err != nil {
			return err
		}
		if e.Namespace, err = sr.field(1, MaxKeyLen, "namespace"); err != nil {
			return err
		}
		if e.UserKey, err = sr.field(2, MaxKeyLen, "user key"); err != nil {
			return err
		}
		if len(e.UserKey) > 0 && st.Kind.valueLike() {
			return sr.errorf("key group %d: state %q (%s) has an entry with a user key", kg, st.Name, st.Kind)
		}
		if e.Value, err = sr.field(3, MaxValueLen, "value"); err != nil {
			return err
		}
		if !deliver {
			continue
		}
		if err := fn(e); err != nil {
			return sr.errorf("key group %d, state %q: %w", kg, st.Name, err)
		}
	}
}

// checkEnd refuses data after the last key group.
func (sr *StreamReader) checkEnd() error {
	if sr.h.Size > 0 && sr.pos != sr.h.Size {
		return sr.errorf("the stream ends at %d but its size is %d", sr.pos, sr.h.Size)
	}
	if _, err := sr.br.ReadByte(); err != io.EOF {
		if err != nil {
			return sr.errorf("after the last key group: %w", err)
		}
		return sr.errorf("unexpected data after the last key group (offset %d)", sr.pos)
	}
	return nil
}

func (sr *StreamReader) skipTo(off int64) error {
	if off < sr.pos {
		return sr.errorf("cannot skip back to offset %d from %d", off, sr.pos)
	}
	if s, ok := sr.src.(io.Seeker); ok {
		if _, err := s.Seek(off, io.SeekStart); err != nil {
			return sr.errorf("seek to offset %d: %w", off, err)
		}
		sr.br.Reset(sr.src)
		sr.pos = off
		return nil
	}
	for sr.pos < off {
		n, err := sr.br.Discard(int(min(off-sr.pos, readChunk)))
		sr.pos += int64(n)
		if err != nil {
			return sr.errorf("skip to offset %d: %w", off, eofIsTruncation(err))
		}
	}
	return nil
}

func (sr *StreamReader) uvarint(what string) (uint64, error) {
	var x uint64
	for i := 0; ; i++ {
		b, err := sr.br.ReadByte()
		if err != nil {
			return 0, sr.errorf("%s at offset %d: %w", what, sr.pos, eofIsTruncation(err))
		}
		sr.pos++
		if i == 9 && b > 1 {
			return 0, sr.errorf("%s at offset %d: varint overflows 64 bits", what, sr.pos-int64(i)-1)
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, nil
		}
	}
}

// field reads a length-prefixed field into buffer i, bounded by limit and,
// when the handle gives it, by the file's size.
func (sr *StreamReader) field(i int, limit uint64, what string) ([]byte, error) {
	start := sr.pos
	n, err := sr.uvarint(what + " length")
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, sr.errorf("%s length %d at offset %d exceeds the limit %d", what, n, start, limit)
	}
	if sr.h.Size > 0 && sr.pos+int64(n) > sr.h.Size {
		return nil, sr.errorf("%s of %d bytes at offset %d runs past the end of the file (size %d)", what, n, start, sr.h.Size)
	}
	buf := sr.bufs[i][:0]
	for rest := int(n); rest > 0; {
		c := min(rest, readChunk)
		buf = append(buf, make([]byte, c)...)
		if err := sr.readFull(buf[len(buf)-c:]); err != nil {
			return nil, sr.errorf("%s at offset %d: %w", what, start, err)
		}
		rest -= c
	}
	sr.bufs[i] = buf
	return buf, nil
}

func (sr *StreamReader) readFull(b []byte) error {
	n, err := io.ReadFull(sr.br, b)
	sr.pos += int64(n)
	return eofIsTruncation(err)
}

var errTruncated = errors.New("truncated")

func eofIsTruncation(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTruncated
	}
	return err
}
