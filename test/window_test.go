package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
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

// TestWindowLateRecordsMetric runs an unbounded windowed job in which every hundredth record
// is 100 s behind the others (a map sets its timestamp field), far beyond the window's
// allowed lateness: those records are dropped and counted, on the TaskManager's /metrics as
// sluice_task_numLateRecordsDropped and in the window vertex's metrics of GET /jobs/{id}.
// With late-output they go instead to the side output, read by a print on the TaskManager's
// stdout, and none is counted as dropped.
func TestWindowLateRecordsMetric(t *testing.T) {
	t.Parallel()
	for _, side := range []bool{false, true} {
		t.Run(fmt.Sprintf("side=%v", side), func(t *testing.T) { lateRecordsJob(t, side) })
	}
}

func lateRecordsJob(t *testing.T, side bool) {
	c := startCluster(t, 1, 2)
	_, port := metricsBind(t, c.tms[0])
	spec := filepath.Join(t.TempDir(), "late.yaml")
	window := "{name: counts, type: window, input: by-key, tumbling: 100ms, allowed-lateness: 1s, function: count}"
	if side {
		window = strings.Replace(window, "}", ", late-output: late}\n  - {name: late-out, type: print, input: counts.late}", 1)
	}
	if err := os.WriteFile(spec, []byte(`name: late
operators:
  - {name: gen, type: generator, count: 0, rate: 2000, keys: 3}
  - name: stamp
    type: map
    input: gen
    fields:
      key: key
      ts: "id % 100 == 99 ? id - 100000 : id"
  - {name: wm, type: watermark, input: stamp, timestamp: ts, watermark: {max-out-of-orderness: 0s}}
  - {name: by-key, type: key_by, input: wm, key: key}
  - `+window+`
  - {name: out, type: blackhole, input: counts}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	id := runDetached(t, c, spec)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c.sluice(ctx, "cancel", id)
	}()
	if side {
		// A late record printed: its key and a time 100 s before its id.
		late := regexp.MustCompile(`(?m)^key-\d -9\d{4}$`)
		c.waitFor(60*time.Second, "late records printed from the side output", func() bool { return late.MatchString(c.tms[0].Log()) })
	}
	ofJob := `job_id="` + id + `"`
	var dropped []float64
	c.waitFor(60*time.Second, "sluice_task_numLateRecordsDropped on the TaskManager's /metrics", func() bool {
		dropped = seriesValues(httpGet(t, "http://127.0.0.1:"+port+"/metrics"), "sluice_task_numLateRecordsDropped", ofJob)
		return side && len(dropped) > 0 || slices.ContainsFunc(dropped, func(f float64) bool { return f > 0 })
	})
	if side && slices.ContainsFunc(dropped, func(f float64) bool { return f > 0 }) {
		t.Fatalf("numLateRecordsDropped %v with a late side output, want 0", dropped)
	}
	if side {
		return
	}
	c.waitFor(60*time.Second, "numLateRecordsDropped > 0 in the window vertex of GET /jobs/{id}", func() bool {
		for _, v := range c.job(id)["vertices"].([]any) {
			vm := v.(map[string]any)
			if slices.Contains(vm["operators"].([]any), any("counts")) {
				n, _ := vm["metrics"].(map[string]any)["numLateRecordsDropped"].(float64)
				return n > 0
			}
		}
		return false
	})
}
