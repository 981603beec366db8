package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// flinkFields are the response field names Flink's REST API reference
// (release 2.2, "REST API" page, and rest_v1_dispatcher.yml) documents for
// each path, nested names joined by "." and array elements written "[]".
// Paths whose response the reference gives as "any" (the metric endpoints,
// /jobs/{id}/config, job-execution-result) list the names of the class
// Flink serializes there (MetricCollectionResponseBody, AggregatedMetric,
// JobConfigInfo, JobResult). Maps with free keys (timestamps, user-config,
// status-duration, aggregated.metrics) are checked as fields, not inside.
var flinkFields = map[string][]string{
	"/config": {"features", "features.web-cancel", "features.web-history", "features.web-rescale", "features.web-submit",
		"flink-revision", "flink-version", "refresh-interval", "timezone-name", "timezone-offset"},
	"/overview": {"flink-commit", "flink-version", "jobs-cancelled", "jobs-failed", "jobs-finished", "jobs-running",
		"slots-available", "slots-free-and-blocked", "slots-total", "taskmanagers", "taskmanagers-blocked"},
	"/jobmanager/environment": {"classpath", "jvm", "jvm.arch", "jvm.options", "jvm.version"},
	"/jobmanager/logs":        {"logs", "logs[].mtime", "logs[].name", "logs[].size"},
	"/jobmanager/metrics":     {"[].id"},
	"/jobmanager/metrics?get=Status.JVM.Memory.Heap.Used,numRegisteredTaskManagers": {"[].id", "[].value"},
	"/jobs/{id}": {"duration", "end-time", "isStoppable", "jid", "job-type", "maxParallelism", "name", "now", "pending-operators",
		"plan", "plan.jid", "plan.name", "plan.nodes", "plan.type", "start-time", "state", "status-counts", "timestamps",
		"vertices", "vertices[].duration", "vertices[].end-time", "vertices[].id", "vertices[].maxParallelism", "vertices[].metrics",
		"vertices[].metrics.accumulated-backpressured-time", "vertices[].metrics.accumulated-busy-time", "vertices[].metrics.accumulated-idle-time",
		"vertices[].metrics.read-bytes", "vertices[].metrics.read-bytes-complete", "vertices[].metrics.read-records",
		"vertices[].metrics.read-records-complete", "vertices[].metrics.write-bytes", "vertices[].metrics.write-bytes-complete",
		"vertices[].metrics.write-records", "vertices[].metrics.write-records-complete", "vertices[].name", "vertices[].parallelism",
		"vertices[].slotSharingGroupId", "vertices[].start-time", "vertices[].status", "vertices[].tasks"},
	"/jobs/{id}/config": {"jid", "name", "execution-config", "execution-config.job-parallelism", "execution-config.object-reuse-mode",
		"execution-config.restart-strategy", "execution-config.user-config"},
	"/jobs/{id}/exceptions":                     {"exceptionHistory", "exceptionHistory.entries", "exceptionHistory.truncated"},
	"/jobs/{id}/execution-result":               {"status", "status.id"},
	"/jobs/{id}/metrics":                        {"[].id"},
	"/jobs/{id}/metrics?get=numRestarts,uptime": {"[].id", "[].value"},
	"/jobs/{id}/plan": {"plan", "plan.jid", "plan.name", "plan.nodes", "plan.nodes[].description", "plan.nodes[].id", "plan.nodes[].inputs",
		"plan.nodes[].inputs[].exchange", "plan.nodes[].inputs[].id", "plan.nodes[].inputs[].num", "plan.nodes[].inputs[].ship_strategy",
		"plan.nodes[].operator", "plan.nodes[].operator_strategy", "plan.nodes[].optimizer_properties", "plan.nodes[].parallelism", "plan.type"},
	"/jobs/{id}/vertices/{vid}": {"aggregated", "aggregated.metrics", "aggregated.status-duration", "id", "maxParallelism", "name", "now",
		"parallelism", "subtasks", "subtasks[].attempt", "subtasks[].duration", "subtasks[].end-time", "subtasks[].endpoint", "subtasks[].metrics",
		"subtasks[].metrics.accumulated-backpressured-time", "subtasks[].metrics.accumulated-busy-time", "subtasks[].metrics.accumulated-idle-time",
		"subtasks[].metrics.read-bytes", "subtasks[].metrics.read-bytes-complete", "subtasks[].metrics.read-records",
		"subtasks[].metrics.read-records-complete", "subtasks[].metrics.write-bytes", "subtasks[].metrics.write-bytes-complete",
		"subtasks[].metrics.write-records", "subtasks[].metrics.write-records-complete", "subtasks[].other-concurrent-attempts",
		"subtasks[].start-time", "subtasks[].start_time", "subtasks[].status", "subtasks[].status-duration", "subtasks[].subtask",
		"subtasks[].taskmanager-id"},
	"/jobs/{id}/vertices/{vid}/backpressure": {"backpressure-level", "backpressureLevel", "end-timestamp", "status", "subtasks",
		"subtasks[].attempt-number", "subtasks[].backpressure-level", "subtasks[].backpressureLevel", "subtasks[].busyRatio",
		"subtasks[].idleRatio", "subtasks[].other-concurrent-attempts", "subtasks[].ratio", "subtasks[].subtask"},
	"/jobs/{id}/vertices/{vid}/metrics":                                    {"[].id"},
	"/jobs/{id}/vertices/{vid}/metrics?get=0.numRecordsIn,0.numRecordsOut": {"[].id", "[].value"},
	"/jobs/{id}/vertices/{vid}/subtasks/metrics":                           {"[].id"},
	"/jobs/{id}/vertices/{vid}/subtasks/metrics?get=numRecordsIn":          {"[].id", "[].min", "[].max", "[].avg", "[].sum", "[].skew"},
	"/taskmanagers": {"taskmanagers", "taskmanagers[].blocked", "taskmanagers[].dataPort", "taskmanagers[].freeResource", "taskmanagers[].freeSlots",
		"taskmanagers[].hardware", "taskmanagers[].hardware.cpuCores", "taskmanagers[].hardware.freeMemory", "taskmanagers[].hardware.managedMemory",
		"taskmanagers[].hardware.physicalMemory", "taskmanagers[].id", "taskmanagers[].jmxPort", "taskmanagers[].memoryConfiguration",
		"taskmanagers[].path", "taskmanagers[].slotsNumber", "taskmanagers[].timeSinceLastHeartbeat", "taskmanagers[].totalResource"},
	"/taskmanagers/{tm}": {"allocatedSlots", "allocatedSlots[].jobId", "allocatedSlots[].resource", "blocked", "dataPort",
		"freeResource", "freeResource.cpuCores", "freeResource.extendedResources", "freeResource.managedMemory", "freeResource.networkMemory",
		"freeResource.taskHeapMemory", "freeResource.taskOffHeapMemory", "freeSlots",
		"hardware", "hardware.cpuCores", "hardware.freeMemory", "hardware.managedMemory", "hardware.physicalMemory", "id", "jmxPort",
		"memoryConfiguration", "memoryConfiguration.frameworkHeap", "memoryConfiguration.frameworkOffHeap", "memoryConfiguration.jvmMetaspace",
		"memoryConfiguration.jvmOverhead", "memoryConfiguration.managedMemory", "memoryConfiguration.networkMemory",
		"memoryConfiguration.taskHeap", "memoryConfiguration.taskOffHeap", "memoryConfiguration.totalFlinkMemory",
		"memoryConfiguration.totalProcessMemory", "metrics", "metrics.directCount", "metrics.directMax", "metrics.directUsed",
		"metrics.garbageCollectors", "metrics.garbageCollectors[].count", "metrics.garbageCollectors[].name", "metrics.garbageCollectors[].time",
		"metrics.heapCommitted", "metrics.heapMax", "metrics.heapUsed", "metrics.mappedCount", "metrics.mappedMax", "metrics.mappedUsed",
		"metrics.nettyShuffleMemoryAvailable", "metrics.nettyShuffleMemorySegmentsAvailable", "metrics.nettyShuffleMemorySegmentsTotal",
		"metrics.nettyShuffleMemorySegmentsUsed", "metrics.nettyShuffleMemoryTotal", "metrics.nettyShuffleMemoryUsed", "metrics.nonHeapCommitted",
		"metrics.nonHeapMax", "metrics.nonHeapUsed", "path", "slotsNumber", "timeSinceLastHeartbeat",
		"totalResource", "totalResource.cpuCores", "totalResource.extendedResources", "totalResource.managedMemory", "totalResource.networkMemory",
		"totalResource.taskHeapMemory", "totalResource.taskOffHeapMemory"},
	"/taskmanagers/{tm}/metrics": {"[].id"},
	"/taskmanagers/{tm}/metrics?get=Status.JVM.Memory.Heap.Used,Status.Network.TotalBytesSent": {"[].id", "[].value"},
	"/taskmanagers/{tm}/logs": {"logs", "logs[].mtime", "logs[].name", "logs[].size"},
}

