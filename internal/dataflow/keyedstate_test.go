package dataflow

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/aggregate.golden from the current code")

// aggInput writes a JSON input with string, int and float keys and int, float, null, missing
// and string values, so every accumulator field and key kind goes through the state codec.
func aggInput(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for i := range 300 {
		var n string
		switch i % 7 {
		case 0:
			n = "null"
		case 1:
			n = fmt.Sprintf("%d.25", i)
		case 2:
			n = fmt.Sprintf("-%d", i*3)
		default:
			n = fmt.Sprint(i % 50)
		}
		fmt.Fprintf(&b, `{"u":"user-%d","i":%d,"f":%d.5,"n":%s,"s":"s%03d"}`+"\n", i%23, i%11, i%5, n, (i*37)%101)
		if i%13 == 0 {
			fmt.Fprintf(&b, `{"u":"user-%d","i":%d,"f":0.5,"s":"zz"}`+"\n", i%23, i%11) // no n: null
		}
	}
	path := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAggregateOutputUnchanged runs aggregates of every function, over string, int, float and
// expression keys, at parallelism 1 to 4, and compares each subtask's output, in the order it
// was written, with testdata/aggregate.golden: the output of the aggregate before it kept its
// accumulators in keyed state (go test -run TestAggregateOutputUnchanged -update rewrites it).
func TestAggregateOutputUnchanged(t *testing.T) {
	in := aggInput(t)
	keys := []string{"u", "i", "f", "'i % 2 == 0'"}
	funcs := []string{"function: count", "function: sum, field: n", "function: min, field: n",
		"function: max, field: n", "function: avg, field: n", "function: min, field: s", "function: max, field: s",
		"function: sum, field: i"}
	var got strings.Builder
	for _, key := range keys {
		for _, fn := range funcs {
			for p := 1; p <= 4; p++ {
				dir := filepath.Join(t.TempDir(), "out")
				spec := "name: j\noperators:\n" +
					"  - {name: src, type: file, path: " + in + ", format: json, fields: [u, i, f, n, s]}\n" +
					"  - {name: k, type: key_by, input: src, key: " + key + "}\n" +
					"  - {name: a, type: aggregate, input: k, " + fn + ", as: r}\n" +
					"  - {name: o, type: file, input: a, path: " + dir + "}\n"
				if err := RunLocal(context.Background(), planMax(t, spec, p, 128), nil); err != nil {
					t.Fatalf("key %s %s p%d: %v", key, fn, p, err)
				}
				for i, lines := range partLines(t, dir, p) {
					fmt.Fprintf(&got, "# key %s, %s, p%d subtask %d\n", key, fn, p, i)
					for _, l := range lines {
						got.WriteString(l + "\n")
					}
				}
			}
		}
	}
	golden := filepath.Join("testdata", "aggregate.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		g, w := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("line %d: got %q, want %q (and %d/%d lines)", i+1, g[i], w[i], len(g), len(w))
			}
		}
		t.Fatalf("got %d lines, want %d", len(g), len(w))
	}
}
