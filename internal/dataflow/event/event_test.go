package event

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"unsafe"
)

func TestAppendDecodeRoundTrip(t *testing.T) {
	cases := []struct {
		e    Event
		wire string // hex
	}{
		{Event{Kind: KindBarrier, Barrier: Barrier{ID: 1, Timestamp: 1700000000000, Type: Checkpoint}},
			"01" + "0000000000000001" + "0000018bcfe56800" + "00"},
		{Event{Kind: KindBarrier, Barrier: Barrier{ID: math.MaxInt64, Timestamp: -1, Type: SavepointTerminate}},
			"01" + "7fffffffffffffff" + "ffffffffffffffff" + "03"},
		{Event{Kind: KindBarrier, Barrier: Barrier{ID: 42, Type: Savepoint}}, "01" + "000000000000002a" + "0000000000000000" + "01"},
		{Event{Kind: KindBarrier, Barrier: Barrier{ID: 42, Type: SavepointSuspend}}, "01" + "000000000000002a" + "0000000000000000" + "02"},
		{Event{Kind: KindCancelBarrier, Barrier: Barrier{ID: 7}}, "02" + "0000000000000007"},
		{Event{Kind: KindEndOfData}, "03"},
		{Event{Kind: KindWatermark, Watermark: 1700000000000}, "04" + "0000018bcfe56800"},
		{Event{Kind: KindWatermark, Watermark: math.MaxInt64}, "04" + "7fffffffffffffff"},
		{Event{Kind: KindWatermark, Watermark: math.MinInt64}, "04" + "8000000000000000"},
		{Event{Kind: KindWatermarkStatus, Status: Idle}, "05" + "01"},
		{Event{Kind: KindWatermarkStatus, Status: Active}, "05" + "00"},
	}
	for _, c := range cases {
		p := Append(nil, c.e)
		if got := hex.EncodeToString(p); got != c.wire {
			t.Errorf("Append(%v) = %s, want %s", c.e, got, c.wire)
		}
		if len(p) > MaxSize {
			t.Errorf("%v: %d bytes, more than MaxSize", c.e, len(p))
		}
		got, err := Decode(p)
		if err != nil || got != c.e {
			t.Errorf("Decode(%s) = %v, %v; want %v", c.wire, got, err, c.e)
		}
	}
	// Append appends.
	if p := Append([]byte("x"), Event{Kind: KindEndOfData}); string(p) != "x\x03" {
		t.Errorf("Append to a prefix: %q", p)
	}
	// Fields the kind does not carry are not encoded.
	p := Append(nil, Event{Kind: KindCancelBarrier, Barrier: Barrier{ID: 3, Timestamp: 99, Type: Savepoint}})
	if got, _ := Decode(p); got != (Event{Kind: KindCancelBarrier, Barrier: Barrier{ID: 3}}) {
		t.Errorf("cancel barrier: %v", got)
	}
}

func TestDecodeRefuses(t *testing.T) {
	barrier := Append(nil, Event{Kind: KindBarrier, Barrier: Barrier{ID: 5}})
	cases := []struct {
		name, hex, want string
	}{
		{"empty", "", "empty payload"},
		{"kind 0", "00", "unknown kind 0"},
		{"kind 6", "06", "unknown kind 6"},
		{"kind 255", "ff0000", "unknown kind 255"},
		{"short watermark", "04" + "00000001", "WATERMARK has 5 bytes, want 9"},
		{"watermark status", "05" + "02", "WATERMARK_STATUS has unknown status 2"},
		{"short watermark status", "05", "WATERMARK_STATUS has 1 bytes, want 2"},
		{"short barrier", hex.EncodeToString(barrier[:17]), "BARRIER has 17 bytes, want 18"},
		{"long barrier", hex.EncodeToString(append(barrier, 0)), "BARRIER has 19 bytes, want 18"},
		{"barrier id 0", "01" + "0000000000000000" + "0000000000000000" + "00", "checkpoint id 0, want 1.."},
		{"barrier id negative", "01" + "8000000000000000" + "0000000000000000" + "00", "checkpoint id 9223372036854775808"},
		{"snapshot type", "01" + "0000000000000005" + "0000000000000000" + "04", "BARRIER 5 has unknown snapshot type 4"},
		{"cancel id 0", "02" + "0000000000000000", "CANCEL_BARRIER has checkpoint id 0"},
		{"short cancel", "02" + "00000001", "CANCEL_BARRIER has 5 bytes, want 9"},
		{"end of data with data", "0300", "END_OF_DATA has 2 bytes, want 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := hex.DecodeString(c.hex)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Decode(p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Decode(%s): %v, want an error containing %q", c.hex, err, c.want)
			}
		})
	}
}

func TestAppendPanicsOnUnencodableKinds(t *testing.T) {
	for _, k := range []Kind{0, 6, 9} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Append(%v) did not panic", k)
				}
			}()
			Append(nil, Event{Kind: k})
		}()
	}
}

// TestDeliverySize keeps Delivery returnable in registers (see its doc).
func TestDeliverySize(t *testing.T) {
	if n := unsafe.Sizeof(Delivery{}); n > 4*unsafe.Sizeof(uintptr(0)) {
		t.Fatalf("Delivery is %d bytes, more than four words", n)
	}
}

func TestNames(t *testing.T) {
	for v, want := range map[string]string{
		KindBarrier.String():                                          "BARRIER",
		Kind(9).String():                                              "event kind 9",
		SavepointTerminate.String():                                   "savepoint-terminate",
		SnapshotType(7).String():                                      "snapshot type 7",
		DeliverEnd.String():                                           "end of partition",
		DeliveryKind(12).String():                                     "delivery kind 12",
		Event{Kind: KindEndOfData}.String():                           "END_OF_DATA",
		Event{Kind: KindWatermark, Watermark: 7}.String():             "WATERMARK 7",
		Event{Kind: KindWatermark, Watermark: math.MaxInt64}.String(): "WATERMARK MAX",
		Event{Kind: KindWatermarkStatus, Status: Idle}.String():       "WATERMARK_STATUS IDLE",
		DeliverTimedRecord.String():                                   "timed record",
		Event{Kind: KindBarrier, Barrier: Barrier{ID: 3, Timestamp: 10, Type: Savepoint}}.String(): "BARRIER 3 (savepoint at 10)",
	} {
		if v != want {
			t.Errorf("got %q, want %q", v, want)
		}
	}
}

// FuzzEvent checks that Decode never panics and accepts only canonical
// payloads: re-encoding what it accepted gives back the same bytes.
func FuzzEvent(f *testing.F) {
	f.Add(Append(nil, Event{Kind: KindBarrier, Barrier: Barrier{ID: 1, Timestamp: 1700000000000}}))
	f.Add(Append(nil, Event{Kind: KindBarrier, Barrier: Barrier{ID: math.MaxInt64, Timestamp: -5, Type: SavepointTerminate}}))
	f.Add(Append(nil, Event{Kind: KindCancelBarrier, Barrier: Barrier{ID: 2}}))
	f.Add(Append(nil, Event{Kind: KindEndOfData}))
	f.Add([]byte{byte(KindWatermark), 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(Append(nil, Event{Kind: KindWatermark, Watermark: math.MinInt64}))
	f.Add(Append(nil, Event{Kind: KindWatermarkStatus, Status: Idle}))
	f.Add([]byte{})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := Decode(p)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(p) > MaxSize {
			t.Fatalf("accepted %d bytes, more than MaxSize", len(p))
		}
		if got := Append(nil, e); !bytes.Equal(got, p) {
			t.Fatalf("Append(Decode(%x)) = %x", p, got)
		}
	})
}
