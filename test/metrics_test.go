package test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMetricsSeriesOfAJob scrapes a real TaskManager's and JobManager's
// /metrics while a job runs and after it ends: job ids are in job_id (job
// is Prometheus' scrape-job label), the TaskManager exports the Go and
// process collectors and is the only one to export its network counters,
// and a job's series go when it ends (per-task and per-vertex) or when the
// job store removes it (sluice_job_state).
func TestMetricsSeriesOfAJob(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, 2, "jobstore.expiration-time=10 s")
	id := submitUnbounded(t, c, "1", "100")
	_, port := metricsBind(t, c.tms[0])
	tmURL := "http://127.0.0.1:" + port + "/metrics"
	jobLabel := regexp.MustCompile(`[{,]job="`)
	ofJob := `job_id="` + id + `"`

	tm := httpGet(t, tmURL)
	jm := httpGet(t, c.restURL+"/metrics")
	for name, body := range map[string]string{"TaskManager": tm, "JobManager": jm} {
		if jobLabel.MatchString(body) {
			t.Errorf("the %s labels series job, Prometheus' target label:\n%s", name, grepLines(body, `job="`))
		}
	}
	if !regexp.MustCompile(`(?m)^sluice_task_records_in_total\{([^}]*,)?` + ofJob).MatchString(tm) {
		t.Errorf("TaskManager /metrics has no sluice_task_records_in_total of job %s while it runs:\n%s", id, tm)
	}
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "\nsluice_taskmanager_network_sent_bytes_total "} {
		if !strings.Contains(tm, want) {
			t.Errorf("TaskManager /metrics lacks %q while job %s runs:\n%s", strings.TrimSpace(want), id, tm)
		}
	}
	for _, want := range []string{"sluice_operator_records_in_total{" + ofJob, "sluice_job_state{" + ofJob} {
		if !strings.Contains(jm, want) {
			t.Errorf("JobManager /metrics lacks %q while job %s runs:\n%s", want, id, grepLines(jm, "sluice_"))
		}
	}
	if strings.Contains(jm, "sluice_taskmanager_network_") {
		t.Errorf("the JobManager re-exports the TaskManagers' network metrics:\n%s", grepLines(jm, "sluice_taskmanager_network_"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel: exit %d: %s", code, stderr)
	}
	c.waitFor(30*time.Second, "the job's series to go from the TaskManager, its per-vertex series from the JobManager", func() bool {
		jm := httpGet(t, c.restURL+"/metrics")
		return !strings.Contains(httpGet(t, tmURL), ofJob) && !strings.Contains(jm, "sluice_operator_records_in_total{"+ofJob) &&
			strings.Contains(jm, "sluice_job_state{"+ofJob)
	})
	c.waitFor(30*time.Second, "the job's state series to go once jobstore.expiration-time removed it", func() bool {
		return !strings.Contains(httpGet(t, c.restURL+"/metrics"), ofJob)
	})
}
