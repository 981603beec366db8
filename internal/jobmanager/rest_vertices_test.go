package jobmanager

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/restapi"
)

// restGet serves GET path through the router (no authentication: the
// handlers alone) and decodes a 200 answer into out.
func restGet(t *testing.T, rs *restServer, path string, out any) {
	t.Helper()
	rec := httptest.NewRecorder()
	rs.mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, rec.Body)
	}
}

// twoVertexJob adds a running job "j": a source of parallelism 2 hashed
// into a sink of parallelism 2, on tm-1.
func twoVertexJob(t *testing.T, jm *JobManager) *job {
	t.Helper()
	jm.tms["tm-1"] = &taskManager{id: "tm-1", dataAddr: "127.0.0.1:7001", rpcAddr: "127.0.0.1:7002", slots: 2, free: 0, lastBeat: time.Now()}
	now := time.Now()
	addJob(t, jm, "j", "spec", Running, time.Time{})
	j := jm.jobs["j"]
	j.plan = &dataflow.Plan{Name: "j", MaxParallelism: 128, Vertices: []*dataflow.Vertex{
		{ID: 0, Name: "src", Operators: []string{"src"}, Parallelism: 2, OutEdges: []int{0}, Source: true},
		{ID: 1, Name: "count -> out", Operators: []string{"count", "out"}, Parallelism: 2, InEdges: []int{0}},
	}, Edges: []*dataflow.Edge{{ID: 0, Source: 0, Target: 1, Partitioning: dataflow.PartitionHash, Key: "user"}}}
	for v := 0; v < 2; v++ {
		for s := 0; s < 2; s++ {
			j.tasks[taskKey{v, s}] = &task{vertex: v, subtask: s, tm: "tm-1", state: TaskRunning, start: now.Add(-time.Minute),
				metrics: taskMetrics{readRecords: int64(10 * (v + 1)), writeRecords: int64(20 * (s + 1))}}
		}
	}
	j.timestamps[Running] = now.Add(-time.Minute)
	return j
}

func TestVertexIDsAreStableHex(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	a := vertexID("job-a", 0)
	if !hex32.MatchString(a) {
		t.Fatalf("vertex id %q: want 32 hex digits", a)
	}
	if vertexID("job-a", 0) != a {
		t.Error("the same job and vertex got another id")
	}
	if vertexID("job-a", 1) == a || vertexID("job-b", 0) == a {
		t.Error("another vertex or job got the same id")
	}
}

func TestJobPlanHasVerticesAndEdges(t *testing.T) {
	jm := newTestJM(t, nil)
	twoVertexJob(t, jm)
	rs := jm.newREST(nil)
	var p restapi.JobPlan
	restGet(t, rs, "/jobs/j/plan", &p)
	if p.Plan.JID != "j" || p.Plan.Type != "STREAMING" || len(p.Plan.Nodes) != 2 {
		t.Fatalf("plan: %+v", p.Plan)
	}
	src, sink := p.Plan.Nodes[0], p.Plan.Nodes[1]
	if src.ID != vertexID("j", 0) || sink.ID != vertexID("j", 1) || sink.Parallelism != 2 || len(src.Inputs) != 0 {
		t.Errorf("nodes: %+v", p.Plan.Nodes)
	}
	if len(sink.Inputs) != 1 || sink.Inputs[0].ID != src.ID || sink.Inputs[0].ShipStrategy != "HASH" || sink.Inputs[0].Key != "user" {
		t.Errorf("the sink's input: %+v, want HASH by user from %s", sink.Inputs, src.ID)
	}
	// GET /jobs/{id} uses the same ids.
	var d restapi.JobDetails
	restGet(t, rs, "/jobs/j", &d)
	if d.Vertices[1].ID != sink.ID || d.Plan == nil || d.Plan.Nodes[1].ID != sink.ID {
		t.Errorf("GET /jobs/j vertex ids %q, plan %+v; want %s", d.Vertices[1].ID, d.Plan, sink.ID)
	}
}

