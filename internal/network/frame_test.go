package network

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

func header(t FrameType, n uint32) []byte {
	h := make([]byte, headerSize)
	putHeader(h, t, 0)
	binary.BigEndian.PutUint32(h[4:], n)
	return h
}

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{Type: FrameHello, Payload: appendHello(nil, ChannelID{Job: "abc123", Attempt: 2, Edge: 3, Source: 4, Target: 5, Vertex: 6})},
		{Type: FrameAccept, Payload: make([]byte, 12)},
		{Type: FrameError, Payload: []byte("no such gate")},
		{Type: FrameData, Payload: appendRecord(appendRecord(nil, []byte("a")), bytes.Repeat([]byte("b"), 300))},
		{Type: FrameCredit, Payload: []byte{0, 0, 0, 7}},
		{Type: FrameEndOfPartition, Payload: []byte{}},
		{Type: FrameEOPAck, Payload: []byte{}},
		{Type: FrameEvent, Payload: event.Append(nil, event.Event{Kind: event.KindBarrier, Barrier: event.Barrier{ID: 1 << 40, Timestamp: 1700000000000, Type: event.SavepointSuspend}})},
		{Type: FrameEvent, Payload: event.Append(nil, event.Event{Kind: event.KindCancelBarrier, Barrier: event.Barrier{ID: 9}})},
		{Type: FrameEvent, Payload: event.Append(nil, event.Event{Kind: event.KindEndOfData})},
	}
	var wire bytes.Buffer
	for _, f := range frames {
		if err := WriteFrame(&wire, f); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(&wire)
	for _, want := range frames {
		got, err := ReadFrame(br, 1024)
		if err != nil {
			t.Fatalf("%v: %v", want.Type, err)
		}
		if got.Type != want.Type || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("got %v %x, want %v %x", got.Type, got.Payload, want.Type, want.Payload)
		}
	}
	if _, err := ReadFrame(br, 1024); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	// A barrier frame is 26 bytes on the wire, and its header says version 3
	// and type 8.
	wire.Reset()
	WriteFrame(&wire, frames[len(frames)-3])
	if b := wire.Bytes(); len(b) != 26 || b[1] != 3 || b[2] != 8 {
		t.Fatalf("barrier frame % x", b)
	}
	if FrameEvent.String() != "EVENT" {
		t.Fatalf("FrameEvent is %q", FrameEvent)
	}
}

