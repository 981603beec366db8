package test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// savepointMeta is what the test reads of a savepoint's _metadata.
type savepointMeta struct {
	Type      string `json:"type"`
	Finished  bool   `json:"finished"`
	Operators []struct {
		Name     string `json:"name"`
		Subtasks []struct {
			Finished bool `json:"finished"`
		} `json:"subtasks"`
	} `json:"operators"`
}

// TestStopDrain: sluice stop --drain takes a terminating savepoint (Flink's
// stop --drain, docs/architecture.md "Engine" §8.1). The sources end their
// input before the barrier, so every task finishes before it snapshots: the
// job ends FINISHED, its sink committed every update up to the savepoint
// (each key's counts run 1, 2, ... without a gap and no in-progress file is
// left), and the savepoint holds every operator finished. Restored, such a
// savepoint is a job whose input has ended: it finishes at once and emits
// nothing more (where a savepoint of a plain stop resumes counting, as
// TestSavepointRescale shows).
func TestStopDrain(t *testing.T) {
	c, _ := checkpointCluster(t, 2, false)
	spec := filepath.Join(t.TempDir(), "counting.yaml")
	if err := os.WriteFile(spec, []byte(countingSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	id := runDetached(t, c, spec, "-p", "2", "--param", "output="+out, "-D", "execution.checkpointing.interval=500 ms")
	waitJobState(t, c, id, "RUNNING", 30*time.Second)
	waitCheckpoints(t, c, id, 2)

	spDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "stop", "--drain", id, "--savepointPath", spDir)
	if code != 0 {
		t.Fatalf("sluice stop --drain: exit %d: %s\nJobManager log:\n%s", code, stderr, c.jm.Log())
	}
	if !strings.Contains(stderr, "Draining job "+id) {
		t.Errorf("sluice stop --drain's stderr does not say it drains the job:\n%s", stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	loc := lines[len(lines)-1]
	if !strings.HasPrefix(loc, "file:"+spDir+"/savepoint-") {
		t.Fatalf("sluice stop --drain printed %q, want the savepoint's location under %s", stdout, spDir)
	}
	waitJobState(t, c, id, "FINISHED", 60*time.Second)

	counts := countsByKey(t, out)
	if len(counts) != 20 {
		t.Fatalf("output has %d keys, want 20", len(counts))
	}
	for key, seq := range counts {
		for i, n := range seq {
			if n != i+1 {
				t.Errorf("key %s: counts %v, want 1, 2, ... with nothing lost or repeated", key, seq)
				break
			}
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("in-progress file %s left after the drained job ended: its records were not committed", e.Name())
		}
	}

	b, err := os.ReadFile(filepath.Join(strings.TrimPrefix(loc, "file:"), "_metadata"))
	if err != nil {
		t.Fatal(err)
	}
	var md savepointMeta
	// The document, then (unsealed) its digest line.
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&md); err != nil {
		t.Fatalf("savepoint _metadata: %v", err)
	}
	if md.Type != "SAVEPOINT_TERMINATE" || !md.Finished {
		t.Errorf("savepoint type %q finished %t, want SAVEPOINT_TERMINATE with every task finished", md.Type, md.Finished)
	}
	for _, op := range md.Operators {
		if op.Name == "by-key" {
			continue // no state of its own: the coordinator files an empty entry
		}
		for s, st := range op.Subtasks {
			if !st.Finished {
				t.Errorf("operator %s subtask %d is not finished in the drained savepoint:\n%s", op.Name, s, b)
			}
		}
	}

	// Restorable: the job restores it and, its input having ended, finishes
	// at once without counting anything again.
	out2 := filepath.Join(t.TempDir(), "out2")
	id2 := runDetached(t, c, spec, "-p", "2", "--param", "output="+out2, "-D", "execution.checkpointing.interval=500 ms", "--fromSavepoint", loc)
	waitJobState(t, c, id2, "FINISHED", 60*time.Second)
	if _, _, restored, _ := checkpointCounts(c, id2); restored != 1 {
		t.Errorf("the job resumed from the drained savepoint restored %v checkpoints, want 1", restored)
	}
	// The restore is on the JobManager's /metrics (Flink's lastCheckpointRestoreTimestamp, Unix ms).
	if v := seriesValues(httpGet(t, c.restURL+"/metrics"), "sluice_job_lastCheckpointRestoreTimestamp", `job_id="`+id2+`"`); len(v) != 1 || v[0] < float64(time.Now().Add(-5*time.Minute).UnixMilli()) {
		t.Errorf("sluice_job_lastCheckpointRestoreTimestamp of the resumed job is %v, want the restore's time in Unix ms", v)
	}
	if got := committedLines(t, out2); len(got) != 0 {
		t.Errorf("the job resumed from the drained savepoint emitted %d lines, want none (its input had ended): %q", len(got), got)
	}
}
