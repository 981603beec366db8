package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

var testStates = []StateInfo{{ID: 1, Name: "acc", Kind: KindValue}, {ID: 2, Name: "seen", Kind: KindMap}}

type testEntry struct {
	kg               int
	id               ID
	key, ns, uk, val string
}

// writeTestStream writes entries (in key-group order) for key groups kgs.
func writeTestStream(t testing.TB, kgs KeyGroupRange, entries []testEntry) ([]byte, *StreamHandle) {
	t.Helper()
	var buf bytes.Buffer
	sw, err := NewStreamWriter(&buf, kgs, testStates)
	if err != nil {
		t.Fatal(err)
	}
	cur := kgs.First - 1
	for _, e := range entries {
		if e.kg != cur {
			if err := sw.BeginKeyGroup(e.kg); err != nil {
				t.Fatal(err)
			}
			cur = e.kg
		}
		var uk []byte
		if e.uk != "" {
			uk = []byte(e.uk)
		}
		if err := sw.Entry(e.id, []byte(e.key), []byte(e.ns), uk, []byte(e.val)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := sw.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if h.Size != int64(buf.Len()) {
		t.Fatalf("handle size %d, wrote %d", h.Size, buf.Len())
	}
	return buf.Bytes(), h
}

func readAll(t testing.TB, r io.Reader, h *StreamHandle, want KeyGroupRange) ([]testEntry, error) {
	t.Helper()
	sr, err := NewStreamReader(r, "chk-1/0-0-keyed", h)
	if err != nil {
		return nil, err
	}
	var got []testEntry
	err = sr.ReadKeyGroups(want, func(e *Entry) error {
		got = append(got, testEntry{e.KeyGroup, e.State.ID, string(e.Key), string(e.Namespace), string(e.UserKey), string(e.Value)})
		return nil
	})
	return got, err
}

// noSeek hides a reader's Seek, so the reader has to skip by reading.
type noSeek struct{ io.Reader }

var streamEntries = []testEntry{
	{4, 1, "a", "", "", "1"},
	{4, 2, "a", "w1", "x", "2"},
	{6, 1, "b", "", "", strings.Repeat("v", 3<<20)}, // longer than one read chunk
	{7, 1, "c", "", "", ""},
	{9, 2, "d", "", "", "empty user key"},
}

func TestStreamRoundTrip(t *testing.T) {
	kgs := KeyGroupRange{First: 3, Last: 9}
	data, h := writeTestStream(t, kgs, streamEntries)
	if len(h.Offsets) != kgs.Len() {
		t.Fatalf("%d offsets for %d key groups", len(h.Offsets), kgs.Len())
	}
	for _, tt := range []struct {
		name string
		want KeyGroupRange
	}{
		{"all", kgs},
		{"wider", KeyGroupRange{0, 100}},
		{"middle", KeyGroupRange{5, 7}},
		{"first", KeyGroupRange{3, 4}},
		{"last", KeyGroupRange{8, 9}},
		{"empty groups", KeyGroupRange{5, 5}},
		{"disjoint", KeyGroupRange{10, 20}},
	} {
		var want []testEntry
		for _, e := range streamEntries {
			if tt.want.Contains(e.kg) {
				want = append(want, e)
			}
		}
		for _, seek := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/seek=%v", tt.name, seek), func(t *testing.T) {
				var r io.Reader = bytes.NewReader(data)
				if !seek {
					r = noSeek{r}
				}
				got, err := readAll(t, r, h, tt.want)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("read %d entries %.200v, want %d %.200v", len(got), got, len(want), want)
				}
			})
		}
	}
	// Without offsets (a handle that lost them) the reader parses its way.
	h2 := *h
	h2.Offsets = nil
	got, err := readAll(t, bytes.NewReader(data), &h2, KeyGroupRange{6, 7})
	if err != nil || len(got) != 2 {
		t.Errorf("without offsets: %d entries, %v", len(got), err)
	}
}

// TestStreamReadsOnlyItsRange checks that a rescaled restore reading the
// first key groups stops there, and that one reading the last ones seeks
// past the rest.
func TestStreamReadsOnlyItsRange(t *testing.T) {
	kgs := KeyGroupRange{First: 3, Last: 9}
	data, h := writeTestStream(t, kgs, streamEntries)
	cr := &countingReader{r: bytes.NewReader(data)}
	if _, err := readAll(t, cr, h, KeyGroupRange{3, 4}); err != nil {
		t.Fatal(err)
	}
	if cr.n > h.Offsets[2]+64<<10 {
		t.Errorf("reading key groups 3-4 read %d bytes; they end at %d", cr.n, h.Offsets[2])
	}
	cr = &countingReader{r: bytes.NewReader(data)}
	if _, err := readAll(t, cr, h, KeyGroupRange{7, 9}); err != nil {
		t.Fatal(err)
	}
	if cr.n > int64(len(data))-h.Offsets[4]+64<<10 {
		t.Errorf("reading key groups 7-9 read %d bytes; they take %d", cr.n, int64(len(data))-h.Offsets[4])
	}
}

