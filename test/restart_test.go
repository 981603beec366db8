package test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// busyTaskManager returns the TaskManager process that runs a task of the job (no free slot).
func busyTaskManager(t *testing.T, c *cluster) *proc {
	t.Helper()
	var tms struct {
		TaskManagers []struct {
			ID        string  `json:"id"`
			FreeSlots float64 `json:"freeSlots"`
		} `json:"taskmanagers"`
	}
	if err := c.get("/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	for _, tm := range tms.TaskManagers {
		if tm.FreeSlots == 0 {
			var i int
			if _, err := fmt.Sscanf(tm.ID, "tm-%d", &i); err == nil && i >= 1 && i <= len(c.tms) {
				return c.tms[i-1]
			}
		}
	}
	t.Fatalf("no TaskManager runs a task: %+v", tms)
	return nil
}

// TestTaskManagerLossExponentialDelay: a job restarting with exponential-delay, its keys set
// with sluice run -D for this job only (over conf/config.yaml's fixed-delay). kill -9 of a
// TaskManager running it restarts it after initial-backoff, a second kill after
// initial-backoff × multiplier; the JobManager's /metrics counts the restarts in
// sluice_job_numRestarts. (Flink's rule, exponential-delay by default for a job with
// checkpointing, is TestDefaultRestartStrategy's: here conf/config.yaml sets a strategy.)
func TestTaskManagerLossExponentialDelay(t *testing.T) {
	c := startCluster(t, 3, 1, "heartbeat.interval=500 ms", "heartbeat.timeout=3 s", "slot.request.timeout=20 s",
		"state.checkpoints.dir="+t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// No checkpoint is due within the test: the interval only turns checkpointing on.
	stdout, stderr, code := c.sluice(ctx, "run", "examples/unbounded.yaml", "--detached", "-p", "2", "--param", "rate=2000",
		"-D", "execution.checkpointing.interval=10 min",
		"-D", "restart-strategy.type=exponential-delay",
		"-D", "restart-strategy.exponential-delay.initial-backoff=400 ms",
		"-D", "restart-strategy.exponential-delay.backoff-multiplier=3",
		"-D", "restart-strategy.exponential-delay.jitter-factor=0")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	running := func(restarts float64) func() bool {
		return func() bool {
			j := c.job(id)
			return j["state"] == "RUNNING" && j["restarts"].(float64) == restarts
		}
	}
	c.waitFor(30*time.Second, "job running", running(0))

	busyTaskManager(t, c).Kill()
	c.waitFor(30*time.Second, "job restarted once and running", running(1))
	// A spare slot for the next failover.
	c.addTM()
	busyTaskManager(t, c).Kill()
	c.waitFor(30*time.Second, "job restarted twice and running", running(2))

	// Restart n waits min(400 ms × 3^(n-1), 1 min): 400 ms, then 1.2 s.
	var delays []string
	for _, m := range regexp.MustCompile(`msg="job restarting" .*job=`+id+` restart=(\d) delay=(\S+) restart-strategy=exponential-delay`).FindAllStringSubmatch(c.jm.Log(), -1) {
		delays = append(delays, m[1]+":"+m[2])
	}
	if got := strings.Join(delays, " "); got != "1:400ms 2:1.2s" {
		t.Errorf("restart delays %q, want 1:400ms 2:1.2s; log:\n%s", got, c.jm.Log())
	}
	metrics := httpGet(t, c.restURL+"/metrics")
	if !regexpMatch(`(?m)^sluice_job_numRestarts\{job_id="`+id+`",job_name="unbounded"\} 2$`, metrics) {
		t.Errorf("/metrics lacks sluice_job_numRestarts 2 for job %s:\n%s", id, grepLines(metrics, "numRestarts"))
	}
	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel: %s", stderr)
	}
}