func TestVertexDetailsListsSubtasks(t *testing.T) {
	jm := newTestJM(t, nil)
	twoVertexJob(t, jm)
	rs := jm.newREST(nil)
	var d restapi.VertexDetails
	restGet(t, rs, "/jobs/j/vertices/"+vertexID("j", 1), &d)
	if d.Name != "count -> out" || d.Parallelism != 2 || d.MaxParallelism != 128 || len(d.Subtasks) != 2 {
		t.Fatalf("vertex: %+v", d)
	}
	st := d.Subtasks[1]
	if st.Subtask != 1 || st.Status != TaskRunning || st.TaskManagerID != "tm-1" || st.Endpoint != "127.0.0.1:7001" ||
		st.Metrics.ReadRecords != 20 || st.Metrics.WriteRecords != 40 || st.StartTime <= 0 {
		t.Errorf("subtask 1: %+v", st)
	}
	if got := d.Aggregated.Metrics["write-records"]; got["sum"] != 60 || got["min"] != 20 || got["max"] != 40 {
		t.Errorf("aggregated write-records: %v", got)
	}
	rec := httptest.NewRecorder()
	rs.mux.ServeHTTP(rec, httptest.NewRequest("GET", "/jobs/j/vertices/1", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "the vertex ids are the") {
		t.Errorf("an unknown vertex id: %d %s", rec.Code, rec.Body)
	}
}

// Back-pressure is the share of the sampling window the subtasks' output
// waited for credit, from their reported counters: not a constant.
func TestBackPressureFromSamples(t *testing.T) {
	jm := newTestJM(t, nil)
	j := twoVertexJob(t, jm)
	rs := jm.newREST(nil)
	path := "/jobs/j/vertices/" + vertexID("j", 0) + "/backpressure"

	var bp restapi.VertexBackPressure
	restGet(t, rs, path, &bp)
	if bp.Status != restapi.BackPressureStatusDeprecated {
		t.Errorf("before any sample: status %q, want deprecated", bp.Status)
	}

	t0 := time.Now().Add(-10 * time.Second)
	w := time.Minute
	// Subtask 0 waited 6 of 10 s for credit; subtask 1 0.5 s, and idled 3 s.
	j.tasks[taskKey{0, 0}].addSample(t0, taskMetrics{backPressuredMS: 1000}, w)
	j.tasks[taskKey{0, 0}].addSample(t0.Add(10*time.Second), taskMetrics{backPressuredMS: 7000}, w)
	j.tasks[taskKey{0, 1}].addSample(t0, taskMetrics{backPressuredMS: 100, idleMS: 0}, w)
	j.tasks[taskKey{0, 1}].addSample(t0.Add(10*time.Second), taskMetrics{backPressuredMS: 600, idleMS: 3000}, w)

	restGet(t, rs, path, &bp)
	if bp.Status != restapi.BackPressureStatusOK || len(bp.Subtasks) != 2 {
		t.Fatalf("back-pressure: %+v", bp)
	}
	s0, s1 := bp.Subtasks[0], bp.Subtasks[1]
	if math.Abs(s0.Ratio-0.6) > 1e-9 || s0.BackpressureLevel != "high" || s0.BackpressureLevelOld != "high" || math.Abs(s0.BusyRatio-0.4) > 1e-9 {
		t.Errorf("subtask 0: %+v, want ratio 0.6, high, busy 0.4", s0)
	}
	if math.Abs(s1.Ratio-0.05) > 1e-9 || s1.BackpressureLevel != "ok" || math.Abs(s1.IdleRatio-0.3) > 1e-9 || math.Abs(s1.BusyRatio-0.65) > 1e-9 {
		t.Errorf("subtask 1: %+v, want ratio 0.05, ok, idle 0.3, busy 0.65", s1)
	}
	if bp.BackpressureLevel != "high" || bp.EndTimestamp != t0.Add(10*time.Second).UnixMilli() {
		t.Errorf("vertex: level %q end %d, want its worst subtask's (high) and the last sample's time", bp.BackpressureLevel, bp.EndTimestamp)
	}

	// The window slides: later samples without waiting bring the ratio down.
	for i := 1; i <= 7; i++ {
		j.tasks[taskKey{0, 0}].addSample(t0.Add(time.Duration(10+10*i)*time.Second), taskMetrics{backPressuredMS: 7000}, w)
	}
	restGet(t, rs, path, &bp)
	if r := bp.Subtasks[0].Ratio; r != 0 {
		t.Errorf("after a minute without waiting: ratio %v, want 0", r)
	}
	if n := len(j.tasks[taskKey{0, 0}].samples); n > 8 {
		t.Errorf("%d samples kept, want those of the last minute", n)
	}
}

func TestMetricsGetForm(t *testing.T) {
	jm := newTestJM(t, nil)
	twoVertexJob(t, jm)
	rs := jm.newREST(nil)
	vpath := "/jobs/j/vertices/" + vertexID("j", 1)

	var list []restapi.Metric
	restGet(t, rs, vpath+"/metrics", &list)
	ids := map[string]bool{}
	for _, m := range list {
		ids[m.ID] = true
		if m.Value != "" {
			t.Errorf("the list of metrics carries a value: %+v", m)
		}
	}
	for _, want := range []string{"0.numRecordsIn", "1.numRecordsOut", "0.backPressuredTimeMsPerSecond", "1.numBytesInPerSecond"} {
		if !ids[want] {
			t.Errorf("vertex metrics lack %s: %v", want, list)
		}
	}
	var got []restapi.Metric
	restGet(t, rs, vpath+"/metrics?get=0.numRecordsIn,1.numRecordsOut,no.such", &got)
	if len(got) != 2 || got[0] != (restapi.Metric{ID: "0.numRecordsIn", Value: "20"}) || got[1] != (restapi.Metric{ID: "1.numRecordsOut", Value: "40"}) {
		t.Errorf("?get=: %+v", got)
	}

	var agg []restapi.AggregatedMetric
	restGet(t, rs, vpath+"/subtasks/metrics?get=numRecordsOut&agg=min,max,sum", &agg)
	if len(agg) != 1 || agg[0].Min == nil || *agg[0].Min != 20 || *agg[0].Max != 40 || *agg[0].Sum != 60 || agg[0].Avg != nil {
		t.Errorf("aggregated: %+v", agg)
	}
	restGet(t, rs, vpath+"/subtasks/metrics?get=numRecordsOut&subtasks=1", &agg)
	if len(agg) != 1 || *agg[0].Sum != 40 || *agg[0].Skew != 0 {
		t.Errorf("subtask 1 only: %+v", agg)
	}
	rec := httptest.NewRecorder()
	rs.mux.ServeHTTP(rec, httptest.NewRequest("GET", vpath+"/subtasks/metrics?agg=median", nil))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "min, max, avg, sum, skew") {
		t.Errorf("?agg=median: %d %s", rec.Code, rec.Body)
	}

	restGet(t, rs, "/jobs/j/metrics?get=numRestarts,uptime", &got)
	if len(got) != 2 || got[0].ID != "numRestarts" || got[0].Value != "0" || got[1].ID != "uptime" || got[1].Value == "0" {
		t.Errorf("job metrics: %+v", got)
	}
}

