package checkpoint

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// kgRanges are the ranges of the keyed handles a restore got.
func kgRanges(r *OperatorRestore) []keygroup.Range {
	var out []keygroup.Range
	for _, k := range r.Keyed {
		out = append(out, k.KeyGroups)
	}
	return out
}

type slice struct {
	subtask  int
	from, to int64
}

func listSlices(r *OperatorRestore, name string) []slice {
	var out []slice
	for _, s := range r.Lists[name] {
		out = append(out, slice{s.Subtask, s.From, s.To})
	}
	return out
}

func eq[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type R = keygroup.Range

func rg(first, last int) R { return R{First: first, Last: last} }

// TestAssignRescale: the design's rescaling cases with max-parallelism 128.
// Keyed: old ranges at p=2 are [0,63] [64,127]; at p=3 [0,42] [43,85]
// [86,127]. Split lists ("splits", 64 entries per old subtask) are
// concatenated in old subtask order and new subtask i gets
// [i*n/p, (i+1)*n/p); the union list ("watermarks", 1 per old subtask)
// goes whole to everyone.
func TestAssignRescale(t *testing.T) {
	tests := []struct {
		name       string
		oldP, newP int
		// per new subtask
		keyGroups []R
		keyed     [][]R
		splits    [][]slice
	}{
		{
			name: "2 to 4", oldP: 2, newP: 4,
			keyGroups: []R{rg(0, 31), rg(32, 63), rg(64, 95), rg(96, 127)},
			keyed:     [][]R{{rg(0, 63)}, {rg(0, 63)}, {rg(64, 127)}, {rg(64, 127)}},
			// n = 128: [0,32) [32,64) [64,96) [96,128)
			splits: [][]slice{{{0, 0, 32}}, {{0, 32, 64}}, {{1, 0, 32}}, {{1, 32, 64}}},
		},
		{
			name: "2 to 1", oldP: 2, newP: 1,
			keyGroups: []R{rg(0, 127)},
			keyed:     [][]R{{rg(0, 63), rg(64, 127)}},
			splits:    [][]slice{{{0, 0, 64}, {1, 0, 64}}},
		},
		{
			name: "3 to 5", oldP: 3, newP: 5,
			// ceil(i*128/5) .. floor(((i+1)*128-1)/5)
			keyGroups: []R{rg(0, 25), rg(26, 51), rg(52, 76), rg(77, 102), rg(103, 127)},
			keyed: [][]R{
				{rg(0, 42)},
				{rg(0, 42), rg(43, 85)},
				{rg(43, 85)},
				{rg(43, 85), rg(86, 127)},
				{rg(86, 127)},
			},
			// n = 192, old subtask s holds global [64s, 64s+64);
			// new: [0,38) [38,76) [76,115) [115,153) [153,192)
			splits: [][]slice{
				{{0, 0, 38}},
				{{0, 38, 64}, {1, 0, 12}},
				{{1, 12, 51}},
				{{1, 51, 64}, {2, 0, 25}},
				{{2, 25, 64}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			splits := make([]int64, tt.oldP)
			for i := range splits {
				splits[i] = 64
			}
			m := build(17, 128, splits, tt.oldP)
			if _, err := Marshal(m); err != nil {
				t.Fatal(err)
			}
			for i := range tt.newP {
				keyed, err := Assign(m, "sum", i, tt.newP)
				if err != nil {
					t.Fatal(err)
				}
				if keyed.KeyGroups != tt.keyGroups[i] || keyed.CheckpointID != 17 {
					t.Errorf("subtask %d: key groups %v, want %v", i, keyed.KeyGroups, tt.keyGroups[i])
				}
				if got := kgRanges(keyed); !eq(got, tt.keyed[i]) {
					t.Errorf("subtask %d: keyed handles %v, want %v", i, got, tt.keyed[i])
				}
				if keyed.Lists != nil {
					t.Errorf("subtask %d: lists for a keyed operator: %v", i, keyed.Lists)
				}
				src, err := Assign(m, "gen", i, tt.newP)
				if err != nil {
					t.Fatal(err)
				}
				if got := listSlices(src, "splits"); !eq(got, tt.splits[i]) {
					t.Errorf("subtask %d: splits %v, want %v", i, got, tt.splits[i])
				}
				var union []slice
				for s := range tt.oldP {
					union = append(union, slice{s, 0, 1})
				}
				if got := listSlices(src, "watermarks"); !eq(got, union) {
					t.Errorf("subtask %d: union list %v, want %v", i, got, union)
				}
				for _, s := range src.Lists["splits"] {
					if want := CheckpointFile(17, StateFile(0, s.Subtask, KindOperator)); s.File.Path != want {
						t.Errorf("slice of subtask %d reads %s, want %s", s.Subtask, s.File.Path, want)
					}
				}
			}
		})
	}
}

// TestAssignCoversEverything: for many old and new parallelisms, every key
// group of the new subtask is in exactly one of its handles, no handle
// without an intersection is given, and the split entries are divided
// exactly once among the new subtasks, in order.
func TestAssignCoversEverything(t *testing.T) {
	const maxP = 24
	for oldP := 1; oldP <= maxP; oldP++ {
		splits := make([]int64, oldP)
		var total int64
		for i := range splits {
			splits[i] = int64((i * 7) % 5) // some empty
			total += splits[i]
		}
		m := build(9, maxP, splits, oldP)
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		for newP := 1; newP <= maxP; newP++ {
			var next int64 // next global split entry expected
			for i := range newP {
				r, err := Assign(m, "sum", i, newP)
				if err != nil {
					t.Fatal(err)
				}
				for kg := r.KeyGroups.First; kg <= r.KeyGroups.Last; kg++ {
					n := 0
					for _, k := range r.Keyed {
						if k.KeyGroups.Contains(kg) {
							n++
						}
					}
					if n != 1 {
						t.Fatalf("%d -> %d subtask %d: key group %d in %d handles", oldP, newP, i, kg, n)
					}
				}
				for _, k := range r.Keyed {
					if _, ok := k.KeyGroups.Intersect(r.KeyGroups); !ok {
						t.Fatalf("%d -> %d: handle %v given to %v", oldP, newP, k.KeyGroups, r.KeyGroups)
					}
				}
				src, err := Assign(m, "gen", i, newP)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range src.Lists["splits"] {
					var base int64
					for _, n := range splits[:s.Subtask] {
						base += n
					}
					if base+s.From != next || s.To <= s.From || s.To > splits[s.Subtask] {
						t.Fatalf("%d -> %d subtask %d: slice %+v, expected global entry %d next", oldP, newP, i, s, next)
					}
					next = base + s.To
				}
			}
			if next != total {
				t.Fatalf("%d -> %d: %d of %d split entries assigned", oldP, newP, next, total)
			}
		}
	}
}

func TestAssignEdges(t *testing.T) {
	m := build(4, 8, []int64{3, 3}, 2)
	if r, err := Assign(m, "absent", 0, 2); r != nil || err != nil {
		t.Errorf("absent operator: %v %v, want nil, nil (starts empty)", r, err)
	}
	for _, c := range []struct{ subtask, p int }{{0, 9}, {0, 0}, {2, 2}, {-1, 2}} {
		if _, err := Assign(m, "sum", c.subtask, c.p); err == nil {
			t.Errorf("Assign(subtask %d, p %d) accepted", c.subtask, c.p)
		}
	}
	if _, err := Assign(m, "sum", 0, 9); err == nil || !strings.Contains(err.Error(), "pipeline.max-parallelism") {
		t.Errorf("parallelism above max: %v", err)
	}
	// Finished only if every old subtask was.
	m.Operators[0].Subtasks[0].Finished = true
	if r, _ := Assign(m, "gen", 0, 1); r.Finished {
		t.Error("finished with one subtask running")
	}
	m.Operators[0].Subtasks[1].Finished = true
	if r, _ := Assign(m, "gen", 0, 1); !r.Finished {
		t.Error("not finished with every subtask finished")
	}
	// A list whose mode differs between subtasks is refused.
	m.Operators[0].Subtasks[1].Operator.Lists[0].Mode = ModeUnion
	if _, err := Assign(m, "gen", 0, 1); err == nil || !strings.Contains(err.Error(), `"splits"`) {
		t.Errorf("mixed modes: %v", err)
	}
}
