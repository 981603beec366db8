package dataflow

import (
	"fmt"
	"testing"
)

// TestAggFuncMerge: merging the accumulators of two parts of the input (a session merge)
// gives the result of folding all of it, for every function, with nulls, ints and floats,
// and empty parts.
func TestAggFuncMerge(t *testing.T) {
	vals := []Value{Int(5), Null(), Int(-3), Float(2.5), Int(9), Null(), Float(-7.25), Int(0)}
	for _, fn := range []string{"count", "sum", "min", "max", "avg"} {
		f := aggFunc{function: fn}
		if fn != "count" {
			p, _, err := Schema{{Name: "v", Kind: KindAny}}.Resolve("v")
			if err != nil {
				t.Fatal(err)
			}
			f.hasField, f.path = true, p
		}
		var all aggState
		for _, v := range vals {
			if err := f.add(&all, Record{v}); err != nil {
				t.Fatal(err)
			}
		}
		for cut := 0; cut <= len(vals); cut++ {
			var a, b aggState
			for i, v := range vals {
				st := &a
				if i >= cut {
					st = &b
				}
				if err := f.add(st, Record{v}); err != nil {
					t.Fatal(err)
				}
			}
			f.merge(&a, &b)
			if got, want := fmt.Sprint(f.result(&a)), fmt.Sprint(f.result(&all)); got != want {
				t.Errorf("%s split at %d: merged %s, want %s", fn, cut, got, want)
			}
		}
	}
}
