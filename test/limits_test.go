package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user + system) a process used so far, from /proc/PID/stat.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces: fields count from after its closing parenthesis.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// cpuShare is the share of one core a process used over the window.
func cpuShare(t *testing.T, pid int, window time.Duration) float64 {
	t.Helper()
	before := cpuTime(t, pid)
	start := time.Now()
	time.Sleep(window)
	return float64(cpuTime(t, pid)-before) / float64(time.Since(start))
}

// peakRSS is the peak resident set size of a process (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// costlySpec is a job whose filter does 10^9 iterations on its one record: minutes of CPU.
// Its cost does not depend on the record, so its estimate is exact, and far above the default
// pipeline.expression.max-cost.
func costlySpec(t *testing.T) string {
	list := "[" + strings.TrimSuffix(strings.Repeat("1,", 1000), ",") + "]"
	expr := list + ".exists(a, " + list + ".exists(b, " + list + ".exists(c, a + b + c + value < 0)))"
	spec := "name: costly\noperators:\n  - {name: gen, type: generator, count: 1}\n" +
		"  - name: costly\n    type: filter\n    input: gen\n    expr: '" + expr + "'\n" +
		"  - {name: sink, type: blackhole, input: costly}\n"
	p := filepath.Join(t.TempDir(), "costly.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// raisedCost lets costlySpec through, as an operator who raised the limit would.
const raisedCost = "pipeline.expression.max-cost=4000000000000000000"

func TestCostlyExpressionRefusedAtSubmit(t *testing.T) {
	c := startCluster(t, 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, stderr, code := c.sluice(ctx, "run", costlySpec(t), "--detached")
	if code == 0 {
		t.Fatal("a job with an expression of estimated cost 10^9 was accepted")
	}
	for _, want := range []string{`operator "costly" (line 4)`, "estimated cost", "pipeline.expression.max-cost"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not mention %q", stderr, want)
		}
	}
}

// submitCostly submits costlySpec on a cluster that lets it through and waits until its
// TaskManager computes.
func submitCostly(t *testing.T, c *cluster) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", costlySpec(t), "--detached")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	c.waitFor(30*time.Second, "job running", func() bool { return c.jobState(id) == "RUNNING" })
	pid := c.tms[0].cmd.Process.Pid
	// The machine is shared: a busy TaskManager gets a good part of a core, not all of it.
	c.waitFor(30*time.Second, "the taskmanager computing", func() bool { return cpuShare(t, pid, 500*time.Millisecond) > 0.3 })
	return id
}

// Cancelling a job whose expression computes stops the computation, and its slot is free only
// once the TaskManager reported the task ended.
func TestCancelStopsCostlyExpression(t *testing.T) {
	c := startClusterWith(t, clusterSpec{n: 1, slots: 1, jm: []string{raisedCost}})
	id := submitCostly(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel: exit %d: %s", code, stderr)
	}
	if state := c.jobState(id); state != "CANCELED" {
		t.Fatalf("state after cancel: %s", state)
	}
	c.waitFor(10*time.Second, "slot free", func() bool {
		var o map[string]any
		return c.get("/overview", &o) == nil && o["slots-available"].(float64) == 1
	})
	// The slot is reported free: nothing may compute for the job any more.
	if share := cpuShare(t, c.tms[0].cmd.Process.Pid, 2*time.Second); share > 0.1 {
		t.Fatalf("the taskmanager still uses %.0f%% of a core after the job was CANCELED and its slot freed", share*100)
	}
}

// A TaskManager told to stop while an expression computes exits within its grace period.
func TestTaskManagerStopsWithCostlyTask(t *testing.T) {
	const grace = 5 * time.Second
	c := startClusterWith(t, clusterSpec{n: 1, slots: 1, jm: []string{raisedCost},
		tm: func(int) []string { return []string{"taskmanager.shutdown.grace-period=5 s"} }})
	submitCostly(t, c)
	tm := c.tms[0]
	start := time.Now()
	tm.Signal(syscall.SIGTERM)
	select {
	case <-tm.done:
		t.Logf("the taskmanager exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("the taskmanager still runs %s after SIGTERM (grace period %s)", time.Since(start).Round(time.Second), grace)
	}
}

// postJSONSpec submits spec as a JSON body and returns the status and the body.
func postJSONSpec(t *testing.T, c *cluster, spec string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"spec": spec})
	resp, err := http.Post(c.restURL+"/jobs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A large job spec is refused before it is parsed, and a small one with too many YAML nodes
// before its tree is built: the JobManager's memory stays bounded.
func TestLargeSpecRefused(t *testing.T) {
	const maxRSS = 200 << 20
	c := startCluster(t, 1, 1)
	pid := c.jm.cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ops := "operators:\n  - {name: g, type: generator, count: 1}\n  - {name: p, type: blackhole, input: g}\n"
	dir := t.TempDir()

	// 8 MB of one-letter list items: 4 million YAML nodes.
	big := "name: big\nparameters:\n  x: [" + strings.Repeat("a,", 4<<20) + "a]\n" + ops
	bigPath := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(bigPath, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := c.sluice(ctx, "run", bigPath, "--detached")
	if code == 0 || !strings.Contains(stderr, "413") || !strings.Contains(stderr, "rest.server.max-spec-size") {
		t.Errorf("8 MB spec with the CLI: exit %d, stderr %q; want a 413 naming rest.server.max-spec-size", code, stderr)
	}
	if status, body := postJSONSpec(t, c, big); status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "rest.server.max-spec-size") {
		t.Errorf("8 MB spec as JSON: %d %.300s; want 413 naming rest.server.max-spec-size", status, body)
	}

	// Just under 1 MiB, and half a million nodes.
	dense := "name: dense\nparameters:\n  x: [" + strings.Repeat("a,", 500_000) + "a]\n" + ops
	if len(dense) >= 1<<20 {
		t.Fatalf("dense spec of %d bytes is not under the cap", len(dense))
	}
	densePath := filepath.Join(dir, "dense.yaml")
	if err := os.WriteFile(densePath, []byte(dense), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = c.sluice(ctx, "run", densePath, "--detached")
	if code == 0 || !strings.Contains(stderr, "YAML nodes") {
		t.Errorf("dense spec: exit %d, stderr %q; want the YAML node cap error", code, stderr)
	}
	if status, body := postJSONSpec(t, c, dense); status != http.StatusBadRequest || !strings.Contains(body, "YAML nodes") {
		t.Errorf("dense spec as JSON: %d %.300s; want 400 with the YAML node cap error", status, body)
	}

	if rss := peakRSS(t, pid); rss > maxRSS {
		t.Errorf("the JobManager's peak RSS is %d MB, want at most %d MB", rss>>20, maxRSS>>20)
	} else {
		t.Logf("the JobManager's peak RSS: %d MB", rss>>20)
	}
	// And it still accepts an ordinary job.
	if _, stderr, code := c.sluice(ctx, "run", "examples/wordcount.yaml",
		"--param", "input="+filepath.Join(repoRoot(t), "examples/data/gettysburg.txt")); code != 0 {
		t.Errorf("wordcount after the refusals: exit %d: %s", code, stderr)
	}
}

// A record larger than the cost estimate assumed cannot make an evaluation run unbounded: the
// task fails with an error naming the limit.
func TestRuntimeCostLimitFailsTask(t *testing.T) {
	c := startCluster(t, 1, 1)
	dir := t.TempDir()
	input := filepath.Join(dir, "big-line.txt")
	if err := os.WriteFile(input, []byte(strings.Repeat("ab ", 8<<20/3)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := "name: bigline\noperators:\n  - {name: lines, type: file, path: big-line.txt}\n" +
		"  - {name: f, type: filter, input: lines, expr: 'words(line).exists(w, w == \"zzz\")'}\n" +
		"  - {name: sink, type: blackhole, input: f}\n"
	specPath := filepath.Join(dir, "bigline.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", specPath, "--file", input)
	if code == 0 || !strings.Contains(stdout+stderr, "exceeded the cost limit") || !strings.Contains(stdout+stderr, "pipeline.expression.max-cost") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant the job to fail on the cost limit, naming pipeline.expression.max-cost", code, stdout, stderr)
	}
}
