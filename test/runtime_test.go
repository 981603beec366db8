package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sampleText mixes case, punctuation, digits, non-ASCII letters and blank
// lines: everything that decides what a word is.
const sampleText = `It was the best of times, it was the WORST of times;
it was the age of wisdom... it was the age of foolishness!
Don't stop: e-mail the naïve café owner at 10:30, café-au-lait 3x.

THE end? The End. the_end 42nd "quoted" (paren) [bracket] tab	sep
`

// referenceCounts is the definition of the right answer: the shell
// pipeline, run for real.
func referenceCounts(t *testing.T, input string) []string {
	t.Helper()
	cmd := exec.Command("bash", "-c", `tr -cs 'A-Za-z' '\n' < "$1" | tr 'A-Z' 'a-z' | grep -v '^$' | sort | uniq -c | awk '{print $2, $1}'`, "ref", input)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference pipeline: %v", err)
	}
	return sortedLines(string(out))
}

func sortedLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

func readParts(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	parts := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("hidden in-progress file left behind: %s", e.Name())
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all.Write(data)
		parts++
	}
	if parts == 0 {
		t.Fatalf("no part files in %s", dir)
	}
	return sortedLines(all.String())
}

func writeSample(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "input.txt")
	// Repeat so every subtask sees many lines.
	if err := os.WriteFile(p, []byte(strings.Repeat(sampleText, 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("word counts differ from the reference pipeline\ngot  (%d lines): %v\nwant (%d lines): %v", len(got), got, len(want), want)
	}
}

// TestWordcountLocal runs the README's first command at -p 1 and -p 4 and
// compares with the shell pipeline.
func TestWordcountLocal(t *testing.T) {
	input := writeSample(t)
	want := referenceCounts(t, input)
	for _, p := range []string{"1", "4"} {
		t.Run("p"+p, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, errOut, code := runSluice(ctx, t, "local", "examples/wordcount.yaml", "--param", "input="+input, "-p", p)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			equalLines(t, sortedLines(out), want)
		})
	}
}

// TestWordcountDefaultInput runs the example exactly as the README shows.
func TestWordcountDefaultInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errOut, code := runSluice(ctx, t, "local", "examples/wordcount.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// Encrypted and mutually authenticated by default, said in one line.
	if n := strings.Count(errOut, "internal TLS on (automatic cluster CA)"); n != 1 {
		t.Errorf("sluice local says %d times that internal TLS is on, want once:\n%s", n, errOut)
	}
	if strings.Contains(errOut, "NOT secured: rpc") || strings.Contains(errOut, "internal connections are NOT secured") {
		t.Errorf("sluice local reports unsecured internal connections:\n%s", errOut)
	}
	equalLines(t, sortedLines(out), referenceCounts(t, filepath.Join(repoRoot(t), "examples/data/gettysburg.txt")))
}