func TestReadFrameErrors(t *testing.T) {
	cases := []struct {
		name, input, want string
	}{
		{"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic 0x47: not a sluice data connection (plaintext HTTP?)"},
		{"tls", "\x16\x03\x01\x02\x00\x01\x00\x01", "bad magic 0x16"},
		{"short header", "\xa5\x01\x04", "truncated frame header: got 3 of 8 bytes"},
		{"version", "\xa5\x09\x04\x00\x00\x00\x00\x00", "unsupported data protocol version 9"},
		// A version 1 peer (no EVENT frame) fails at its first frame, not at
		// its first barrier.
		{"version 1", "\xa5\x01\x01\x00\x00\x00\x00\x00", "unsupported data protocol version 1 (this build speaks version 3): run the same sluice version on all TaskManagers"},
		// A version 2 peer (no event time) too, rather than at its first
		// watermark or timed buffer.
		{"version 2", "\xa5\x02\x01\x00\x00\x00\x00\x00", "unsupported data protocol version 2 (this build speaks version 3)"},
		{"reserved", "\xa5\x03\x04\x01\x00\x00\x00\x00", "reserved header byte 0x01"},
		{"unknown type", "\xa5\x03\x63\x00\x00\x00\x00\x00", "unknown frame type 99"},
		{"oversized event", string(header(FrameEvent, 33)), "EVENT frame of 33 bytes exceeds the limit of 32"},
		{"truncated event", string(header(FrameEvent, 18)) + "\x01\x00", "truncated EVENT frame: got 2 of 18 payload bytes"},
		{"oversized", string(header(FrameData, 3000000)), "frame of 3000000 bytes exceeds the limit of 1048576 (taskmanager.network.max-frame-size)"},
		{"oversized hello", string(header(FrameHello, 5000)), "HELLO frame of 5000 bytes exceeds the limit"},
		{"bad credit", string(header(FrameCredit, 2)) + "\x00\x01", "CREDIT frame has 2 payload bytes, want 4"},
		{"truncated payload", string(header(FrameData, 100)) + "abc", "truncated DATA frame: got 3 of 100 payload bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(strings.NewReader(c.input)), DefaultMaxFrameSize)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestParseHello(t *testing.T) {
	id := ChannelID{Job: "0123456789abcdef", Attempt: 1, Edge: 300, Source: 7, Target: 1 << 20, Vertex: 9}
	got, err := parseHello(appendHello(nil, id))
	if err != nil || got != id {
		t.Fatalf("got %+v, %v; want %+v", got, err, id)
	}
	bad := map[string][]byte{
		"empty":      nil,
		"job length": {10, 'a'},
		"job bytes":  append([]byte{3}, "a b"...),
		"truncated":  {1, 'a', 1, 2},
		"trailing":   append(appendHello(nil, id), 0),
		"range":      append([]byte{1, 'a'}, binary.AppendUvarint(nil, 1<<40)...),
	}
	for name, p := range bad {
		if _, err := parseHello(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestValidateRecords(t *testing.T) {
	good := appendRecord(appendRecord(appendRecord(nil, nil), []byte("x")), make([]byte, 200))
	if n, err := validateRecords(good, false); n != 3 || err != nil {
		t.Fatalf("got %d, %v", n, err)
	}
	timed := appendRecord(appendRecord(nil, binary.AppendVarint(nil, -5)), append(binary.AppendVarint(nil, 1<<40), "rec"...))
	if n, err := validateRecords(timed, true); n != 2 || err != nil {
		t.Fatalf("timed: got %d, %v", n, err)
	}
	if _, err := validateRecords(appendRecord(nil, nil), true); err == nil || !strings.Contains(err.Error(), "no well-formed timestamp") {
		t.Fatalf("empty timed record: got %v", err)
	}
	if _, err := validateRecords(appendRecord(nil, []byte{0x80, 0x80}), true); err == nil || !strings.Contains(err.Error(), "no well-formed timestamp") {
		t.Fatalf("truncated timestamp: got %v", err)
	}
	if _, err := validateRecords([]byte{5, 'a'}, false); err == nil || !strings.Contains(err.Error(), "record of 5 bytes at offset 1 runs past the end of the 2-byte buffer") {
		t.Fatalf("got %v", err)
	}
	if _, err := validateRecords([]byte{0x80, 0x80}, false); err == nil || !strings.Contains(err.Error(), "malformed record length") {
		t.Fatalf("got %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	var wire bytes.Buffer
	WriteFrame(&wire, Frame{Type: FrameHello, Payload: appendHello(nil, ChannelID{Job: "j", Edge: 1})})
	WriteFrame(&wire, Frame{Type: FrameData, Payload: appendRecord(nil, []byte("record"))})
	WriteFrame(&wire, Frame{Type: FrameDataTimed, Payload: appendRecord(nil, append(binary.AppendVarint(nil, 1700000000000), "record"...))})
	WriteFrame(&wire, Frame{Type: FrameCredit, Payload: []byte{0, 0, 0, 2}})
	WriteFrame(&wire, Frame{Type: FrameEvent, Payload: event.Append(nil, event.Event{Kind: event.KindBarrier, Barrier: event.Barrier{ID: 3, Timestamp: 17}})})
	WriteFrame(&wire, Frame{Type: FrameEvent, Payload: event.Append(nil, event.Event{Kind: event.KindEndOfData})})
	WriteFrame(&wire, Frame{Type: FrameEndOfPartition})
	f.Add(wire.Bytes())
	for _, e := range []event.Event{
		{Kind: event.KindBarrier, Barrier: event.Barrier{ID: 1, Type: event.SavepointTerminate}},
		{Kind: event.KindCancelBarrier, Barrier: event.Barrier{ID: 1}},
		{Kind: event.KindWatermark, Watermark: math.MaxInt64},
		{Kind: event.KindWatermarkStatus, Status: event.Idle},
	} {
		p := event.Append(nil, e)
		f.Add(append(header(FrameEvent, uint32(len(p))), p...))
	}
	f.Add(append(header(FrameEvent, 9), 4, 0, 0, 0, 0, 0, 0, 0, 1)) // WATERMARK 1
	f.Add(append(header(FrameEvent, 2), 5, 7))                      // bad WATERMARK_STATUS
	f.Add(append(header(FrameDataTimed, 2), 1, 0x80))               // truncated timestamp
	f.Add(header(FrameEvent, 40))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(header(FrameData, 3000000))
	f.Add(header(FrameError, 4))
	f.Add([]byte{frameMagic})
	const maxSize = 4096
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		for {
			fr, err := ReadFrame(br, maxSize)
			if err != nil {
				if err != io.EOF && err.Error() == "" {
					t.Fatal("empty error")
				}
				return
			}
			if len(fr.Payload) > maxSize {
				t.Fatalf("payload of %d bytes exceeds %d", len(fr.Payload), maxSize)
			}
			if fr.Type == FrameData || fr.Type == FrameDataTimed {
				if _, err := validateRecords(fr.Payload, fr.Type == FrameDataTimed); err == nil && fr.Type == FrameDataTimed {
					g := &InputGate{cur: fr.Payload, kind: event.DeliverTimedRecord}
					for g.pos < len(g.cur) {
						if _, k := binary.Varint(g.record()); k <= 0 {
							t.Fatalf("validated timed record without a timestamp in %x", fr.Payload)
						}
					}
				}
			}
			if fr.Type == FrameHello {
				parseHello(fr.Payload)
			}
			if fr.Type == FrameEvent {
				if len(fr.Payload) > event.MaxSize {
					t.Fatalf("EVENT payload of %d bytes exceeds %d", len(fr.Payload), event.MaxSize)
				}
				if e, err := event.Decode(fr.Payload); err == nil && !bytes.Equal(event.Append(nil, e), fr.Payload) {
					t.Fatalf("EVENT %x decodes to %v, which encodes differently", fr.Payload, e)
				}
			}
		}
	})
}

// FuzzDataBuffer checks that a buffer that passes validation can be read by
// the gate's decoder without panicking and yields the same records.
func FuzzDataBuffer(f *testing.F) {
	f.Add(appendRecord(appendRecord(nil, []byte("hello")), make([]byte, 300)))
	f.Add([]byte{0x80, 0x01})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add(appendHello(nil, ChannelID{Job: "abc", Attempt: 1, Edge: 2}))
	f.Fuzz(func(t *testing.T, buf []byte) {
		parseHello(buf)
		validateRecords(buf, true)
		n, err := validateRecords(buf, false)
		if err != nil {
			return
		}
		g := &InputGate{cur: buf}
		total := 0
		for i := 0; i < n; i++ {
			if g.pos >= len(g.cur) {
				t.Fatalf("decoded %d of %d records", i, n)
			}
			total += len(g.record())
		}
		if g.pos != len(buf) || total > len(buf) {
			t.Fatalf("decoder stopped at %d of %d", g.pos, len(buf))
		}
	})
}

func TestBadMagicHints(t *testing.T) {
	for b, want := range map[byte]string{'P': "HTTP", 0x16: "TLS", 0x00: "not a sluice data connection"} {
		if err := badMagic(b); !strings.Contains(err.Error(), want) {
			t.Errorf("0x%02x: %v", b, err)
		}
	}
	if errors.Is(badMagic(1), io.EOF) {
		t.Fatal("bad magic must not look like a clean close")
	}
}