type countingReader struct {
	r *bytes.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Seek(off int64, whence int) (int64, error) { return c.r.Seek(off, whence) }

func uv(x uint64) string { return string(binary.AppendUvarint(nil, x)) }

// TestStreamReaderRefusesBadInput: a snapshot file may have been altered;
// every malformation is an error naming the file and what is wrong.
func TestStreamReaderRefusesBadInput(t *testing.T) {
	kgs := KeyGroupRange{First: 0, Last: 1}
	good, h := writeTestStream(t, kgs, []testEntry{{0, 1, "a", "", "", "1"}, {1, 2, "b", "", "k", "2"}})
	header := "SLKG\x01" + uv(2) + uv(1) + uv(3) + "acc\x01" + uv(2) + uv(4) + "seen\x03"
	noOffsets := func(h *StreamHandle) { h.Offsets = nil; h.Size = 0 }
	tests := []struct {
		name   string
		data   string
		handle func(*StreamHandle)
		want   string
	}{
		{"empty", "", nil, "header: truncated"},
		{"magic", "XLKG\x01" + string(good[5:]), nil, "not a key-group stream"},
		{"version", "SLKG\x02" + string(good[5:]), nil, "version 2"},
		{"too many states", "SLKG\x01" + uv(1<<20), noOffsets, "number of states 1048576 exceeds the limit"},
		{"state id zero", "SLKG\x01" + uv(1) + uv(0) + uv(1) + "a\x01", noOffsets, "id 0 outside"},
		{"long name", "SLKG\x01" + uv(1) + uv(1) + uv(1<<30) + "a", noOffsets, "state name length 1073741824 at offset 7 exceeds the limit 1024"},
		{"bad kind", "SLKG\x01" + uv(1) + uv(1) + uv(1) + "a\x09", noOffsets, `state "a": unknown kind 9`},
		{"duplicate name", "SLKG\x01" + uv(2) + uv(1) + uv(1) + "a\x01" + uv(2) + uv(1) + "a\x01", noOffsets, `"a" declared twice`},
		{"duplicate id", "SLKG\x01" + uv(2) + uv(1) + uv(1) + "a\x01" + uv(1) + uv(1) + "b\x01", noOffsets, "id 1 declared twice"},
		{"states differ from handle", "SLKG\x01" + uv(1) + uv(1) + uv(3) + "acc\x01" + "\x00\x00", noOffsets, "declares 1 states, its handle 2"},
		{"undeclared state", header + uv(7) + "\x00\x00", noOffsets, "undeclared state id 7"},
		{"state id past uint16", header + uv(1<<16+1) + "\x00\x00", noOffsets, "undeclared state id 65537"},
		{"huge key", header + uv(1) + uv(1<<40), noOffsets, "key length 1099511627776 at offset 20 exceeds the limit 4194304"},
		{"huge value, short file", header + uv(1) + uv(1) + "a" + uv(0) + uv(0) + uv(200<<20) + "xx", noOffsets, "value at offset 24: truncated"},
		{"value past size", header + uv(1) + uv(1) + "a" + uv(0) + uv(0) + uv(100) + "xx\x00\x00", func(h *StreamHandle) { h.Offsets = nil; h.Size = 30 }, "runs past the end of the file (size 30)"},
		{"user key on value state", header + uv(1) + uv(1) + "a" + uv(0) + uv(1) + "k" + uv(0) + "\x00\x00", noOffsets, `"acc" (value) has an entry with a user key`},
		{"varint overflow", header + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", noOffsets, "varint overflows"},
		{"truncated key group", header + uv(1) + uv(1) + "a", noOffsets, "namespace length at offset 22: truncated"},
		{"missing key group", header + "\x00", noOffsets, "state id at offset 20: truncated"},
		{"trailing data", string(good) + "x", func(h *StreamHandle) { h.Size = 0 }, "unexpected data after the last key group"},
		{"size differs", string(good), func(h *StreamHandle) { h.Size++ }, "the stream ends at"},
		{"offset differs", string(good), func(h *StreamHandle) { h.Offsets[1]-- }, "offsets[1] ="},
		{"offset first", string(good), func(h *StreamHandle) { h.Offsets[0]++ }, "offsets[0] ="},
		{"offsets out of order", string(good), func(h *StreamHandle) { h.Offsets[1] = h.Offsets[0] }, "out of order"},
		{"offsets count", string(good), func(h *StreamHandle) { h.Offsets = h.Offsets[:1] }, "1 offsets for the 2 key groups"},
		{"format", string(good), func(h *StreamHandle) { h.Format = "pebble/1" }, `format "pebble/1"`},
		{"range", string(good), func(h *StreamHandle) { h.KeyGroups = KeyGroupRange{5, 2} }, "key-groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hh := *h
			hh.Offsets = append([]int64(nil), h.Offsets...)
			if tt.handle != nil {
				tt.handle(&hh)
			}
			_, err := readAll(t, noSeek{strings.NewReader(tt.data)}, &hh, kgs)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "chk-1/0-0-keyed") {
				t.Errorf("error %v, want one naming the file and %q", err, tt.want)
			}
		})
	}
}