func TestJobConfigMasksSensitiveParameters(t *testing.T) {
	jm := newTestJM(t, nil)
	j := twoVertexJob(t, jm)
	j.params = map[string]string{"topic": "clicks", "db.password": "hunter2",
		// Parameters of any name substituted into a JAAS string or a connection URL.
		"jaas": `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="S3cretPW";`,
		"pg":   "postgresql://alice:PgSecret1@db.example.com:5432/appdb?sslmode=verify-full",
		"conn": "host=db dbname=appdb password = kv5ecret",
		"url":  "postgresql://alice@db.example.com/appdb"}
	j.parallelism = 2
	rs := jm.newREST(nil)
	var c restapi.JobConfig
	restGet(t, rs, "/jobs/j/config", &c)
	if c.JID != "j" || c.ExecutionConfig.JobParallelism != 2 || c.ExecutionConfig.UserConfig["topic"] != "clicks" {
		t.Errorf("config: %+v", c)
	}
	for _, k := range []string{"db.password", "jaas", "pg", "conn"} {
		if v := c.ExecutionConfig.UserConfig[k]; v != "******" {
			t.Errorf("%s shown as %q", k, v)
		}
	}
	if v := c.ExecutionConfig.UserConfig["url"]; v != "postgresql://alice@db.example.com/appdb" {
		t.Errorf("a URL without a password is masked: %q", v)
	}
}

