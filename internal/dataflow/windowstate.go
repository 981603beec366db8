package dataflow

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// What the window operator (op_window.go) keeps and how it is written: windows, their
// encoding as a state namespace, the session list of a key, the top-N list of a window, and
// the YAML forms of the window kinds.

// window is [start, end) in ms, Flink's TimeWindow.
type window struct{ start, end int64 }

// maxTimestamp is the window's last ms: it fires when the watermark reaches it, and its
// results carry it as their timestamp.
func (w window) maxTimestamp() int64 { return w.end - 1 }

// intersects is Flink's TimeWindow.intersects: sessions that touch merge too.
func (w window) intersects(o window) bool { return w.start <= o.end && w.end >= o.start }

func (w window) cover(o window) window { return window{min(w.start, o.start), max(w.end, o.end)} }

// windowNSLen is the length of a window's encoding.
const windowNSLen = 16

// appendWindow encodes w as the state namespace and timer namespace of its contents:
// start and end big-endian with the sign bit flipped, so namespaces sort by time.
func appendWindow(dst []byte, w window) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(w.start)^1<<63)
	return binary.BigEndian.AppendUint64(dst, uint64(w.end)^1<<63)
}

func decodeWindow(b []byte) (window, error) {
	if len(b) != windowNSLen {
		return window{}, fmt.Errorf("window namespace of %d bytes, want %d", len(b), windowNSLen)
	}
	return window{int64(binary.BigEndian.Uint64(b) ^ 1<<63), int64(binary.BigEndian.Uint64(b[8:]) ^ 1<<63)}, nil
}

// floorMod is the remainder of a by b towards negative infinity (b > 0), so windows of
// times before the epoch are aligned like the others.
func floorMod(a, b int64) int64 { return ((a % b) + b) % b }

// addSat is a+b for b >= 0, saturating at math.MaxInt64 (Flink's cleanup time guard).
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// sessionsCodec encodes a key's session windows: a format byte, a uvarint count, then each
// window's 16-byte encoding.
type sessionsCodec struct{}

const sessionsFormat = 0xb1

func (sessionsCodec) Append(dst []byte, ws []window) []byte {
	dst = append(dst, sessionsFormat)
	dst = binary.AppendUvarint(dst, uint64(len(ws)))
	for _, w := range ws {
		dst = appendWindow(dst, w)
	}
	return dst
}

func (sessionsCodec) Decode(b []byte) ([]window, error) {
	if len(b) < 2 || b[0] != sessionsFormat {
		return nil, fmt.Errorf("window sessions: malformed state of %d bytes (want format %#x)", len(b), sessionsFormat)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b))/windowNSLen {
		return nil, fmt.Errorf("window sessions: malformed count")
	}
	b = b[1+k:]
	if uint64(len(b)) != n*windowNSLen {
		return nil, fmt.Errorf("window sessions: %d bytes for %d windows", len(b), n)
	}
	ws := make([]window, n)
	for i := range ws {
		w, err := decodeWindow(b[i*windowNSLen : (i+1)*windowNSLen])
		if err != nil {
			return nil, err
		}
		ws[i] = w
	}
	return ws, nil
}

// topEntry is one record of a window's top N: the ranked field's value and the record's
// encoding.
type topEntry struct {
	v   Value
	rec []byte
}

// topBefore orders a top list: the highest value first; equal values by their record's
// encoding, so the ranks do not depend on the order records arrived in.
func topBefore(a, b *topEntry) bool {
	if c := compareValues(a.v, b.v); c != 0 {
		return c > 0
	}
	return bytes.Compare(a.rec, b.rec) < 0
}

// topInsert puts e into the sorted list, keeping at most n entries.
func topInsert(list []topEntry, e topEntry, n int) []topEntry {
	i := 0
	for i < len(list) && topBefore(&list[i], &e) {
		i++
	}
	if i >= n {
		return list
	}
	list = append(list, topEntry{})
	copy(list[i+1:], list[i:])
	list[i] = e
	if len(list) > n {
		list = list[:n]
	}
	return list
}

