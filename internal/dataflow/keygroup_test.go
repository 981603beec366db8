package dataflow

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// planMax plans spec at parallelism p with max-parallelism m.
func planMax(t *testing.T, spec string, p, m int) *Plan {
	t.Helper()
	s, err := ParseSpec([]byte(spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := s.PlanWith(PlanOptions{DefaultParallelism: p, MaxParallelism: m})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// partLines reads the part file of each of p subtasks of file sink o in dir.
func partLines(t *testing.T, dir string, p int) [][]string {
	t.Helper()
	out := make([][]string, p)
	for i := range p {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("part-o-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSuffix(string(b), "\n"); s != "" {
			out[i] = strings.Split(s, "\n")
		}
	}
	return out
}

func TestKeyTargetIsKeyGroupOwner(t *testing.T) {
	var keys [][]byte
	for i := range 500 {
		keys = append(keys, appendValue(nil, String("key-"+strconv.Itoa(i))), appendValue(nil, Int(int64(i))))
	}
	for _, m := range []int{1, 7, 128, 32768} {
		for p := 1; p <= min(5, m); p++ {
			for _, k := range keys {
				kg := keygroup.Of(keygroup.Hash(k), m)
				got := keyTarget(k, p, m)
				if !keygroup.RangeOf(got, p, m).Contains(kg) {
					t.Fatalf("max %d p %d key %q: target %d does not own key group %d (range %v)", m, p, k, got, kg, keygroup.RangeOf(got, p, m))
				}
			}
		}
	}
}

// TestHashEdgeRoutesByKeyGroup runs key_by into a file sink and checks that every record
// reached the subtask whose key-group range holds its key's group.
func TestHashEdgeRoutesByKeyGroup(t *testing.T) {
	for _, m := range []int{7, 128} {
		for p := 1; p <= 5; p++ {
			t.Run(fmt.Sprintf("max%d/p%d", m, p), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "out")
				spec := "name: j\noperators:\n  - {name: g, type: generator, count: 300, keys: 40}\n" +
					"  - {name: k, type: key_by, input: g, key: key}\n" +
					"  - {name: o, type: file, input: k, path: " + dir + "}\n"
				if err := RunLocal(context.Background(), planMax(t, spec, p, m), nil); err != nil {
					t.Fatal(err)
				}
				n := 0
				for i, lines := range partLines(t, dir, p) {
					for _, l := range lines {
						f := strings.Fields(l) // id key value
						kg := keygroup.Of(keygroup.Hash(appendValue(nil, String(f[1]))), m)
						if r := keygroup.RangeOf(i, p, m); !r.Contains(kg) {
							t.Errorf("record %q (key group %d) reached subtask %d, which owns %v", l, kg, i, r)
						}
						n++
					}
				}
				if n != 300 {
					t.Errorf("%d records arrived, want 300", n)
				}
			})
		}
	}
}

// TestSourceSplits checks that the generator and the file source read their splits by
// key-group range: each subtask emits exactly the records of its splits, and together they
// emit every record once, at every parallelism.
func TestSourceSplits(t *testing.T) {
	const n = 1000
	in := filepath.Join(t.TempDir(), "in.txt")
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "line-%d\n", i)
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sources := map[string]struct {
		op string
		// index is the record's position in the input (its id or line number).
		index func(line string) int
	}{
		"generator": {"{name: g, type: generator, count: " + strconv.Itoa(n) + "}", func(l string) int {
			id, _ := strconv.Atoi(strings.Fields(l)[0])
			return id
		}},
		"file": {"{name: g, type: file, path: " + in + "}", func(l string) int {
			id, _ := strconv.Atoi(strings.TrimPrefix(l, "line-"))
			return id
		}},
	}
	for name, src := range sources {
		for _, m := range []int{7, 128} {
			for p := 1; p <= 5; p++ {
				t.Run(fmt.Sprintf("%s/max%d/p%d", name, m, p), func(t *testing.T) {
					dir := filepath.Join(t.TempDir(), "out")
					spec := "name: j\noperators:\n  - " + src.op + "\n  - {name: o, type: file, input: g, path: " + dir + "}\n"
					if err := RunLocal(context.Background(), planMax(t, spec, p, m), nil); err != nil {
						t.Fatal(err)
					}
					var all []int
					for i, lines := range partLines(t, dir, p) {
						r := keygroup.RangeOf(i, p, m)
						var mine []int
						for _, l := range lines {
							x := src.index(l)
							if !r.Contains(x % m) {
								t.Errorf("subtask %d (splits %v) emitted record %d of split %d", i, r, x, x%m)
							}
							mine = append(mine, x)
						}
						if !slices.IsSorted(mine) {
							t.Errorf("subtask %d emitted out of input order: %v", i, mine)
						}
						all = append(all, mine...)
					}
					slices.Sort(all)
					for i, x := range all {
						if x != i {
							t.Fatalf("records %v...: want each of 0..%d exactly once, got %d records", all[max(0, i-2):min(len(all), i+3)], n-1, len(all))
						}
					}
					if len(all) != n {
						t.Fatalf("got %d records, want %d", len(all), n)
					}
				})
			}
		}
	}
}

func TestMaxParallelismBoundsParallelism(t *testing.T) {
	const spec = "name: j\noperators:\n  - {name: g, type: generator, count: 10}\n" +
		"  - {name: k, type: key_by, input: g, key: key}\n" +
		"  - {name: c, type: aggregate, input: k, function: count, parallelism: 9}\n" +
		"  - {name: p, type: print, input: c, parallelism: 1}\n"
	s, err := ParseSpec([]byte(spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		par, max int
		want     []string // substrings of the error; nil: no error
	}{
		{2, 9, nil},
		{2, 0, nil}, // the default, 128
		{2, 8, []string{`operator "c"`, "parallelism 9", "pipeline.max-parallelism (8)", "-D pipeline.max-parallelism=9"}},
		{8, 7, []string{`operator "g"`, "parallelism 8", "pipeline.max-parallelism (7)"}},
		{1, 40000, []string{"pipeline.max-parallelism: 40000 is outside 1..32768"}},
		{1, -1, []string{"pipeline.max-parallelism: -1"}},
	}
	for _, tt := range tests {
		p, err := s.PlanWith(PlanOptions{DefaultParallelism: tt.par, MaxParallelism: tt.max})
		if tt.want == nil {
			if err != nil {
				t.Errorf("par %d max %d: %v", tt.par, tt.max, err)
			} else if want := max(tt.max, 0); want != 0 && p.MaxParallelism != want || want == 0 && p.MaxParallelism != DefaultMaxParallelism {
				t.Errorf("par %d max %d: plan has MaxParallelism %d", tt.par, tt.max, p.MaxParallelism)
			}
			continue
		}
		if err == nil {
			t.Errorf("par %d max %d: planned, want an error", tt.par, tt.max)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("par %d max %d: error %q does not contain %q", tt.par, tt.max, err, w)
			}
		}
	}
}
