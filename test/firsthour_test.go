package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMissingInputFailsAtOnce: a job whose input file does not exist
// fails at once, its failure cause is the missing file (not a consumer's
// "connection lost"), and it spends no restart attempts: a restart cannot
// make the file appear. /jobs/{id}/exceptions has Flink's fields.
func TestMissingInputFailsAtOnce(t *testing.T) {
	c := startCluster(t, 2, 2, "restart-strategy.type=fixed-delay", "restart-strategy.fixed-delay.attempts=5",
		"restart-strategy.fixed-delay.delay=2 s")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 3; i++ { // whichever task reports first, the cause is the same
		start := time.Now()
		stdout, stderr, code := c.sluice(ctx, "run", "examples/wordcount.yaml", "-p", "2", "--param", "input=/nonexistent.txt")
		took := time.Since(start)
		if code == 0 {
			t.Fatalf("a job with a missing input finished: %s", stdout)
		}
		if !strings.Contains(stderr, "/nonexistent.txt") || strings.Contains(stderr, "connection lost") {
			t.Errorf("run %d: the failure does not name the missing file as the cause:\n%s", i, stderr)
		}
		// Fixed delay of 2 s and 5 attempts: any restart would show.
		if took > 10*time.Second {
			t.Errorf("run %d took %s: restarts were spent on a missing file", i, took)
		}
	}
	var jobs struct {
		Jobs []struct {
			ID string `json:"jid"`
		} `json:"jobs"`
	}
	if err := c.get("/jobs/overview", &jobs); err != nil || len(jobs.Jobs) == 0 {
		t.Fatalf("jobs: %v", err)
	}
	id := jobs.Jobs[0].ID
	j := c.job(id)
	if j["state"] != "FAILED" || j["restarts"].(float64) != 0 {
		t.Errorf("job %s: state %v after %v restarts, want FAILED after 0", id, j["state"], j["restarts"])
	}
	if cause, _ := j["failure-cause"].(string); !strings.Contains(cause, "/nonexistent.txt") {
		t.Errorf("failure-cause %q does not name the file", cause)
	}
	var ex struct {
		Root      string `json:"root-exception"`
		Timestamp int64  `json:"timestamp"`
		History   struct {
			Entries []struct {
				Name       string `json:"exceptionName"`
				Trace      string `json:"stacktrace"`
				TaskName   string `json:"taskName"`
				Location   string `json:"location"`
				Timestamp  int64  `json:"timestamp"`
				Concurrent []any  `json:"concurrentExceptions"`
			} `json:"entries"`
		} `json:"exceptionHistory"`
	}
	if err := c.get("/jobs/"+id+"/exceptions", &ex); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ex.Root, "/nonexistent.txt") || ex.Timestamp == 0 || len(ex.History.Entries) != 1 {
		t.Fatalf("exceptions: %+v", ex)
	}
	e := ex.History.Entries[0]
	if e.Name != "UnrecoverableTaskFailure" || !strings.HasPrefix(e.TaskName, "lines") || e.Location == "" || e.Timestamp == 0 {
		t.Errorf("history entry: %+v", e)
	}
}

// TestRunJobSettings: `sluice run -D` sets the job's own configuration, as
// `flink run -D` does; a cluster setting is refused, by the client and by
// the JobManager (a hostile client may skip the CLI).
func TestRunJobSettings(t *testing.T) {
	c := startCluster(t, 1, 4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	input := repoRoot(t) + "/examples/data/gettysburg.txt"
	stdout, stderr, code := c.sluice(ctx, "run", "-D", "parallelism.default=2", "examples/unbounded.yaml", "--detached", "--param", "rate=100")
	if code != 0 {
		t.Fatalf("run -D parallelism.default=2: %s", stderr)
	}
	id := strings.TrimSpace(stdout)
	if p := c.job(id)["parallelism"]; p != 2.0 {
		t.Errorf("job parallelism %v, want 2 from -D parallelism.default=2", p)
	}
	c.sluice(ctx, "cancel", id)

	_, stderr, code = c.sluice(ctx, "run", "-D", "taskmanager.numberOfTaskSlots=8", "examples/wordcount.yaml", "--param", "input="+input)
	if code == 0 || !strings.Contains(stderr, "taskmanager.numberOfTaskSlots") || !strings.Contains(stderr, "cannot apply to one job") {
		t.Errorf("a cluster setting on run: exit %d: %s", code, stderr)
	}

	body, _ := json.Marshal(map[string]any{
		"spec":   "name: x\noperators:\n  - {name: g, type: generator, count: 10}\n  - {name: s, type: blackhole, input: g}\n",
		"config": map[string]string{"security.ssl.internal.enabled": "false"},
	})
	resp, err := http.Post(c.restURL+"/jobs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "security.ssl.internal.enabled") {
		t.Errorf("REST submission with a cluster setting: %d %s", resp.StatusCode, msg)
	}
}