// topCodec encodes a top list: a format byte, a uvarint count, then each record as a uvarint
// length and its encoding; the ranked field is read back from the record.
type topCodec struct {
	field   int
	scratch Record
}

const topFormat = 0xb2

func (c *topCodec) Append(dst []byte, list []topEntry) []byte {
	dst = append(dst, topFormat)
	dst = binary.AppendUvarint(dst, uint64(len(list)))
	for _, e := range list {
		dst = binary.AppendUvarint(dst, uint64(len(e.rec)))
		dst = append(dst, e.rec...)
	}
	return dst
}

func (c *topCodec) Decode(b []byte) ([]topEntry, error) {
	if len(b) < 2 || b[0] != topFormat {
		return nil, fmt.Errorf("window top: malformed state of %d bytes (want format %#x)", len(b), topFormat)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("window top: malformed count")
	}
	b = b[1+k:]
	list := make([]topEntry, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, fmt.Errorf("window top: malformed record length")
		}
		rec := append([]byte(nil), b[k:k+int(l)]...)
		b = b[k+int(l):]
		if err := DecodeRecord(rec, &c.scratch); err != nil {
			return nil, fmt.Errorf("window top: %w", err)
		}
		if c.field >= len(c.scratch) {
			return nil, fmt.Errorf("window top: record of %d fields, want field %d", len(c.scratch), c.field)
		}
		// rec is the entry's own copy: the value may alias it.
		list = append(list, topEntry{v: c.scratch[c.field], rec: rec})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("window top: %d bytes after the records", len(b))
	}
	return list, nil
}

// windowDuration is a duration option of the window operator, remembering whether it was
// set and on which line, so Check can say which option is wrong and where.
type windowDuration struct {
	d    time.Duration
	set  bool
	line int
}

// UnmarshalYAML implements yaml.Unmarshaler: a Go duration, which Check then bounds.
func (w *windowDuration) UnmarshalYAML(v *yaml.Node) error {
	const want = "a duration such as 10s, 500ms or 1m"
	if v.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want %s", v.Line, want)
	}
	d, err := time.ParseDuration(v.Value)
	if err != nil {
		return fmt.Errorf("line %d: want %s, got %q", v.Line, want, v.Value)
	}
	*w = windowDuration{d: d, set: true, line: v.Line}
	return nil
}

// MarshalJSON shows the duration as written (plans shown by the REST API), null when unset.
func (w windowDuration) MarshalJSON() ([]byte, error) {
	if !w.set {
		return []byte("null"), nil
	}
	return []byte(strconv.Quote(w.d.String())), nil
}

// slidingWindow is `sliding: {size: 10s, slide: 2s}`.
type slidingWindow struct {
	Size, Slide windowDuration
	set         bool
	line        int
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *slidingWindow) UnmarshalYAML(v *yaml.Node) error {
	*s = slidingWindow{set: true, line: v.Line}
	return durationMap(v, "{size: DURATION, slide: DURATION}", map[string]*windowDuration{"size": &s.Size, "slide": &s.Slide})
}

// sessionWindow is `session: {gap: 30s}`.
type sessionWindow struct {
	Gap  windowDuration
	set  bool
	line int
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *sessionWindow) UnmarshalYAML(v *yaml.Node) error {
	*s = sessionWindow{set: true, line: v.Line}
	return durationMap(v, "{gap: DURATION}", map[string]*windowDuration{"gap": &s.Gap})
}

// durationMap decodes a mapping of durations, every key of keys required.
func durationMap(v *yaml.Node, want string, keys map[string]*windowDuration) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping %s", v.Line, want)
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		dst, ok := keys[k.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown key %q: want %s", k.Line, k.Value, want)
		}
		if err := dst.UnmarshalYAML(val); err != nil {
			return fmt.Errorf("%s: %w", k.Value, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		if !keys[name].set {
			return fmt.Errorf("line %d: missing %s: want %s", v.Line, name, want)
		}
	}
	return nil
}
