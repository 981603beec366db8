package dataflow

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"empty", Record{}},
		{"null", Record{Null()}},
		{"bools", Record{Bool(true), Bool(false)}},
		{"ints", Record{Int(0), Int(-1), Int(1), Int(math.MaxInt64), Int(math.MinInt64)}},
		{"floats", Record{Float(0), Float(-1.5), Float(math.Inf(1)), Float(math.NaN()), Float(math.SmallestNonzeroFloat64)}},
		{"strings", Record{String(""), String("hello"), String(strings.Repeat("x", 300)), String("ünïcødé")}},
		{"bytes", Record{Bytes(nil), Bytes([]byte{0, 1, 255})}},
		{"mixed", Record{Int(42), String("key-2"), Float(3.25), Null(), Bool(true), Bytes([]byte("b"))}},
	}
	var dst Record
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendRecord(nil, tt.rec)
			if err := DecodeRecord(b, &dst); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(dst) != len(tt.rec) {
				t.Fatalf("got %d values, want %d", len(dst), len(tt.rec))
			}
			for i := range dst {
				// Values compare bit for bit, so NaN round-trips are checked too.
				if dst[i] != tt.rec[i] {
					t.Errorf("value %d: got %#v, want %#v", i, dst[i], tt.rec[i])
				}
			}
		})
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	good := AppendRecord(nil, Record{Int(7), String("abc")})
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "bad value count at offset 0"},
		{"huge count", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, "exceeds remaining"},
		{"truncated", good[:len(good)-1], "exceeds remaining"},
		{"trailing", append(append([]byte{}, good...), 0), "trailing bytes at offset"},
		{"bad tag", []byte{1, 99}, "unknown kind tag 99 at offset 1"},
		{"any on wire", []byte{1, byte(KindAny)}, "unknown kind tag 6 at offset 1"},
		{"bad bool", []byte{1, byte(KindBool), 2}, "bad bool at offset 1"},
		{"short float", []byte{1, byte(KindFloat), 1, 2}, "truncated float at offset 2"},
		{"bad varint", []byte{1, byte(KindInt), 0x80}, "bad varint at offset 2"},
		{"missing value", []byte{2, byte(KindInt), 2}, "truncated at offset 3 (value 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			err := DecodeRecord(tt.in, &r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, Record{Int(1), String("key-1"), Int(1)}))
	f.Add(AppendRecord(nil, Record{Float(2.5), Bool(true), Null(), Bytes([]byte{1})}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add(AppendRecord(nil, Record{Int(2), Null(), Struct(Record{Int(1), String("x"), Struct(Record{Float(1)})}), Struct(nil)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := DecodeRecord(b, &r); err != nil {
			return
		}
		// Every nested value of an accepted record reads without error or panic.
		var walk func(v Value, depth int)
		walk = func(v Value, depth int) {
			if v.Kind() != KindStruct {
				return
			}
			fields, err := v.Fields(nil)
			if err != nil {
				t.Fatalf("nested record of an accepted record: %v", err)
			}
			for i, f := range fields {
				if g := v.Field(i); g != f {
					t.Fatalf("Field(%d) = %v, Fields gives %v", i, g, f)
				}
				walk(f, depth+1)
			}
			_ = v.Text()
		}
		for _, v := range r {
			walk(v, 0)
		}
		// Anything accepted must survive a round trip (varints may be non-minimal on input,
		// so compare values rather than bytes).
		enc := AppendRecord(nil, r)
		var r2 Record
		if err := DecodeRecord(enc, &r2); err != nil {
			t.Fatalf("re-decode of %x: %v", enc, err)
		}
		if !slices.Equal(r, r2) {
			t.Fatalf("round trip differs: %v vs %v", r, r2)
		}
	})
}

// benchRecord is about 100 bytes encoded.
var benchRecord = Record{Int(123456), String("key-42"), Int(987654321), Float(3.14159),
	String("the quick brown fox jumps over the lazy dog, again and again!!"), Bool(true)}

func BenchmarkCodec(b *testing.B) {
	buf := AppendRecord(nil, benchRecord)
	b.Logf("encoded size %d bytes", len(buf))
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			buf = AppendRecord(buf[:0], benchRecord)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		var r Record
		for b.Loop() {
			if err := DecodeRecord(buf, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
