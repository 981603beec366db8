package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// busyTaskManager returns the process of a TaskManager that runs a task (no free slot).
func busyTaskManager(t *testing.T, c *cluster) *proc {
	t.Helper()
	for id := range busyTaskManagers(t, c) {
		return tmProcess(t, c, id)
	}
	t.Fatal("no TaskManager runs a task")
	return nil
}

// tmProcess is the process of the TaskManager with id tm-N (cluster.addTM's ids).
func tmProcess(t *testing.T, c *cluster, id string) *proc {
	t.Helper()
	var i int
	if _, err := fmt.Sscanf(id, "tm-%d", &i); err != nil || i < 1 || i > len(c.tms) {
		t.Fatalf("taskmanager id %q is not one of this cluster's", id)
	}
	return c.tms[i-1]
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

// busyTaskManagers returns the ids of the TaskManagers without a free slot.
func busyTaskManagers(t *testing.T, c *cluster) map[string]bool {
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
	busy := map[string]bool{}
	for _, tm := range tms.TaskManagers {
		if tm.FreeSlots == 0 {
			busy[tm.ID] = true
		}
	}
	return busy
}

// TestDefaultRestartStrategyFollowsCheckpointing is Flink's rule on a real cluster whose
// configuration sets no restart strategy: a job with execution.checkpointing.interval restarts
// with exponential-delay when a TaskManager running it is killed; a job without one fails.
func TestDefaultRestartStrategyFollowsCheckpointing(t *testing.T) {
	// The repository's conf/config.yaml sets fixed-delay: this JobManager reads an empty file.
	empty := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t}
	c.defines = []string{"jobmanager.rpc.address=127.0.0.1", "jobmanager.bind-host=127.0.0.1", "jobmanager.rpc.port=0",
		"rest.bind-address=127.0.0.1", "rest.port=0", "taskmanager.host=127.0.0.1", "taskmanager.bind-host=127.0.0.1",
		"taskmanager.numberOfTaskSlots=1", "heartbeat.interval=500 ms", "heartbeat.timeout=3 s", "slot.request.timeout=20 s"}
	c.jm = startProc(t, "jobmanager", append([]string{"jobmanager", "--config", empty, "--work-dir", t.TempDir(),
		"-D", "state.checkpoints.dir=" + t.TempDir()}, defineArgs(c.defines)...)...)
	c.waitJMStarted()
	c.restURL = c.restURLs["default"]
	c.addTM()
	c.addTM()
	c.waitFor(30*time.Second, "taskmanagers registered", func() bool {
		return len(busyTaskManagers(t, c)) == 0 && strings.Count(c.jm.Log(), "taskmanager registered") == 2
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	submit := func(defines ...string) string {
		args := []string{"run", "examples/unbounded.yaml", "--detached", "-p", "1", "--param", "rate=1000"}
		for _, d := range defines {
			args = append(args, "-D", d)
		}
		stdout, stderr, code := c.sluice(ctx, args...)
		if code != 0 {
			t.Fatalf("submit: exit %d: %s", code, stderr)
		}
		id := strings.TrimSpace(stdout)
		c.waitFor(30*time.Second, "job "+id+" running", func() bool { return c.jobState(id) == "RUNNING" })
		return id
	}

	withCheckpoints := submit("execution.checkpointing.interval=10 min", "restart-strategy.exponential-delay.initial-backoff=300 ms",
		"restart-strategy.exponential-delay.jitter-factor=0")
	busy := busyTaskManagers(t, c)
	if len(busy) != 1 {
		t.Fatalf("busy taskmanagers %v, want the one running the job", busy)
	}
	var first string
	for id := range busy {
		first = id
	}
	tmProcess(t, c, first).Kill()
	c.waitFor(30*time.Second, "the job with checkpointing restarted and running", func() bool {
		j := c.job(withCheckpoints)
		return j["state"] == "RUNNING" && j["restarts"].(float64) == 1
	})
	log := c.jm.Log()
	if !strings.Contains(log, "job restart strategy: exponential-delay, as checkpointing is on and restart-strategy.type is not set") ||
		!regexpMatch(`msg="job restarting" .*job=`+withCheckpoints+` restart=1 delay=300ms restart-strategy=exponential-delay`, log) {
		t.Errorf("the JobManager did not restart the job with exponential-delay by default:\n%s", log)
	}

	c.addTM()
	c.waitFor(30*time.Second, "a third taskmanager", func() bool { return strings.Count(c.jm.Log(), "taskmanager registered") == 3 })
	before := busyTaskManagers(t, c)
	without := submit()
	var second string
	for id := range busyTaskManagers(t, c) {
		if !before[id] {
			second = id
		}
	}
	if second == "" {
		t.Fatalf("cannot tell which taskmanager runs job %s", without)
	}
	tmProcess(t, c, second).Kill()
	c.waitFor(30*time.Second, "the job without checkpointing failed", func() bool { return c.jobState(without) == "FAILED" })
	if j := c.job(without); j["restarts"].(float64) != 0 {
		t.Errorf("the job without checkpointing restarted %v times; without restart-strategy.type it must not", j["restarts"])
	}
	if _, stderr, code := c.sluice(ctx, "cancel", withCheckpoints); code != 0 {
		t.Fatalf("cancel: %s", stderr)
	}
}