func TestExecutionResult(t *testing.T) {
	jm := newTestJM(t, nil)
	j := twoVertexJob(t, jm)
	rs := jm.newREST(nil)
	var res restapi.ExecutionResult
	restGet(t, rs, "/jobs/j/execution-result", &res)
	if res.Status.ID != restapi.InProgress || res.Result != nil {
		t.Errorf("running: %+v", res)
	}
	j.state, j.cause, j.start, j.end = Failed, "task src (1/2) failed: boom", time.Now().Add(-time.Second), time.Now()
	restGet(t, rs, "/jobs/j/execution-result", &res)
	if res.Status.ID != restapi.Completed || res.Result == nil || res.Result.ApplicationStatus != "FAILED" ||
		res.Result.FailureCause == nil || !strings.Contains(res.Result.FailureCause.StackTrace, "boom") || res.Result.NetRuntime < 1000 {
		t.Errorf("failed: %+v %+v", res, res.Result)
	}
}

func TestTaskManagerDetails(t *testing.T) {
	jm := newTestJM(t, nil)
	twoVertexJob(t, jm)
	rs := jm.newREST(nil)
	var d restapi.TaskManagerDetails
	restGet(t, rs, "/taskmanagers/tm-1", &d)
	if d.ID != "tm-1" || d.DataPort != 7001 || d.SlotsNumber != 2 || d.FreeSlots != 0 {
		t.Errorf("details: %+v", d)
	}
	rec := httptest.NewRecorder()
	rs.mux.ServeHTTP(rec, httptest.NewRequest("GET", "/taskmanagers/tm-9", nil))
	if rec.Code != 404 {
		t.Errorf("an unknown TaskManager: %d", rec.Code)
	}
}

func TestMaskedArgs(t *testing.T) {
	in := []string{"jobmanager", "-D", "security.ssl.internal.key-password=s3cret", "-Dsecurity.ssl.rest.keystore-password=p",
		"--join-token", "abc.def", "--token=t0k", "-D", "rest.port=8081", "--config", "/etc/sluice.yaml",
		"--define=security.ssl.internal.keystore-password=DefPW77", "--define", "security.ssl.truststore-password=DPw88",
		"-Dapp.url=postgresql://u:UrlPw9@h/db"}
	got := strings.Join(maskedArgs(in), " ")
	for _, secret := range []string{"s3cret", "=p ", "abc.def", "t0k", "DefPW77", "DPw88", "UrlPw9"} {
		if strings.Contains(got+" ", secret) {
			t.Errorf("%q shows %q", got, secret)
		}
	}
	for _, keep := range []string{"rest.port=8081", "/etc/sluice.yaml", "security.ssl.internal.key-password=******"} {
		if !strings.Contains(got, keep) {
			t.Errorf("%q lacks %q", got, keep)
		}
	}
}

func TestUnversionedPath(t *testing.T) {
	for in, want := range map[string]string{"/v1/jobs": "/jobs", "/v1/jobs/x/plan": "/jobs/x/plan", "/v1": "/v1", "/v10/jobs": "/v10/jobs", "/jobs": "/jobs"} {
		if got, _ := unversioned(in); got != want {
			t.Errorf("unversioned(%q) = %q, want %q", in, got, want)
		}
	}
}
