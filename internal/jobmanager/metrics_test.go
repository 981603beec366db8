package jobmanager

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// scrapeJM returns what GET /metrics serves, in the text format.
func scrapeJM(t *testing.T, jm *JobManager) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(jm.metrics.registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics answered %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// Series use job_id (Prometheus owns job); a job's per-vertex series go
// when it reaches a terminal state, its sluice_job_state when the job store
// removes it; the TaskManagers' network counters are theirs to export.
func TestJobManagerMetricsSeries(t *testing.T) {
	jm := newTestJM(t, map[string]string{"jobstore.expiration-time": "60"})
	jm.tms["tm-1"] = &taskManager{id: "tm-1", slots: 2, free: 1, bytesSent: 10, bytesRecv: 20}
	now := time.Now()
	addJob(t, jm, "job-a", "spec a", Running, time.Time{}, &task{vertex: 0, state: TaskRunning, metrics: taskMetrics{readRecords: 5, alignmentNS: 700,
		inWM: 1500, hasInWM: true, outWM: 1400, hasOutWM: true}},
		&task{vertex: 0, subtask: 1, state: TaskRunning, metrics: taskMetrics{alignmentNS: 300, inWM: 1200, hasInWM: true}})
	jm.jobs["job-a"].plan = &dataflow.Plan{Vertices: []*dataflow.Vertex{{ID: 0, Name: "source -> print"}}}
	jm.jobs["job-a"].restarts = 2

	out := scrapeJM(t, jm)
	if regexp.MustCompile(`[{,]job="`).MatchString(out) {
		t.Errorf("series labelled job (Prometheus' target label):\n%s", out)
	}
	for _, want := range []string{
		`sluice_operator_records_in_total{job_id="job-a",job_name="job-a",vertex="0",vertex_name="source -> print"} 5`,
		`sluice_job_state{job_id="job-a",job_name="job-a",state="RUNNING"} 1`,
		`sluice_job_numRestarts{job_id="job-a",job_name="job-a"} 2`,
		// The vertex's slowest subtask, not a sum.
		`sluice_operator_checkpointAlignmentTime{job_id="job-a",job_name="job-a",vertex="0",vertex_name="source -> print"} 700`,
		// The least of the subtasks' input watermarks.
		`sluice_operator_currentInputWatermark{job_id="job-a",job_name="job-a",vertex="0",vertex_name="source -> print"} 1200`,
		"go_goroutines ", "process_cpu_seconds_total ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("running job: /metrics lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sluice_taskmanager_network_") {
		t.Errorf("the JobManager exports the TaskManagers' network metrics:\n%s", out)
	}
	if strings.Contains(out, "sluice_operator_currentOutputWatermark") {
		t.Errorf("an output watermark for a vertex with a subtask without one:\n%s", out)
	}

	// Terminal: the per-vertex series go, the job's state stays.
	jm.jobs["job-a"].state, jm.jobs["job-a"].end = Finished, now.Add(-2*time.Minute)
	out = scrapeJM(t, jm)
	if strings.Contains(out, `sluice_operator_records_in_total{job_id="job-a"`) {
		t.Errorf("per-vertex series of a finished job remain:\n%s", out)
	}
	if !strings.Contains(out, `sluice_job_state{job_id="job-a",job_name="job-a",state="FINISHED"} 1`) {
		t.Errorf("a finished job's state is not exported until it is removed:\n%s", out)
	}

	// Removed from the job store: nothing names it any more.
	if n := jm.expireJobs(now); n != 1 {
		t.Fatalf("expired %d jobs, want 1", n)
	}
	if out = scrapeJM(t, jm); strings.Contains(out, `job_id="job-a"`) {
		t.Errorf("series of a removed job remain:\n%s", out)
	}
}
