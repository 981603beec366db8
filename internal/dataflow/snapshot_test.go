package dataflow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/state"
)

// memFiles keeps the files of one snapshot.
type memFiles map[string]*bytes.Buffer

func (m memFiles) Create(name string) (checkpoint.FileWriter, error) {
	m[name] = &bytes.Buffer{}
	return &memWriter{buf: m[name], name: name}, nil
}
func (m memFiles) SharedAllowed() bool                                     { return false }
func (m memFiles) CreateShared(name string) (checkpoint.FileWriter, error) { return m.Create(name) }

type memWriter struct {
	buf  *bytes.Buffer
	name string
}

func (w *memWriter) Write(b []byte) (int, error) { return w.buf.Write(b) }
func (w *memWriter) Commit() (checkpoint.FileRef, error) {
	return checkpoint.FileRef{Path: w.name, Size: int64(w.buf.Len())}, nil
}
func (w *memWriter) Abort() {}

// TestListsFileRoundTrip writes list states in the SLOS format and reads them back.
func TestListsFileRoundTrip(t *testing.T) {
	files := memFiles{}
	lists := []listCopy{
		{name: "splits", mode: state.Split, entries: [][]byte{[]byte("a"), {}, bytes.Repeat([]byte("x"), 300)}},
		{name: "empty", mode: state.Union},
		{name: "pending", mode: state.Union, entries: [][]byte{[]byte("p1")}},
	}
	h, _, err := writeLists(files, "3-0-operator", lists)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Lists) != 3 || h.Lists[0].Count != 3 || h.Lists[1].Mode != "union" || h.File.Path != "3-0-operator" {
		t.Fatalf("handle %+v", h)
	}
	got, err := readLists(files["3-0-operator"].Bytes(), "3-0-operator")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lists {
		g := got[l.name]
		if g.mode != l.mode || len(g.entries) != len(l.entries) {
			t.Fatalf("list %s: got %+v", l.name, g)
		}
		for i := range l.entries {
			if !bytes.Equal(g.entries[i], l.entries[i]) {
				t.Fatalf("list %s entry %d: %q", l.name, i, g.entries[i])
			}
		}
	}
}

