package test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// referenceJoin is examples/join.yaml's result computed plainly: clicks and views are ids
// 0..n-1 with key "key-(id % 50)" and event time id ms; every click pairs with every view
// of its key in its 100 ms window.
func referenceJoin(n int) []string {
	var out []string
	for c := range n {
		for v := range n {
			if c%50 == v%50 && c/100 == v/100 {
				out = append(out, fmt.Sprintf("key-%d %d %d %d", c%50, c, v, c/100*100))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestJoinMultiProcess runs the window join of examples/join.yaml at -p 2 on two
// TaskManagers of one slot each, so both inputs of each join subtask come partly from the
// other process, with checkpoints (at least two complete while it runs for a second) aligning barriers across both inputs; the output equals
// a plain Go computation of the join.
func TestJoinMultiProcess(t *testing.T) {
	c := startCluster(t, 2, 1, "state.checkpoints.dir="+filepath.Join(t.TempDir(), "ckpt"))
	outDir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 3000
	stdout, stderr, code := c.sluice(ctx, "run", "examples/join.yaml", "-p", "2",
		"--param", fmt.Sprintf("count=%d", n), "--param", "rate=3000", "--param", "output="+outDir,
		"-D", "execution.checkpointing.interval=100ms")
	if code != 0 {
		t.Fatalf("sluice run exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "FINISHED") {
		t.Fatalf("sluice run did not print the final state: %q", stdout)
	}
	equalLines(t, readParts(t, outDir), referenceJoin(n))

	id := strings.Fields(stdout)[1]
	j := c.job(id)
	if counts, _ := j["checkpoints"].(map[string]any); counts == nil || counts["completed"].(float64) < 2 {
		t.Errorf("GET /jobs/%s: checkpoints %v, want completed >= 2 (barriers aligned over both inputs)", id, j["checkpoints"])
	}
	found := false
	for _, v := range j["vertices"].([]any) {
		v := v.(map[string]any)
		if strings.HasPrefix(v["name"].(string), "joined") {
			found = true
			if int(v["parallelism"].(float64)) != 2 {
				t.Errorf("join vertex parallelism %v, want 2", v["parallelism"])
			}
		}
	}
	if !found {
		t.Fatalf("no vertex starts at the join: %v", j["vertices"])
	}
}
