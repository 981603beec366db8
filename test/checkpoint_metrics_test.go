package test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seriesValues returns the values of the series of metric name in a
// Prometheus text exposition whose labels contain every one of labels
// (each `key="value"`).
func seriesValues(body, name string, labels ...string) []float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	var out []float64
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if v, err := strconv.ParseFloat(m[2], 64); ok && err == nil {
			out = append(out, v)
		}
	}
	return out
}

// TestCheckpointMetrics runs examples/stateful.yaml with 1 s checkpoints
// and scrapes the JobManager's and the TaskManager's /metrics: the job's
// checkpoint series (Flink's names after sluice_job_), the per-vertex and
// per-subtask alignment time, with plausible values; GET /jobs/{id} shows
// the checkpoint counts.
func TestCheckpointMetrics(t *testing.T) {
	t.Parallel()
	c, _ := checkpointCluster(t, 1, false)
	_, port := metricsBind(t, c.tms[0])
	tmURL := "http://127.0.0.1:" + port + "/metrics"
	out := t.TempDir()
	id := runDetached(t, c, "examples/stateful.yaml", "-p", "2", "--param", "output="+out)
	waitCheckpoints(t, c, id, 2)
	ofJob := `job_id="` + id + `"`

	var jm string
	c.waitFor(30*time.Second, "the JobManager's /metrics to count the completed checkpoints", func() bool {
		jm = httpGet(t, c.restURL+"/metrics")
		v := seriesValues(jm, "sluice_job_numberOfCompletedCheckpoints", ofJob)
		return len(v) == 1 && v[0] >= 2
	})
	for _, tc := range []struct {
		name string
		ok   func(float64) bool
		want string
	}{
		{"sluice_job_numberOfCompletedCheckpoints", func(v float64) bool { return v >= 2 }, ">= 2"},
		{"sluice_job_totalNumberOfCheckpoints", func(v float64) bool { return v >= 2 }, ">= 2"},
		{"sluice_job_numberOfFailedCheckpoints", func(v float64) bool { return v == 0 }, "0"},
		{"sluice_job_numberOfInProgressCheckpoints", func(v float64) bool { return v == 0 || v == 1 }, "0 or 1"},
		{"sluice_job_lastCheckpointDuration", func(v float64) bool { return v >= 0 && v < 60000 }, "a duration in ms"},
		{"sluice_job_lastCheckpointSize", func(v float64) bool { return v > 0 }, "> 0 (the keyed sums and the generator's position)"},
		{"sluice_job_lastCheckpointRestoreTimestamp", func(v float64) bool { return v == 0 }, "0 (never restored)"},
	} {
		v := seriesValues(jm, tc.name, ofJob, `job_name="stateful"`)
		if len(v) != 1 || !tc.ok(v[0]) {
			t.Errorf("JobManager /metrics: %s of job %s is %v, want one series of %s:\n%s", tc.name, id, v, tc.want, grepLines(jm, "sluice_job_"))
		}
	}
	// One alignment series per vertex (source chain, keyed sum chain).
	if v := seriesValues(jm, "sluice_operator_checkpointAlignmentTime", ofJob); len(v) != 2 || slices.Min(v) < 0 {
		t.Errorf("JobManager /metrics: sluice_operator_checkpointAlignmentTime of job %s is %v, want 2 vertices >= 0:\n%s", id, v, grepLines(jm, "sluice_operator_checkpointAlignmentTime"))
	}
	tm := httpGet(t, tmURL)
	if v := seriesValues(tm, "sluice_task_checkpointAlignmentTime", ofJob); len(v) != 4 || slices.Min(v) < 0 {
		t.Errorf("TaskManager /metrics: sluice_task_checkpointAlignmentTime of job %s is %v, want 4 subtasks >= 0:\n%s", id, v, grepLines(tm, "sluice_task_checkpointAlignmentTime"))
	}

	j := c.job(id)
	counts, _ := j["checkpoints"].(map[string]any)
	if done, _ := counts["completed"].(float64); done < 2 {
		t.Errorf("GET /jobs/%s: checkpoints %v, want completed >= 2", id, j["checkpoints"])
	}
	waitJobState(t, c, id, "FINISHED", 120*time.Second)
	// A finished job keeps its checkpoint counts on /metrics until the job
	// store removes it, like sluice_job_numRestarts.
	jm = httpGet(t, c.restURL+"/metrics")
	if v := seriesValues(jm, "sluice_job_numberOfCompletedCheckpoints", ofJob); len(v) != 1 || v[0] < 2 {
		t.Errorf("finished job: sluice_job_numberOfCompletedCheckpoints is %v, want >= 2", v)
	}
}