// flinkFailedFields are checked on a job that failed: the exception entries
// and the job result only exist then.
var flinkFailedFields = map[string][]string{
	"/jobs/{id}/exceptions": {"exceptionHistory.entries[].concurrentExceptions", "exceptionHistory.entries[].endpoint",
		"exceptionHistory.entries[].exceptionName", "exceptionHistory.entries[].failureLabels", "exceptionHistory.entries[].stacktrace",
		"exceptionHistory.entries[].taskManagerId", "exceptionHistory.entries[].taskName", "exceptionHistory.entries[].timestamp"},
	// JobResult as Flink's JobResultSerializer writes it.
	"/jobs/{id}/execution-result": {"status", "status.id", "job-execution-result", "job-execution-result.id",
		"job-execution-result.application-status", "job-execution-result.accumulator-results", "job-execution-result.net-runtime",
		"job-execution-result.failure-cause"},
}

// fieldPaths collects the field names of a decoded JSON value as
// flinkFields writes them.
func fieldPaths(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p] = true
			fieldPaths(e, p, out)
		}
	case []any:
		for _, e := range x {
			fieldPaths(e, prefix+"[]", out)
		}
	}
}

// getV1 GETs /v1+path from the cluster and decodes the JSON answer.
func getV1(t *testing.T, c *cluster, path string) (any, string) {
	t.Helper()
	resp, err := http.Get(c.restURL + "/v1" + path)
	if err != nil {
		t.Fatalf("GET /v1%s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1%s: %s: %s", path, resp.Status, body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET /v1%s: %v: %s", path, err, body)
	}
	return v, string(body)
}

// checkFlinkFields calls every path of want under /v1/ and reports the
// field names Flink documents that the answer lacks.
func checkFlinkFields(t *testing.T, c *cluster, want map[string][]string, subst *strings.Replacer) {
	t.Helper()
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		v, body := getV1(t, c, subst.Replace(p))
		got := map[string]bool{}
		fieldPaths(v, "", got)
		for _, f := range want[p] {
			if !got[f] {
				t.Errorf("GET /v1%s lacks Flink's field %q:\n%.1500s", p, f, body)
			}
		}
	}
}

