package dataflow

import (
	"math"
	"testing"
)

// TestAggCodecRoundTrip checks that the fixed-layout accumulator codec gives back every field,
// for every kind of min/max value, and that a decoded string does not alias the encoded bytes.
func TestAggCodecRoundTrip(t *testing.T) {
	var c aggCodec
	for _, st := range []aggState{
		{},
		{count: 1, n: 1, isum: -5, fsum: -5, minmax: Int(-5)},
		{count: math.MaxInt64, n: math.MinInt64, isum: math.MinInt64, fsum: math.Inf(-1), float: true, minmax: Float(math.NaN())},
		{count: 3, n: 2, fsum: 0.5, float: true, minmax: Float(0.5)},
		{count: 2, n: 2, minmax: String("zeta")},
		{count: 2, n: 2, minmax: Bytes([]byte{0, 1, 2})},
		{count: 2, n: 2, minmax: Bool(true)},
		{count: 2, n: 2, minmax: String("")},
	} {
		b := c.Append(nil, st)
		got, err := c.Decode(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", st, err)
		}
		for i := range b {
			b[i] = 0xff // the decoded state must not alias b
		}
		same := got.count == st.count && got.n == st.n && got.isum == st.isum && got.float == st.float &&
			math.Float64bits(got.fsum) == math.Float64bits(st.fsum) &&
			got.minmax.kind == st.minmax.kind && got.minmax.n == st.minmax.n && got.minmax.s == st.minmax.s
		if !same {
			t.Errorf("round trip of %+v gave %+v", st, got)
		}
	}
}

// TestAggCodecMalformed checks that corrupt accumulator bytes give an error, never a panic.
func TestAggCodecMalformed(t *testing.T) {
	var c aggCodec
	good := c.Append(nil, aggState{count: 1, n: 1, minmax: String("abc")})
	bad := map[string][]byte{
		"empty":       nil,
		"short":       good[:aggFixedLen],
		"truncated":   good[:len(good)-1],
		"bad flag":    append(append(append([]byte(nil), good[:33]...), 7), good[34:]...),
		"bad format":  append([]byte{0x06}, good[1:]...),
		"old format":  AppendRecord(nil, Record{Int(1), Int(1), Int(0), Float(0), Bool(false), String("abc")}),
		"two values":  append(append([]byte(nil), good[:aggFixedLen]...), 2, byte(KindNull), byte(KindNull)),
		"extra bytes": append(append([]byte(nil), good...), 0),
	}
	for name, b := range bad {
		if _, err := c.Decode(b); err == nil {
			t.Errorf("%s: decode of %x succeeded, want an error", name, b)
		}
	}
}
