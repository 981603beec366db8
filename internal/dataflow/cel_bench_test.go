package dataflow

import (
	"context"
	"testing"
)

// BenchmarkEval measures one expression evaluation on the per-record hot path.
func BenchmarkEval(b *testing.B) {
	s := Schema{{Name: "id", Kind: KindInt}, {Name: "key", Kind: KindString}, {Name: "value", Kind: KindInt}}
	for _, src := range []string{"value % 2 == 0", `key.startsWith("key-1") && value > 10`, `key.contains("y-1")`, `words(key).exists(w, w == "key")`} {
		b.Run(src, func(b *testing.B) {
			e, err := compileExpr(s, src, 0)
			if err != nil {
				b.Fatal(err)
			}
			a := newActivation(context.Background(), s)
			r := Record{Int(1), String("key-12"), Int(42)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.eval(e, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
