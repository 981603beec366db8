package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// eventTimeSpec is a keyed count over a generator on two TaskManagers; with eventTime the
// generator stamps each record with its id (ms) and emits watermarks, so the records cross
// the network in timed buffers and the watermarks as events.
func eventTimeSpec(t *testing.T, count int, eventTime bool) string {
	t.Helper()
	et := ""
	if eventTime {
		et = ", timestamp: id, watermark: {max-out-of-orderness: 100ms, idle-timeout: 10s}"
	}
	spec := fmt.Sprintf(`name: eventtime
parameters:
  output: ""
operators:
  - {name: g, type: generator, count: %d, rate: 4000, keys: 5, parallelism: 2%s}
  - {name: k, type: key_by, input: g, key: key}
  - {name: a, type: aggregate, input: k, function: sum, field: value, parallelism: 2}
  - {name: o, type: file, input: a, path: "${output}", parallelism: 2}
`, count, et)
	path := filepath.Join(t.TempDir(), "eventtime.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEventTimeWatermarksAcrossTaskManagers runs a job whose generator emits timestamps and
// watermarks at -p 2 on two TaskManagers: the keyed subtasks' input watermark
// (sluice_task_currentInputWatermark, the minimum over both generator subtasks) advances
// while the job runs, the JobManager shows it per vertex (sluice_operator_currentInputWatermark),
// and the bounded job's result equals that of the same job without event
// time: timed records and watermarks change nothing in the output.
func TestEventTimeWatermarksAcrossTaskManagers(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2, 2, "pipeline.auto-watermark-interval=50 ms", "heartbeat.interval=1 s")
	var tms map[string][]map[string]any
	if err := c.get("/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, tm := range tms["taskmanagers"] {
		urls = append(urls, "http://"+tm["metricsAddress"].(string)+"/metrics")
	}
	if len(urls) != 2 {
		t.Fatalf("%d TaskManagers, want 2", len(urls))
	}
	// inputWatermarks is the input watermark of every keyed subtask (vertex 1) of job id.
	inputWatermarks := func(id string) []float64 {
		var all []float64
		for _, u := range urls {
			all = append(all, seriesValues(httpGet(t, u), "sluice_task_currentInputWatermark", `job_id="`+id+`"`, `vertex="1"`)...)
		}
		return all
	}

	timedOut := filepath.Join(t.TempDir(), "timed")
	id := runDetached(t, c, eventTimeSpec(t, 40000, true), "--param", "output="+timedOut)
	var first float64
	c.waitFor(60*time.Second, "both keyed subtasks to report an input watermark", func() bool {
		wms := inputWatermarks(id)
		if len(wms) == 2 && slices.Min(wms) > 0 {
			first = slices.Min(wms)
			return true
		}
		return false
	})
	c.waitFor(60*time.Second, "the input watermark to advance", func() bool {
		wms := inputWatermarks(id)
		return len(wms) == 2 && slices.Min(wms) > first
	})
	// The watermark trails the ids emitted: ids are ms, 4000 a second over both subtasks.
	if first > 40000 {
		t.Fatalf("input watermark %v beyond the largest timestamp 39999", first)
	}
	// The JobManager shows the keyed vertex's, the least of its subtasks', from heartbeats.
	c.waitFor(60*time.Second, "the JobManager's /metrics to show the keyed vertex's input watermark", func() bool {
		v := seriesValues(httpGet(t, c.restURL+"/metrics"), "sluice_operator_currentInputWatermark", `job_id="`+id+`"`, `vertex="1"`)
		return len(v) == 1 && v[0] >= first
	})
	waitJobState(t, c, id, "FINISHED", 120*time.Second)

	plainOut := filepath.Join(t.TempDir(), "plain")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if stdout, stderr, code := c.sluice(ctx, "run", eventTimeSpec(t, 40000, false), "--param", "output="+plainOut); code != 0 {
		t.Fatalf("sluice run exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	timed, plain := readParts(t, timedOut), readParts(t, plainOut)
	if len(plain) != 5 {
		t.Fatalf("job without event time wrote %v, want 5 keyed sums", plain)
	}
	if !slices.Equal(timed, plain) {
		t.Fatalf("output with event time differs:\n%s\nwithout:\n%s", strings.Join(timed, "\n"), strings.Join(plain, "\n"))
	}
}