// TestListsFileMalformed: every truncation and a set of corruptions of an operator state
// file are refused with an error naming the file, never a panic.
func TestListsFileMalformed(t *testing.T) {
	files := memFiles{}
	if _, _, err := writeLists(files, "f", []listCopy{{name: "l", mode: state.Split, entries: [][]byte{[]byte("abc"), []byte("de")}}}); err != nil {
		t.Fatal(err)
	}
	good := files["f"].Bytes()
	for n := range len(good) {
		if n == len(listsMagic)+1 {
			continue // the header alone is a file of no lists
		}
		if _, err := readLists(good[:n], "f"); err == nil || !strings.Contains(err.Error(), "operator state file f") {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	for _, bad := range [][]byte{
		[]byte("SLOX\x01"),
		[]byte("SLOS\x02"),
		append([]byte("SLOS\x01\x01l\x03"), 0),          // unknown mode
		[]byte("SLOS\x01\x01l\x01\xff\xff\xff\xff\x0f"), // count beyond the file
		[]byte("SLOS\x01\x01l\x01\x01\x09ab"),           // entry beyond the file
		[]byte("SLOS\x01\x01l\x01\x00\x01l\x01\x00"),    // a list twice
		[]byte("SLOS\x01\x00"),                          // empty name
	} {
		if _, err := readLists(bad, "f"); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// TestListsFileEntryBound: an operator state file of many empty entries
// costs a reader a slice header per byte; past checkpoint.MaxListEntries
// (over all its lists) it is refused naming the file and the list, and
// the writer refuses to write what the reader would refuse.
func TestListsFileEntryBound(t *testing.T) {
	file := func(counts ...int) []byte {
		b := []byte(listsMagic + "\x01")
		for i, n := range counts {
			b = append(b, 2, 'l', byte('0'+i), byte(state.Split))
			b = binary.AppendUvarint(b, uint64(n))
			b = append(b, make([]byte, n)...) // n empty entries
		}
		return b
	}
	if _, err := readLists(file(checkpoint.MaxListEntries/2, checkpoint.MaxListEntries/2), "ok"); err != nil {
		t.Fatalf("%d entries: %v", checkpoint.MaxListEntries, err)
	}
	for _, counts := range [][]int{{checkpoint.MaxListEntries + 1}, {checkpoint.MaxListEntries, 1}} {
		_, err := readLists(file(counts...), "chk-3/0-0-operator")
		if err == nil || !strings.Contains(err.Error(), "operator state file chk-3/0-0-operator") || !strings.Contains(err.Error(), "more than 4194304 entries") {
			t.Errorf("lists of %v empty entries: %v, want a refusal naming the file and the bound", counts, err)
		}
	}
	files := memFiles{}
	_, _, err := writeLists(files, "big", []listCopy{{name: "a", mode: state.Union, entries: make([][]byte, checkpoint.MaxListEntries)}, {name: "b", mode: state.Split, entries: make([][]byte, 1)}})
	if err == nil || !strings.Contains(err.Error(), "operator state file big") {
		t.Errorf("writing %d entries: %v, want a refusal", checkpoint.MaxListEntries+1, err)
	}
	if _, ok := files["big"]; ok {
		t.Error("the refused file was created")
	}
}

// FuzzReadLists: readLists never panics and accepts only what it can re-encode.
func FuzzReadLists(f *testing.F) {
	files := memFiles{}
	_, _, _ = writeLists(files, "f", []listCopy{{name: "l", mode: state.Union, entries: [][]byte{[]byte("abc")}}})
	f.Add(files["f"].Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		lists, err := readLists(b, "f")
		if err != nil {
			return
		}
		// What is accepted is within the bound and writes back to the same lists.
		var in []listCopy
		n := 0
		for _, l := range lists {
			in = append(in, l)
			n += len(l.entries)
		}
		if n > checkpoint.MaxListEntries {
			t.Fatalf("%d entries accepted, more than %d", n, checkpoint.MaxListEntries)
		}
		out := memFiles{}
		if _, _, err := writeLists(out, "g", in); err != nil {
			t.Fatalf("accepted lists do not write back: %v", err)
		}
		again, err := readLists(out["g"].Bytes(), "g")
		if err != nil || len(again) != len(lists) {
			t.Fatalf("written back: %d lists, %v", len(again), err)
		}
	})
}

// TestSplitPosition round-trips a source's split entry and refuses another split count.
func TestSplitPosition(t *testing.T) {
	e := appendSplitPosition(nil, 5, 16, 1234, -1)
	sp, err := decodeSplitPosition(e, 16, 2)
	if err != nil || sp.split != 5 || sp.pos[0] != 1234 || sp.pos[1] != -1 {
		t.Fatalf("%+v %v", sp, err)
	}
	if _, err := decodeSplitPosition(e, 32, 2); err == nil || !strings.Contains(err.Error(), "pipeline.max-parallelism") {
		t.Fatalf("other split count: %v", err)
	}
	if _, err := decodeSplitPosition(appendSplitPosition(nil, 16, 16, 0), 16, 1); err == nil {
		t.Fatal("split 16 of 16 accepted")
	}
	if _, err := decodeSplitPosition(e, 16, 1); err == nil {
		t.Fatal("trailing bytes accepted")
	}
}

// TestReplayWarnings: a job with a socket source is warned about, naming it.
func TestReplayWarnings(t *testing.T) {
	s, err := ParseSpec([]byte("name: j\noperators:\n"+
		"  - {name: lines, type: socket, host: localhost, port: 9999}\n"+
		"  - {name: p, type: print, input: lines}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := s.ReplayWarnings()
	if len(w) != 1 || !strings.Contains(w[0], `operator "lines" (socket) cannot replay its input`) {
		t.Fatalf("warnings %q", w)
	}
	s, err = ParseSpec([]byte("name: j\noperators:\n  - {name: g, type: generator}\n  - {name: p, type: print, input: g}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := s.ReplayWarnings(); len(w) != 0 {
		t.Fatalf("warnings for a generator: %q", w)
	}
}

// failingFiles creates writers that fail after limit bytes.
type failingFiles struct{ limit int }

func (f failingFiles) Create(name string) (checkpoint.FileWriter, error) {
	return &failingWriter{left: f.limit}, nil
}
func (failingFiles) SharedAllowed() bool { return false }
func (f failingFiles) CreateShared(name string) (checkpoint.FileWriter, error) {
	return f.Create(name)
}

type failingWriter struct {
	left    int
	aborted bool
}

func (w *failingWriter) Write(b []byte) (int, error) {
	if len(b) > w.left {
		return 0, errors.New("disk full")
	}
	w.left -= len(b)
	return len(b), nil
}
func (w *failingWriter) Commit() (checkpoint.FileRef, error) { return checkpoint.FileRef{}, nil }
func (w *failingWriter) Abort()                              { w.aborted = true }

// TestListsFileWriteError: a write that fails, including the buffered tail flushed last,
// fails the operator state file rather than committing it short.
func TestListsFileWriteError(t *testing.T) {
	lists := []listCopy{{name: "l", mode: state.Split, entries: [][]byte{[]byte("abc")}}}
	for _, limit := range []int{0, 3} {
		if _, _, err := writeLists(failingFiles{limit: limit}, "f", lists); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("limit %d: %v", limit, err)
		}
	}
}
