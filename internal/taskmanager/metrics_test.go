package taskmanager

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-dev/sluice/internal/config"
)

// scrape returns what /metrics serves, in the text format.
func scrape(t *testing.T, tm *TaskManager) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(tm.metricsRegistry(), promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics answered %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

var (
	jobLabelRE   = regexp.MustCompile(`[{,]job="`)
	jobIDLabelRE = regexp.MustCompile(`[{,]job_id="job-a"`)
)

// A running subtask's series carry job_id (never job, which Prometheus
// owns), and are gone once the job's last task ended; the runtime and
// process collectors are there too.
func TestTaskManagerMetrics(t *testing.T) {
	tm, err := New(Options{Config: config.New(), WorkDir: t.TempDir(), ID: "tm-1"})
	if err != nil {
		t.Fatal(err)
	}
	tm.ctx = context.Background()
	ctx, cancel := context.WithCancel(tm.ctx)
	defer cancel()
	jr := &jobRun{key: attemptKey{"job-a", 1}, ctx: ctx, cancel: cancel, tasks: map[[2]int]*runningTask{}}
	for _, tk := range [][2]int{{1, 0}, {2, 0}} {
		jr.tasks[tk] = &runningTask{job: "job-a", attempt: 1, vertex: tk[0], subtask: tk[1]}
	}
	tm.jobs[jr.key] = jr
	jr.tasks[[2]int{2, 0}].alignmentNs.Store(1500)
	// The cancelled attempt 0 of the same subtask has not ended yet: its
	// series must not collide with attempt 1's.
	old := &jobRun{key: attemptKey{"job-a", 0}, ctx: ctx, cancel: cancel, tasks: map[[2]int]*runningTask{{1, 0}: {job: "job-a", vertex: 1}}}
	tm.jobs[old.key] = old

	out := scrape(t, tm)
	if jobLabelRE.MatchString(out) {
		t.Errorf("series labelled job (Prometheus' target label):\n%s", out)
	}
	if !jobIDLabelRE.MatchString(out) {
		t.Errorf("no series labelled job_id while job-a runs:\n%s", out)
	}
	for _, name := range []string{"sluice_task_records_in_total{", "go_goroutines ", "process_cpu_seconds_total ", "sluice_taskmanager_network_sent_bytes_total "} {
		if !strings.Contains(out, "\n"+name) {
			t.Errorf("%s not exported", strings.TrimSpace(name))
		}
	}

	// Flink's checkpointAlignmentTime per subtask, in ns.
	if want := `sluice_task_checkpointAlignmentTime{attempt="1",job_id="job-a",subtask="0",vertex="2"} 1500`; !strings.Contains(out, want) {
		t.Errorf("want %s in:\n%s", want, out)
	}

	tm.taskEnded(old, [2]int{1, 0})
	tm.taskEnded(jr, [2]int{1, 0})
	if !jobIDLabelRE.MatchString(scrape(t, tm)) {
		t.Errorf("job-a's running task lost its series when another task ended")
	}
	tm.taskEnded(jr, [2]int{2, 0})
	if out := scrape(t, tm); jobIDLabelRE.MatchString(out) {
		t.Errorf("series of job-a remain after its last task ended:\n%s", out)
	}
}
