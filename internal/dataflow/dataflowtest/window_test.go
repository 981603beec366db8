package dataflowtest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// tevent is one input record of the window tests: a key, a value and an event time (ms).
type tevent struct {
	ts  int64
	key string
	v   int64
}

// outOfOrderEvents makes n events over keys keys, their times advancing by 0..19 ms, written
// in an order shuffled within 5 s: each event is placed by its time plus a random delay of
// up to 4999 ms, so a watermark 5 s behind the largest time seen never passes an event not
// yet read.
func outOfOrderEvents(n, keys int, seed uint64) []tevent {
	r := rand.New(rand.NewPCG(seed, 1))
	evs := make([]tevent, n)
	delay := make([]int64, n)
	ts := int64(1_700_000_000_000)
	for i := range evs {
		ts += r.Int64N(20)
		evs[i] = tevent{ts: ts, key: "k" + strconv.Itoa(r.IntN(keys)), v: r.Int64N(1000) - 100}
		delay[i] = ts + r.Int64N(5000)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return delay[idx[a]] < delay[idx[b]] })
	out := make([]tevent, n)
	for i, j := range idx {
		out[i] = evs[j]
	}
	return out
}

func writeEvents(t *testing.T, evs []tevent) string {
	t.Helper()
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, `{"ts": %d, "key": %q, "v": %d}`+"\n", e.ts, e.key, e.v)
	}
	path := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func windowSpec(path string, p int, window string) string {
	return fmt.Sprintf(`name: win
operators:
  - {name: src, type: file, path: %s, format: json, fields: [ts, key, v], parallelism: %d,
     timestamp: ts, watermark: {max-out-of-orderness: 5s}}
  - {name: k, type: key_by, input: src, key: key}
  - {name: w, type: window, input: k, parallelism: %d, %s}
  - {name: o, type: print, input: w}
`, path, p, p, window)
}

// windowsOf assigns t to its windows as the window operator does, computed plainly.
func windowsOf(kind string, size, slide, t int64) [][2]int64 {
	switch kind {
	case "tumbling":
		s := t - ((t%size)+size)%size
		return [][2]int64{{s, s + size}}
	case "sliding":
		var out [][2]int64
		for s := t - ((t%slide)+slide)%slide; s > t-size; s -= slide {
			out = append(out, [2]int64{s, s + size})
		}
		return out
	}
	panic(kind)
}

// sessionsOf computes the sessions of one key's times with gap: sorted, a new session when
// the next time is gap or more after the last one's end.
func sessionsOf(ts []int64, gap int64) [][]int64 {
	slices.Sort(ts)
	var out [][]int64
	for i, t := range ts {
		if i == 0 || t > ts[i-1]+gap {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], t)
	}
	return out
}

// TestWindowKindsOutOfOrder runs each window kind over events shuffled within 5 s, read by
// a file source with a 5 s bounded-out-of-orderness watermark at parallelism 1 and 2: no
// event is late, so every window gives the exact result of a plain computation.
func TestWindowKindsOutOfOrder(t *testing.T) {
	evs := outOfOrderEvents(4000, 5, 7)
	path := writeEvents(t, evs)
	type agg struct {
		count, sum, max int64
		vals            []int64
	}
	byWindow := func(kind string, size, slide int64) map[string]*agg {
		m := map[string]*agg{}
		for _, e := range evs {
			for _, w := range windowsOf(kind, size, slide, e.ts) {
				k := fmt.Sprintf("%s %d %d", e.key, w[0], w[1])
				a := m[k]
				if a == nil {
					a = &agg{max: math.MinInt64}
					m[k] = a
				}
				a.count++
				a.sum += e.v
				a.max = max(a.max, e.v)
				a.vals = append(a.vals, e.v)
			}
		}
		return m
	}
	lines := func(m map[string]*agg, f func(*agg) string) []string {
		var out []string
		for k, a := range m {
			out = append(out, k+" "+f(a))
		}
		slices.Sort(out)
		return out
	}
	// Sessions per key with a gap of 300 ms, their max value.
	sessions := func() []string {
		times := map[string][]int64{}
		vals := map[string]map[int64][]int64{}
		for _, e := range evs {
			times[e.key] = append(times[e.key], e.ts)
			if vals[e.key] == nil {
				vals[e.key] = map[int64][]int64{}
			}
			vals[e.key][e.ts] = append(vals[e.key][e.ts], e.v)
		}
		var out []string
		for key, ts := range times {
			for _, s := range sessionsOf(slices.Compact(slices.Sorted(slices.Values(ts))), 300) {
				m := int64(math.MinInt64)
				for _, t := range s {
					for _, v := range vals[key][t] {
						m = max(m, v)
					}
				}
				out = append(out, fmt.Sprintf("%s %d %d %d", key, s[0], s[len(s)-1]+300, m))
			}
		}
		slices.Sort(out)
		return out
	}()
	top2 := func(a *agg) []int64 {
		v := slices.Clone(a.vals)
		slices.Sort(v)
		slices.Reverse(v)
		return v[:min(2, len(v))]
	}
	cases := []struct {
		name, window string
		want         []string
	}{
		{"tumbling-count", "tumbling: 1s, function: count", lines(byWindow("tumbling", 1000, 0), func(a *agg) string { return strconv.FormatInt(a.count, 10) })},
		{"sliding-sum", "sliding: {size: 2s, slide: 500ms}, function: sum, field: v", lines(byWindow("sliding", 2000, 500), func(a *agg) string { return strconv.FormatInt(a.sum, 10) })},
		{"session-max", "session: {gap: 300ms}, function: max, field: v", sessions},
		{"tumbling-top2", "tumbling: 1s, top: 2, field: v", func() []string {
			var out []string
			for k, a := range byWindow("tumbling", 1000, 0) {
				for i, v := range top2(a) {
					out = append(out, fmt.Sprintf("%s %d %d", k, i+1, v))
				}
			}
			slices.Sort(out)
			return out
		}()},
	}
	for _, c := range cases {
		for _, p := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/p%d", c.name, p), func(t *testing.T) {
				var out bytes.Buffer
				if err := dataflow.RunLocal(context.Background(), plan(t, windowSpec(path, p, c.window)), &out); err != nil {
					t.Fatal(err)
				}
				got := sortedOutput(&out)
				if strings.Contains(c.name, "top") {
					// key start end rank ts v: compare the rank and the value.
					for i, l := range got {
						f := strings.Fields(l)
						got[i] = strings.Join([]string{f[0], f[1], f[2], f[3], f[5]}, " ")
					}
					slices.Sort(got)
				}
				if !slices.Equal(got, c.want) {
					t.Fatalf("%d windows, want %d; first differences:\n%s", len(got), len(c.want), firstDiff(got, c.want))
				}
			})
		}
	}
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("at %d: got %q, want %q", i, g, w)
		}
	}
	return "none"
}
