package dataflow

import (
	"context"
	"fmt"
	"math"
	"testing"
)

// TestNativeMatchesCEL evaluates expressions of every native shape on records with edge
// values (nulls, a null nested object, overflowing ints, zero divisors, NaN, -0) both
// natively where the native form answers and with CEL alone, and requires the same value or
// the same error. The native form must be compiled for each of them: a shape that silently
// lost it would pass the comparison and cost several times more.
func TestNativeMatchesCEL(t *testing.T) {
	schema := Schema{
		{Name: "i", Kind: KindInt}, {Name: "j", Kind: KindInt}, {Name: "f", Kind: KindFloat},
		{Name: "g", Kind: KindFloat}, {Name: "s", Kind: KindString}, {Name: "b", Kind: KindBool},
		{Name: "bid", Kind: KindStruct, Fields: Schema{{Name: "price", Kind: KindInt}, {Name: "url", Kind: KindString}}},
	}
	ints := []int64{0, 1, -1, 7, -7, 2, math.MaxInt64, math.MinInt64, math.MaxInt64 / 2}
	floats := []float64{0, math.Copysign(0, -1), 1.5, -2.25, math.NaN(), math.Inf(1), math.MaxFloat64}
	var records []Record
	k := 0
	for _, i := range ints {
		for _, j := range ints {
			// Every pair of floats, over the pairs of ints.
			f, g := floats[k%len(floats)], floats[(k/len(floats))%len(floats)]
			k++
			bid := Struct(Record{Int(j), String(fmt.Sprint(i))})
			if j == 2 {
				bid = Null() // a null nested object: its fields read as null
			}
			records = append(records, Record{Int(i), Int(j), Float(f), Float(g), String(fmt.Sprint(j)), Bool(i > j), bid})
		}
	}
	// Nulls where values are expected: the native form must hand these to CEL.
	records = append(records,
		Record{Null(), Int(1), Null(), Float(1), Null(), Null(), Null()},
		Record{Int(1), Null(), Float(1), Null(), String("x"), Bool(true), Struct(Record{Null(), Null()})},
	)
	exprs := []string{
		"i", "bid.price", "bid.url", "s",
		"i == j", "i != j", "i < j", "i <= j", "i > j", "i >= j",
		"f == g", "f != g", "f < g", "f <= g", "f > g", "f >= g",
		"s == '7'", "s < bid.url", "s >= '1'", "b == true", "b != (i < j)",
		"i + j", "i - j", "i * j", "i / j", "i % j", "-i", "i + 1 - j * 2",
		"f + g", "f - g", "f * g", "f / g", "-f", "double(i) * 0.908", "double(f)", "double(bid.price) * 0.908",
		"bid.price > 100", "bid.price == j", "bid.price * 2 + i",
		"i > 0 && j > 0", "i > 0 || j > 0", "!(i > j)", "!b", "b && f < g", "b || f < g",
		"i == 7 || i == 2 || bid.price == 1", "(i > 0 && bid.price > 0) || !b",
		// One native side of && and || decides what it decides; CEL the rest.
		"i > 0 && s.startsWith('1')", "s.startsWith('1') && i > 0", "s.startsWith('1') || i == 7",
		"i == 7 || size(bid.url) > 1", "i > 0 && bid.price / (i - 1) > 2",
		"s in ['1', '7', 'x']", "i in [1, 2, 7]", "bid.url in ['1', '2']", "bid.price in [7, -7] && b",
	}
	ctx := context.Background()
	for _, src := range exprs {
		x, err := compileExpr(schema, src, 0)
		if err != nil {
			t.Fatalf("compile %q: %v", src, err)
		}
		if x.native == nil {
			t.Errorf("%q: no native form", src)
			continue
		}
		plain := *x
		plain.native = nil
		nat, cel := newActivation(ctx, schema), newActivation(ctx, schema)
		for _, r := range records {
			got, gerr := nat.evalValue(x, r)
			want, werr := cel.evalValue(&plain, r)
			if (gerr != nil) != (werr != nil) || (gerr != nil && gerr.Error() != werr.Error()) {
				t.Errorf("%q on %v: native gave error %v, CEL %v", src, r, gerr, werr)
				continue
			}
			if gerr == nil && !sameValue(got, want) {
				t.Errorf("%q on %v: native gave %v (%v), CEL %v (%v)", src, r, got, got.Kind(), want, want.Kind())
			}
		}
	}
}

// sameValue compares two values bit for bit, so NaN equals NaN and -0 differs from 0.
func sameValue(a, b Value) bool { return a.kind == b.kind && a.n == b.n && a.s == b.s }

// TestNativeNotCompiled: the expressions outside the native shapes still compile to
// CEL alone and are evaluated by it.
func TestNativeNotCompiled(t *testing.T) {
	schema := Schema{{Name: "i", Kind: KindInt}, {Name: "f", Kind: KindFloat}, {Name: "s", Kind: KindString},
		{Name: "bid", Kind: KindStruct, Fields: Schema{{Name: "price", Kind: KindInt}}}}
	for _, src := range []string{"i == 1.0", "has(bid.price)", "s.startsWith('a')", "size(s)", "int(f)", "f % 2.0 == 0.0", "1u", "s + 'x'", "[i, 1]",
		"s.startsWith('a') && size(s) > 1", "f in [1.0, 2.0]", "i in [1, j]"} {
		x, err := compileExpr(schema, src, 0)
		if err != nil {
			continue // not a valid expression at all: nothing to compare
		}
		if x.native != nil {
			t.Errorf("%q: compiled natively, but it is not a native shape", src)
		}
	}
}
