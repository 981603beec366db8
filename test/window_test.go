package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestWindowedCountTwoTaskManagers runs examples/windowed-count.yaml (a tumbling event-time
// window count) at -p 2 on two TaskManagers of one slot each, so each half of the source and
// of the window runs in another process and every window's records cross the network. The
// input is 20000 events shuffled within 5 s (the watermark's out-of-orderness), so none is
// late: the part files must hold exactly the windows a plain Go computation gives.
func TestWindowedCountTwoTaskManagers(t *testing.T) {
	c := startCluster(t, 2, 1)
	r := rand.New(rand.NewPCG(11, 12))
	type ev struct {
		order, ts int64
		key       string
	}
	evs := make([]ev, 20000)
	ts := int64(1_700_000_000_000)
	counts := map[string]int{}
	for i := range evs {
		ts += r.Int64N(50)
		evs[i] = ev{order: ts + r.Int64N(5000), ts: ts, key: fmt.Sprintf("k%d", r.IntN(7))}
		start := ts - ts%1000
		counts[fmt.Sprintf("%s %d %d", evs[i].key, start, start+1000)]++
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].order < evs[b].order })
	var in strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&in, "{\"ts\": %d, \"key\": %q, \"v\": 1}\n", e.ts, e.key)
	}
	input := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(input, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var want []string
	for w, n := range counts {
		want = append(want, fmt.Sprintf("%s %d", w, n))
	}
	slices.Sort(want)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outDir := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := c.sluice(ctx, "run", "examples/windowed-count.yaml", "-p", "2",
		"--param", "input="+input, "--param", "output="+outDir, "--param", "size=1s")
	if code != 0 {
		t.Fatalf("run: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	got := readParts(t, outDir)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("windows differ from the plain computation: got %d, want %d\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
}
