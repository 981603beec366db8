package test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWindowOutOfOrderExactWithLateDrops runs, on a JobManager and a TaskManager, a
// tumbling event-time window over a rate-limited stream whose timestamps are shuffled
// within 5 s (the watermark's out-of-orderness) and in which every hundredth record after
// the first 10 s is 100 s behind, far beyond the 2 s allowed lateness. The windows must
// hold exactly the on-time records, computed in plain Go, and numLateRecordsDropped must be
// exactly the number of records 100 s behind: none of them reaches a window. The late
// records come long after the first watermarks (10 s of records at 4000 a second, with one
// every 200 ms), so which records are late does not depend on timing.
func TestWindowOutOfOrderExactWithLateDrops(t *testing.T) {
	t.Parallel()
	const count, rate, keys = 60000, 4000, 5
	// ts of record id: its id plus a scatter of 0 to 4999 ms (never late: every earlier
	// record's ts is below id + 4999, so the watermark stays under it), or, for the late
	// ones, 100 s before its id.
	late := func(id int64) bool { return id%100 == 99 && id >= 40000 }
	tsOf := func(id int64) int64 {
		if late(id) {
			return id - 100000
		}
		return id + (id*7919)%5000
	}
	want := map[string]int64{}
	var dropped int64
	for id := int64(0); id < count; id++ {
		if late(id) {
			dropped++
			continue
		}
		ts := tsOf(id)
		start := ts - ts%1000
		want[fmt.Sprintf("key-%d %d %d", id%keys, start, start+1000)]++
	}

	c := startCluster(t, 1, 2)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	spec := filepath.Join(dir, "ooo.yaml")
	if err := os.WriteFile(spec, []byte(fmt.Sprintf(`name: out-of-order
operators:
  - {name: gen, type: generator, count: %d, rate: %d, keys: %d}
  - name: stamp
    type: map
    input: gen
    fields:
      key: key
      ts: "id %% 100 == 99 && id >= 40000 ? id - 100000 : id + (id * 7919) %% 5000"
  - {name: wm, type: watermark, input: stamp, timestamp: ts, watermark: {max-out-of-orderness: 5s}}
  - {name: by-key, type: key_by, input: wm, key: key}
  - {name: counts, type: window, input: by-key, tumbling: 1s, allowed-lateness: 2s, function: count, as: count}
  - {name: out, type: file, input: counts, format: json, path: %s}
`, count, rate, keys, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	id := runDetached(t, c, spec)
	var lateDropped float64
	c.waitFor(2*time.Minute, "the job to finish with numLateRecordsDropped in its window vertex", func() bool {
		j := c.job(id)
		if s, _ := j["state"].(string); s == "FAILED" {
			t.Fatalf("job failed: %v", j["failure-cause"])
		}
		vs, _ := j["vertices"].([]any)
		for _, v := range vs {
			vm, _ := v.(map[string]any)
			if ops, _ := vm["operators"].([]any); len(ops) > 0 && containsAny(ops, "counts") {
				m, _ := vm["metrics"].(map[string]any)
				lateDropped, _ = m["numLateRecordsDropped"].(float64)
			}
		}
		return c.jobState(id) == "FINISHED"
	})
	got := map[string]int64{}
	for _, l := range committedLines(t, out) {
		var r struct {
			Key         string `json:"key"`
			Count       int64  `json:"count"`
			WindowStart int64  `json:"window_start"`
			WindowEnd   int64  `json:"window_end"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		w := fmt.Sprintf("%s %d %d", r.Key, r.WindowStart, r.WindowEnd)
		if _, dup := got[w]; dup {
			t.Fatalf("window %s fired twice (no record was within the allowed lateness)", w)
		}
		got[w] = r.Count
	}
	if !maps.Equal(got, want) {
		n := 0
		for w, v := range want {
			if got[w] != v && n < 10 {
				t.Errorf("window %s: count %d, want %d", w, got[w], v)
				n++
			}
		}
		t.Fatalf("%d windows, want %d", len(got), len(want))
	}
	if int64(lateDropped) != dropped {
		t.Fatalf("numLateRecordsDropped %v, want %d (the records 100 s behind)", lateDropped, dropped)
	}
	t.Logf("%d windows exact, %d late records dropped", len(want), dropped)
}

func containsAny(xs []any, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// TestBadEventTimeSpecsRefusedBySluiceRun submits specs with each event-time mistake to a
// running cluster: `sluice run` fails with an error naming the operator, its line and the
// option to fix; every mistake is refused when the job is planned, before any task starts,
// except a string timestamp field, whose values may be RFC 3339 times and fail the job on
// the first one that is not.
func TestBadEventTimeSpecsRefusedBySluiceRun(t *testing.T) {
	c := startCluster(t, 1, 1)
	const gen = "  - {name: g, type: generator, count: 10, timestamp: id, watermark: {max-out-of-orderness: 1s}}\n"
	for _, tc := range []struct{ name, ops, want string }{
		{"window size zero", gen + "  - {name: k, type: key_by, input: g, key: key}\n  - {name: win, type: window, input: k, tumbling: 0s, function: count}\n",
			`operator "win" (line 5) tumbling: line 5: window size 0s must be greater than 0`},
		{"join with one input", gen + "  - {name: j, type: join, left: g, left-key: key, right-key: key, window: {tumbling: 1s}}\n",
			`operator "j" (line 4) right: missing required option: a join takes two inputs`},
		{"timestamp field missing", "  - {name: g, type: generator, count: 10, timestamp: ts, watermark: {max-out-of-orderness: 1s}}\n",
			`operator "g" (line 3) timestamp: unknown field "ts": input has fields id, key, value`},
		// A float field is refused when the job is planned; a string one may hold RFC 3339
		// times, so its values are checked as they come: the job fails on the first.
		{"timestamp field not a time", "  - {name: g, type: generator, count: 10}\n  - {name: m, type: map, input: g, fields: {f: \"1.5\"}}\n  - {name: w, type: watermark, input: m, timestamp: f, watermark: {max-out-of-orderness: 0s}}\n",
			`operator "w" (line 5) timestamp: field "f" is float, not a time`},
		{"timestamp string not a time", "  - {name: g, type: generator, count: 10, timestamp: key, watermark: {max-out-of-orderness: 1s}}\n",
			`operator "g" (line 3) timestamp: timestamp field "key" is "key-0", not a time: want an int of ms since the epoch or an RFC 3339 string`},
		{"watermark on a non-source", "  - {name: g, type: generator, count: 10, timestamp: id}\n  - {name: m, type: filter, input: g, expr: \"true\", watermark: {max-out-of-orderness: 1s}}\n",
			`operator "m" (line 4) watermark: only a source or a watermark operator takes watermark`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := filepath.Join(t.TempDir(), "bad.yaml")
			body := "name: bad\noperators:\n" + tc.ops + "  - {name: out, type: blackhole, input: " + lastOp(tc.ops) + "}\n"
			if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stdout, stderr, code := c.sluice(ctx, "run", spec)
			if code == 0 {
				t.Fatalf("sluice run accepted the spec:\n%s\nstdout: %s", body, stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("sluice run: exit %d, stderr:\n%s\nwant it to contain %q", code, stderr, tc.want)
			}
		})
	}
}

// lastOp is the name of the last operator of a flow-style operator list.
func lastOp(ops string) string {
	lines := strings.Split(strings.TrimSpace(ops), "\n")
	l := lines[len(lines)-1]
	i := strings.Index(l, "name: ") + len("name: ")
	return l[i : i+strings.IndexByte(l[i:], ',')]
}