// TestFlinkRESTPaths: every Flink path sluice serves answers under /v1/ with
// the field names Flink's REST API reference documents for it, on a real
// cluster running a real job; back-pressure comes from the data plane (a
// stopped consumer makes its producers' ratio high, a running one lets it
// fall); log files come from each process.
func TestFlinkRESTPaths(t *testing.T) {
	t.Parallel()
	logDir := t.TempDir()
	c := startCluster(t, 2, 1, "heartbeat.interval=300 ms", "env.log.dir="+logDir, "restart-strategy.type=none")
	id := submitUnbounded(t, c, "2", "5000")

	// The job's vertex ids, from its plan.
	planV, _ := getV1(t, c, "/jobs/"+id+"/plan")
	nodes := planV.(map[string]any)["plan"].(map[string]any)["nodes"].([]any)
	if len(nodes) < 2 {
		t.Fatalf("plan: %v", nodes)
	}
	src := nodes[0].(map[string]any)["id"].(string)
	var keyed string
	for _, n := range nodes {
		for _, in := range asSlice(n.(map[string]any)["inputs"]) {
			if in.(map[string]any)["ship_strategy"] == "HASH" {
				keyed = n.(map[string]any)["id"].(string)
			}
		}
	}
	if len(src) != 32 || keyed == "" {
		t.Fatalf("vertex ids: source %q, keyed %q (want 32 hex digits, and a vertex fed by a HASH edge)", src, keyed)
	}
	// Per-second rates and ratios need two heartbeats of every subtask.
	c.waitFor(30*time.Second, "back-pressure sampled", func() bool {
		v, _ := getV1(t, c, "/jobs/"+id+"/vertices/"+src+"/backpressure")
		return v.(map[string]any)["status"] == "ok"
	})

	subst := strings.NewReplacer("{id}", id, "{vid}", keyed, "{tm}", "tm-1")
	checkFlinkFields(t, c, flinkFields, subst)

	// Values, not only names.
	v, _ := getV1(t, c, "/jobs/"+id+"/vertices/"+keyed+"/metrics?get=0.numRecordsIn,1.numRecordsIn")
	if ms := asSlice(v); len(ms) != 2 || ms[0].(map[string]any)["value"] == "0" && ms[1].(map[string]any)["value"] == "0" {
		t.Errorf("the keyed vertex received nothing: %v", v)
	}
	v, _ = getV1(t, c, "/taskmanagers/tm-1")
	if tm := v.(map[string]any); tm["dataPort"].(float64) <= 0 || tm["hardware"].(map[string]any)["cpuCores"].(float64) < 1 || tm["freeSlots"].(float64) != 0 {
		t.Errorf("taskmanager tm-1: %v", tm)
	}

	// Logs: each process's own file, as text; a TaskManager's from the TaskManager.
	for _, p := range []struct{ list, file, want string }{
		{"/jobmanager/logs", "sluice-jobmanager.log", "jobmanager started"},
		{"/taskmanagers/tm-2/logs", "sluice-taskmanager-tm-2.log", "taskmanager started"},
	} {
		v, body := getV1(t, c, p.list)
		logs := asSlice(v.(map[string]any)["logs"])
		if len(logs) != 1 || logs[0].(map[string]any)["name"] != p.file {
			t.Errorf("GET /v1%s: %s, want %s only (the files of other processes in env.log.dir are theirs)", p.list, body, p.file)
		}
		code, text, ctype := getText(t, c.restURL+"/v1"+p.list+"/"+p.file)
		if code != 200 || !strings.Contains(text, p.want) || !strings.HasPrefix(ctype, "text/plain") {
			t.Errorf("GET %s/%s: %d %s %.300q", p.list, p.file, code, ctype, text)
		}
	}
	if code, text, _ := getText(t, c.restURL+"/v1/taskmanagers/tm-1/logs/..%2f..%2fetc%2fpasswd"); code != 404 || strings.Contains(text, "root:") {
		t.Errorf("a path for a log file name: %d %.200s", code, text)
	}
	if code, _, _ := getText(t, c.restURL+"/v1/taskmanagers/tm-1/logs/sluice-jobmanager.log"); code != 404 {
		t.Errorf("tm-1 serves the JobManager's log file: %d", code)
	}
	if st, err := os.Stat(filepath.Join(logDir, "sluice-taskmanager-tm-1.log")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("tm-1's log file: %v %v, want 0600", st, err)
	}

	// Back-pressure from the data plane: stop tm-2, whose keyed subtask
	// consumes half of what the source subtask on tm-1 sends.
	ratio := func() (float64, string) {
		v, _ := getV1(t, c, "/jobs/"+id+"/vertices/"+src+"/backpressure")
		for _, s := range asSlice(v.(map[string]any)["subtasks"]) {
			s := s.(map[string]any)
			if s["subtask"].(float64) == 0 {
				return s["ratio"].(float64), v.(map[string]any)["backpressureLevel"].(string)
			}
		}
		t.Fatalf("no subtask 0: %v", v)
		return 0, ""
	}
	if r, _ := ratio(); r > 0.5 {
		t.Fatalf("source subtask 0 back-pressured %.2f before its consumer stopped", r)
	}
	c.tms[1].Signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			c.tms[1].Signal(syscall.SIGCONT)
		}
	}()
	c.waitFor(20*time.Second, "the source back-pressured by its stopped consumer", func() bool {
		r, level := ratio()
		return r > 0.5 && level == "high"
	})
	c.tms[1].Signal(syscall.SIGCONT)
	stopped = false
	c.waitFor(40*time.Second, "back-pressure gone once the consumer runs", func() bool {
		r, _ := ratio()
		return r < 0.1
	})

	// A job that fails: its exceptions and its result in Flink's fields.
	// The first one makes room for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel: %s", stderr)
	}
	c.waitFor(30*time.Second, "the job canceled", func() bool { return c.jobState(id) == "CANCELED" })
	v, _ = getV1(t, c, "/jobs/"+id+"/execution-result")
	if r := v.(map[string]any)["job-execution-result"].(map[string]any); v.(map[string]any)["status"].(map[string]any)["id"] != "COMPLETED" || r["application-status"] != "CANCELED" {
		t.Errorf("execution result of the canceled job: %v", v)
	}
	spec := filepath.Join(t.TempDir(), "fails.yaml")
	os.WriteFile(spec, []byte("name: fails\noperators:\n  - {name: lines, type: socket, host: 127.0.0.1, port: 1}\n  - {name: out, type: blackhole, input: lines}\n"), 0o644)
	out, stderr, code := c.sluice(ctx, "run", spec, "--detached")
	if code != 0 {
		t.Fatalf("submit: %s", stderr)
	}
	failed := strings.TrimSpace(out)
	c.waitFor(30*time.Second, "the job failed", func() bool { return c.jobState(failed) == "FAILED" })
	checkFlinkFields(t, c, flinkFailedFields, strings.NewReplacer("{id}", failed))
	v, _ = getV1(t, c, "/jobs/"+failed+"/execution-result")
	if r := v.(map[string]any)["job-execution-result"].(map[string]any); r["application-status"] != "FAILED" || r["id"] != failed {
		t.Errorf("execution result: %v", r)
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// getText GETs url and returns the status, the body and its Content-Type.
func getText(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Content-Type")
}