// TestWordcountMultiProcess is the main demonstration: a JobManager
// and two TaskManager processes, wordcount at -p 4 submitted with sluice run.
func TestWordcountMultiProcess(t *testing.T) {
	c := startCluster(t, 2, 2)
	input := writeSample(t)
	outDir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", "examples/wordcount.yaml", "-p", "4",
		"--param", "input="+input, "--param", "output="+outDir)
	if code != 0 {
		t.Fatalf("sluice run exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "FINISHED") {
		t.Fatalf("sluice run did not print the final state: %q", stdout)
	}
	equalLines(t, readParts(t, outDir), referenceCounts(t, input))

	id := strings.Fields(stdout)[1]
	j := c.job(id)
	shuffled := false
	for _, v := range j["vertices"].([]any) {
		v := v.(map[string]any)
		if int(v["parallelism"].(float64)) != 4 {
			t.Errorf("vertex %v: parallelism %v, want 4", v["name"], v["parallelism"])
		}
		m := v["metrics"].(map[string]any)
		if strings.HasPrefix(v["name"].(string), "lines") {
			shuffled = true
			if m["write-bytes"].(float64) <= 0 || m["write-records"].(float64) <= 0 {
				t.Errorf("vertex %v feeds the shuffle but write-bytes=%v write-records=%v", v["name"], m["write-bytes"], m["write-records"])
			}
		}
	}
	if !shuffled {
		t.Errorf("no source vertex in %v", j["vertices"])
	}
	var o map[string]any
	if err := c.get("/overview", &o); err != nil {
		t.Fatal(err)
	}
	if o["taskmanagers"].(float64) != 2 || o["slots-total"].(float64) != 4 || o["jobs-finished"].(float64) != 1 {
		t.Errorf("/overview = %v; want 2 taskmanagers, 4 slots, 1 finished job", o)
	}
	var tms map[string][]map[string]any
	if err := c.get("/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	if len(tms["taskmanagers"]) != 2 {
		t.Fatalf("/taskmanagers lists %d", len(tms["taskmanagers"]))
	}
	// Each TM serves Prometheus metrics on its own port; the JM on /metrics.
	for _, tm := range tms["taskmanagers"] {
		body := httpGet(t, "http://"+tm["metricsAddress"].(string)+"/metrics")
		if !strings.Contains(body, "sluice_taskmanager_network_sent_bytes_total") {
			t.Errorf("TM metrics lack bytes sent: %.300s", body)
		}
	}
	// The job finished: the JobManager keeps its state series until the
	// job store removes it, and exports no TaskManager's network counters.
	body := httpGet(t, c.restURL+"/metrics")
	if m := `sluice_job_state{job_id="` + id + `"`; !strings.Contains(body, m) {
		t.Errorf("JM /metrics lacks %s", m)
	}
	if strings.Contains(body, "sluice_taskmanager_network_") {
		t.Errorf("JM /metrics re-exports the TaskManagers' network metrics")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

func submitUnbounded(t *testing.T, c *cluster, p string, rate string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", "examples/unbounded.yaml", "--detached", "-p", p, "--param", "rate="+rate)
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	if len(id) != 32 || strings.ContainsAny(id, " \n") {
		t.Fatalf("--detached must print the job id alone, got %q", stdout)
	}
	c.waitFor(30*time.Second, "job running with records flowing", func() bool {
		j := c.job(id)
		if j["state"] != "RUNNING" {
			return false
		}
		for _, v := range j["vertices"].([]any) {
			if v.(map[string]any)["metrics"].(map[string]any)["read-records"].(float64) > 0 {
				return true
			}
		}
		return false
	})
	return id
}

// TestCancelUnbounded: cancelling an endless job ends CANCELED within 5 s.
func TestCancelUnbounded(t *testing.T) {
	c := startCluster(t, 2, 2, "heartbeat.interval=500 ms")
	id := submitUnbounded(t, c, "4", "0")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	stdout, stderr, code := c.sluice(ctx, "cancel", id)
	if code != 0 {
		t.Fatalf("cancel: exit %d: %s", code, stderr)
	}
	took := time.Since(start)
	if state := c.jobState(id); state != "CANCELED" {
		t.Fatalf("state after cancel: %s (%s)", state, stdout)
	}
	if took > 5*time.Second {
		t.Fatalf("cancel took %s, want at most 5s", took)
	}
	t.Logf("cancelled in %s", took)
	// The slots are free again.
	c.waitFor(5*time.Second, "slots released", func() bool {
		var o map[string]any
		return c.get("/overview", &o) == nil && o["slots-available"].(float64) == 4
	})
	// Cancelling again is a clear conflict, not a crash.
	_, stderr, code = c.sluice(ctx, "cancel", id)
	if code == 0 || !strings.Contains(stderr, "CANCELED") {
		t.Errorf("second cancel: exit %d, stderr %q", code, stderr)
	}
}

// TestTaskManagerLoss: kill -9 of a TM during an unbounded job; the JM marks
// it lost within heartbeat.timeout, restarts the job on the remaining slots,
// and keeps serving.
func TestTaskManagerLoss(t *testing.T) {
	const timeout = 3 * time.Second
	c := startCluster(t, 2, 2, "heartbeat.interval=500 ms", "heartbeat.timeout=3 s",
		"restart-strategy.type=fixed-delay", "restart-strategy.fixed-delay.attempts=3",
		"restart-strategy.fixed-delay.delay=500 ms", "slot.request.timeout=10 s")
	id := submitUnbounded(t, c, "2", "2000")
	// Slot spreading put one subtask group on each TM; kill one.
	killed := time.Now()
	c.tms[0].Kill()
	c.waitFor(timeout+3*time.Second, "taskmanager marked lost", func() bool {
		var o map[string]any
		return c.get("/overview", &o) == nil && o["taskmanagers"].(float64) == 1
	})
	lost := time.Since(killed)
	if lost > timeout+2*time.Second {
		t.Errorf("TM marked lost after %s; heartbeat.timeout is %s", lost, timeout)
	}
	// The log line may follow the state change that /overview shows.
	c.waitFor(5*time.Second, "the JobManager's log to say the taskmanager was lost", func() bool {
		return strings.Contains(c.jm.Log(), "taskmanager lost")
	})
	c.waitFor(20*time.Second, "job restarted and running on the remaining TM", func() bool {
		j := c.job(id)
		return j["state"] == "RUNNING" && j["restarts"].(float64) >= 1
	})
	t.Logf("TM lost after %s; job restarted", lost)
	// Records flow again after the restart.
	before := readRecords(c.job(id))
	c.waitFor(10*time.Second, "records flowing after restart", func() bool { return readRecords(c.job(id)) > before })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel after failover: %s", stderr)
	}
}

// TestTaskManagerLossNoSlots: when the remaining slots cannot hold the job
// it fails with a reason that says so.
func TestTaskManagerLossNoSlots(t *testing.T) {
	c := startCluster(t, 2, 2, "heartbeat.interval=500 ms", "heartbeat.timeout=2 s",
		"restart-strategy.type=fixed-delay", "restart-strategy.fixed-delay.attempts=1",
		"restart-strategy.fixed-delay.delay=3 s", "slot.request.timeout=2 s")
	id := submitUnbounded(t, c, "4", "1000")
	c.tms[1].Kill()
	c.waitFor(20*time.Second, "job failed", func() bool { return c.jobState(id) == "FAILED" })
	cause, _ := c.job(id)["failure-cause"].(string)
	if !strings.Contains(cause, "not enough task slots") {
		t.Errorf("failure cause %q does not explain the missing slots", cause)
	}
	var o map[string]any
	if err := c.get("/overview", &o); err != nil {
		t.Fatalf("JobManager stopped serving: %v", err)
	}
}

func readRecords(j map[string]any) float64 {
	var n float64
	for _, v := range j["vertices"].([]any) {
		n += v.(map[string]any)["metrics"].(map[string]any)["read-records"].(float64)
	}
	return n
}

// TestBadInput: bad jobs and garbage on the internal ports get clear errors
// and crash nothing.
func TestBadInput(t *testing.T) {
	c := startCluster(t, 1, 2)
	dir := t.TempDir()
	cases := []struct {
		name, spec string
		args       []string
		want       string
	}{
		{"malformed yaml", "name: x\noperators: [\n", nil, "yaml"},
		{"unknown operator", "name: x\noperators:\n  - {name: a, type: teleport}\n", nil, "teleport"},
		{"cel syntax", "name: x\noperators:\n  - {name: g, type: generator, count: 10}\n  - {name: f, type: filter, input: g, expr: 'value >'}\n  - {name: s, type: blackhole, input: f}\n", nil, "expr"},
		{"cel type", "name: x\noperators:\n  - {name: g, type: generator, count: 10}\n  - {name: f, type: filter, input: g, expr: 'value + 1'}\n  - {name: s, type: blackhole, input: f}\n", nil, "bool"},
		{"missing parameter", "name: x\noperators:\n  - {name: l, type: file, path: '${input}'}\n  - {name: s, type: blackhole, input: l}\n", nil, "--param input="},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, tc := range cases {
		p := filepath.Join(dir, fmt.Sprintf("bad%d.yaml", i))
		if err := os.WriteFile(p, []byte(tc.spec), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := c.sluice(ctx, append([]string{"run", p}, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "400") {
			t.Errorf("%s: exit %d, stderr %q; want a 400 naming %q", tc.name, code, stderr, tc.want)
		}
	}
	// Garbage on the RPC port, the data port and the blob port.
	var tms map[string][]map[string]any
	if err := c.get("/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	dataAddr := tms["taskmanagers"][0]["dataAddress"].(string)
	rpcAddr := fmt.Sprintf("127.0.0.1:%d", c.rpcPort)
	garbage := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0xff, 0xfe, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06},
		{0x53, 0x4c, 0x01, 0x04, 0x00, 0x00},                   // a truncated frame header
		{0x53, 0x4c, 0x01, 0x04, 0x7f, 0xff, 0xff, 0xff, 0x00}, // an oversized frame
	}
	for _, addr := range []string{rpcAddr, dataAddr} {
		for _, g := range garbage {
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			_, _ = conn.Write(g)
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 512)
			_, _ = conn.Read(buf)
			conn.Close()
		}
	}
	// The TM logged why it dropped the data connections.
	c.waitFor(5*time.Second, "data port logs the bad connection", func() bool {
		return strings.Contains(c.tms[0].Log(), "data exchange")
	})
	// Everything still works: a good job runs to completion.
	input := writeSample(t)
	outDir := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := c.sluice(ctx, "run", "examples/wordcount.yaml", "-p", "2", "--param", "input="+input, "--param", "output="+outDir)
	if code != 0 {
		t.Fatalf("good job after garbage: exit %d\n%s\n%s", code, stdout, stderr)
	}
	equalLines(t, readParts(t, outDir), referenceCounts(t, input))
}

// TestBadConfig: an invalid value stops start-up with an error naming the
// key; an unknown key is a warning.
func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("rest:\n  port: eighty\n"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, stderr, code := runSluice(ctx, t, "jobmanager", "--config", bad)
	if code == 0 || !strings.Contains(stderr, "rest.port") {
		t.Errorf("bad rest.port: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runSluice(ctx, t, "local", "examples/wordcount.yaml", "-D", "heartbeat.timeout=soon")
	if code == 0 || !strings.Contains(stderr, "heartbeat.timeout") {
		t.Errorf("bad -D: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runSluice(ctx, t, "local", "examples/wordcount.yaml", "-D", "rest.prot=1")
	if code != 0 || !strings.Contains(stderr, `unknown configuration key`) || !strings.Contains(stderr, "rest.prot") {
		t.Errorf("unknown key: exit %d, stderr %q", code, stderr)
	}
}

// TestBenchExchange: the bench command prints one JSON object.
func TestBenchExchange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, stderr, code := runSluice(ctx, t, "bench", "exchange", "--records", "200000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{`"records_per_sec"`, `"mb_per_sec"`, `"raw_mb_per_sec"`} {
		if !strings.Contains(out, f) {
			t.Errorf("bench output lacks %s: %s", f, out)
		}
	}
}

// TestTaskManagerFrozen: a TM that stops answering but keeps its sockets open
// (SIGSTOP) is found only by the heartbeat timeout; when it wakes up, the JM
// tells it that it is unknown and it registers again with no stale tasks.
func TestTaskManagerFrozen(t *testing.T) {
	const timeout = 3 * time.Second
	c := startCluster(t, 2, 2, "heartbeat.interval=500 ms", "heartbeat.timeout=3 s",
		"restart-strategy.type=fixed-delay", "restart-strategy.fixed-delay.attempts=5",
		"restart-strategy.fixed-delay.delay=500 ms", "slot.request.timeout=10 s")
	id := submitUnbounded(t, c, "2", "2000")
	frozen := time.Now()
	if err := syscall.Kill(-c.tms[1].cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.waitFor(timeout+5*time.Second, "frozen taskmanager marked lost", func() bool {
		var o map[string]any
		return c.get("/overview", &o) == nil && o["taskmanagers"].(float64) == 1
	})
	lost := time.Since(frozen)
	// The last heartbeat may have arrived up to one interval before the freeze.
	if lost < timeout-600*time.Millisecond {
		t.Errorf("marked lost after %s, before heartbeat.timeout %s", lost, timeout)
	}
	c.waitFor(5*time.Second, "the JobManager's log to give the heartbeat timeout as the reason", func() bool {
		return strings.Contains(c.jm.Log(), "no heartbeat") || strings.Contains(c.jm.Log(), "silent-for")
	})
	c.waitFor(20*time.Second, "job running again", func() bool {
		j := c.job(id)
		return j["state"] == "RUNNING" && j["restarts"].(float64) >= 1
	})
	t.Logf("frozen TM marked lost after %s", lost)
	if err := syscall.Kill(-c.tms[1].cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitFor(15*time.Second, "woken taskmanager registered again", func() bool {
		var o map[string]any
		return c.get("/overview", &o) == nil && o["taskmanagers"].(float64) == 2
	})
	if j := c.job(id); j["state"] != "RUNNING" {
		t.Fatalf("job state after the TM came back: %v (%v)", j["state"], j["failure-cause"])
	}
}

// TestLocalInterrupt: Ctrl-C on `sluice local` of an endless job cancels it
// and exits promptly.
func TestLocalInterrupt(t *testing.T) {
	p := startProc(t, "local", "local", "examples/unbounded.yaml", "--param", "rate=1000", "-p", "2")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.Log(), "job scheduled") {
		if time.Now().After(deadline) {
			t.Fatal("job never scheduled")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("sluice local did not exit within 10s of Ctrl-C")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d, want 130", code)
	}
	if !strings.Contains(p.Log(), "CANCELED") {
		t.Errorf("log does not report the job CANCELED")
	}
	t.Logf("exited %s after Ctrl-C", time.Since(start))
}

// TestAttachedFile: a file attached with --file travels through the blob
// service (hash-verified) to the TaskManagers, which read it by its name.
func TestAttachedFile(t *testing.T) {
	c := startCluster(t, 2, 1)
	input := writeSample(t)
	outDir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", "examples/wordcount.yaml", "-p", "2", "--file", input,
		"--param", "input="+filepath.Base(input), "--param", "output="+outDir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	equalLines(t, readParts(t, outDir), referenceCounts(t, input))
}

// TestBenchREST: the REST benchmark runs and reports both variants.
func TestBenchREST(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, stderr, code := runSluice(ctx, t, "bench", "rest", "--duration", "300ms", "--connections", "2", "--jobs", "3", "--log-level", "error")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r map[string]float64
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if r["plain_anonymous_requests_per_sec"] <= 0 || r["https_token_requests_per_sec"] <= 0 || r["https_token_errors"] != 0 {
		t.Fatalf("bench rest: %s", out)
	}
}
