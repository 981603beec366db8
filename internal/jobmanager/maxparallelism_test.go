package jobmanager_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestJobMaxParallelism: a job's pipeline.max-parallelism (its config, as
// sluice run -D sets it) is what the job is planned and run with, and a
// parallelism above it is refused at submit, naming the key.
func TestJobMaxParallelism(t *testing.T) {
	c, base := startCluster(t, nil)
	code, out := submitKeyedCount(t, base, 2, map[string]string{"pipeline.max-parallelism": "5"})
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", code, out)
	}
	var sub struct{ JobID string }
	json.Unmarshal([]byte(out), &sub)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if state, cause, err := c.JM.Wait(ctx, sub.JobID); err != nil || state != "FINISHED" {
		t.Fatalf("job ended %s (%s) %v", state, cause, err)
	}
	_, out = do(t, "GET", base+"/jobs/"+sub.JobID, "", nil)
	var d struct {
		Vertices []struct{ MaxParallelism int }
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Vertices) == 0 {
		t.Fatalf("job details: %v %s", err, out)
	}
	for _, v := range d.Vertices {
		if v.MaxParallelism != 5 {
			t.Errorf("vertex maxParallelism %d, want 5 from the job's config: %s", v.MaxParallelism, out)
		}
	}

	code, out = submitKeyedCount(t, base, 6, map[string]string{"pipeline.max-parallelism": "5"})
	if code != http.StatusBadRequest || !strings.Contains(out, "exceeds pipeline.max-parallelism (5)") {
		t.Errorf("parallelism 6 with pipeline.max-parallelism 5: %d %s", code, out)
	}
}

// submitKeyedCount submits a keyed count job at parallelism p with the
// job's own settings cfg, and returns the answer.
func submitKeyedCount(t *testing.T, base string, p int, cfg map[string]string) (int, string) {
	t.Helper()
	const spec = "name: x\noperators:\n  - {name: g, type: generator, count: 100, keys: 7}\n" +
		"  - {name: k, type: key_by, input: g, key: key}\n  - {name: n, type: aggregate, input: k, function: count}\n" +
		"  - {name: s, type: blackhole, input: n}\n"
	body, _ := json.Marshal(map[string]any{"spec": spec, "parallelism": p, "config": cfg})
	return do(t, "POST", base+"/jobs", "application/json", body)
}

// TestSpecConfigBlock: a job spec's config block sets job-level keys, the
// submitter's settings override it, and a cluster key in it is refused
// naming the key and the block.
func TestSpecConfigBlock(t *testing.T) {
	_, base := startCluster(t, nil)
	const spec = "name: x\nconfig:\n  pipeline.max-parallelism: \"6\"\noperators:\n  - {name: g, type: generator, count: 10}\n  - {name: s, type: blackhole, input: g}\n"
	maxPar := func(cfg map[string]string) int {
		body, _ := json.Marshal(map[string]any{"spec": spec, "config": cfg})
		code, out := do(t, "POST", base+"/jobs", "application/json", body)
		if code != http.StatusAccepted {
			t.Fatalf("submit: %d %s", code, out)
		}
		var sub struct{ JobID string }
		json.Unmarshal([]byte(out), &sub)
		_, out = do(t, "GET", base+"/jobs/"+sub.JobID, "", nil)
		var d struct {
			Vertices []struct{ MaxParallelism int }
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Vertices) == 0 {
			t.Fatalf("job details: %v %s", err, out)
		}
		return d.Vertices[0].MaxParallelism
	}
	if got := maxPar(nil); got != 6 {
		t.Errorf("max parallelism %d, want 6 from the spec's config block", got)
	}
	if got := maxPar(map[string]string{"pipeline.max-parallelism": "9"}); got != 9 {
		t.Errorf("max parallelism %d, want 9 from the submission overriding the spec", got)
	}
	bad := strings.Replace(spec, "pipeline.max-parallelism: \"6\"", "rest.port: \"1\"", 1)
	body, _ := json.Marshal(map[string]any{"spec": bad})
	code, out := do(t, "POST", base+"/jobs", "application/json", body)
	if code != http.StatusBadRequest || !strings.Contains(out, "rest.port") || !strings.Contains(out, "config block at line 2") {
		t.Errorf("cluster key in the config block: %d %s", code, out)
	}
}