func TestStreamWriterRefusesMisuse(t *testing.T) {
	kgs := KeyGroupRange{First: 2, Last: 4}
	for _, tt := range []struct {
		name string
		do   func(sw *StreamWriter) error
	}{
		{"entry before key group", func(sw *StreamWriter) error { return sw.Entry(1, nil, nil, nil, nil) }},
		{"key group out of range", func(sw *StreamWriter) error { return sw.BeginKeyGroup(5) }},
		{"key group backwards", func(sw *StreamWriter) error {
			_ = sw.BeginKeyGroup(3)
			return sw.BeginKeyGroup(3)
		}},
		{"key too long", func(sw *StreamWriter) error {
			_ = sw.BeginKeyGroup(2)
			return sw.Entry(1, make([]byte, MaxKeyLen+1), nil, nil, nil)
		}},
		{"undeclared state", func(sw *StreamWriter) error {
			_ = sw.BeginKeyGroup(2)
			return sw.Entry(9, nil, nil, nil, nil)
		}},
	} {
		sw, err := NewStreamWriter(io.Discard, kgs, testStates)
		if err != nil {
			t.Fatal(err)
		}
		if err := tt.do(sw); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if _, err := NewStreamWriter(io.Discard, kgs, []StateInfo{{ID: 0, Name: "x", Kind: KindValue}}); err == nil {
		t.Error("state id 0 accepted")
	}
	if _, err := NewStreamWriter(io.Discard, kgs, []StateInfo{{ID: 1, Name: "x", Kind: KindValue}, {ID: 1, Name: "y", Kind: KindValue}}); err == nil {
		t.Error("duplicate state id accepted")
	}
	sw, _ := NewStreamWriter(failWriter{}, kgs, testStates)
	if sw != nil {
		if _, err := sw.Finish(); err == nil {
			t.Error("write error not reported")
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// FuzzStreamReader feeds arbitrary bytes to the reader as a snapshot file:
// it must return an error or entries, never panic or allocate without bound.
func FuzzStreamReader(f *testing.F) {
	data, h := writeTestStream(f, KeyGroupRange{0, 3}, []testEntry{
		{0, 1, "a", "", "", "1"}, {1, 2, "b", "n", "k", "2"}, {3, 1, "c", "", "", "3"},
	})
	f.Add(data, false)
	f.Add(data, true)
	f.Add([]byte("SLKG\x01\x00\x00\x00\x00\x00"), false)
	f.Add(data[:len(data)/2], false)
	f.Fuzz(func(t *testing.T, b []byte, useHandle bool) {
		hh := &StreamHandle{Format: StreamFormat, KeyGroups: KeyGroupRange{0, 3}}
		if useHandle {
			hh.Offsets, hh.Size, hh.States = h.Offsets, h.Size, h.States
		}
		for _, want := range []KeyGroupRange{{0, 3}, {2, 3}} {
			sr, err := NewStreamReader(bytes.NewReader(b), "fuzz", hh)
			if err != nil {
				continue
			}
			n := 0
			_ = sr.ReadKeyGroups(want, func(e *Entry) error {
				n++
				if !want.Contains(e.KeyGroup) || e.State.ID == 0 || len(e.Key) > MaxKeyLen {
					t.Fatalf("entry %+v outside what was asked", e)
				}
				return nil
			})
		}
	})
}
