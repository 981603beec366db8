package jobmanager

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/restapi"
)

// FuzzMetricsQuery sends metrics requests with any vertex id and query string (?get=, ?agg=,
// ?subtasks=): the answer is 200 with each metric once and at most maxQueryItems of them, 400
// for a malformed or oversized query, or 404 for a vertex the job does not have; never a
// panic or a 500.
func FuzzMetricsQuery(f *testing.F) {
	jm, err := New(Options{Config: config.New(), WorkDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	j := &job{id: "j", name: "j", state: Running, tasks: map[taskKey]*task{}, timestamps: map[JobState]time.Time{Running: time.Now()}, done: make(chan struct{})}
	j.plan = &dataflow.Plan{Name: "j", MaxParallelism: 128, Vertices: []*dataflow.Vertex{
		{ID: 0, Name: "src", Operators: []string{"src"}, Parallelism: 2, OutEdges: []int{0}, Source: true},
		{ID: 1, Name: "out", Operators: []string{"out"}, Parallelism: 2, InEdges: []int{0}},
	}, Edges: []*dataflow.Edge{{ID: 0, Source: 0, Target: 1, Partitioning: dataflow.PartitionForward}}}
	for v := range 2 {
		for s := range 2 {
			j.tasks[taskKey{v, s}] = &task{vertex: v, subtask: s, tm: "tm-1", state: TaskRunning, start: time.Now(),
				metrics: taskMetrics{readRecords: int64(v + 1), writeRecords: int64(s + 1)}}
		}
	}
	jm.jobs["j"] = j
	rs := jm.newREST(nil)
	for _, s := range [][2]string{
		{vertexID("j", 1), "get=numRecordsOut,numRecordsOut,,0.numRecordsIn&agg=min,max,MIN&subtasks=0-1,1"},
		{vertexID("j", 0), "get=" + strings.Repeat("a,", 2000)},
		{vertexID("j", 0), "subtasks=" + strings.Repeat("0,", 2000)},
		{vertexID("j", 0), "subtasks=9223372036854775807-9223372036854775807&agg=skew"},
		{vertexID("j", 0), "subtasks=-1&get=x"},
		{vertexID("j", 0), "get=%zz;a"},
		{"../" + vertexID("j", 0), "get=x"},
		{strings.ToUpper(vertexID("j", 0)), ""},
		{"", "get=numRestarts,uptime"},
	} {
		f.Add(s[0], s[1])
	}
	valid := map[string]bool{vertexID("j", 0): true, vertexID("j", 1): true}
	f.Fuzz(func(t *testing.T, vid, query string) {
		for _, path := range []string{"/jobs/j/vertices/" + vid + "/subtasks/metrics", "/jobs/j/vertices/" + vid + "/metrics", "/jobs/j/metrics"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL = &url.URL{Path: path, RawQuery: query}
			rec := httptest.NewRecorder()
			rs.mux.ServeHTTP(rec, req)
			switch rec.Code {
			case http.StatusOK:
			case http.StatusBadRequest, http.StatusNotFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect: // the mux cleans paths by redirecting
				continue
			default:
				t.Fatalf("GET %s?%s: %d %s", path, query, rec.Code, rec.Body)
			}
			if strings.Contains(path, "/vertices/") && !valid[vid] {
				t.Fatalf("GET %s?%s: 200 for a vertex the job does not have", path, query)
			}
			var out []restapi.AggregatedMetric
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("GET %s?%s: %v: %s", path, query, err, rec.Body)
			}
			seen := map[string]bool{}
			for _, m := range out {
				if seen[m.ID] || m.ID == "" {
					t.Fatalf("GET %s?%s: metric %q twice or empty: %s", path, query, m.ID, rec.Body)
				}
				seen[m.ID] = true
			}
			if len(out) > maxQueryItems {
				t.Fatalf("GET %s?%s: %d metrics", path, query, len(out))
			}
		}
	})
}

// parseRanges selects exactly the subtasks its items name, and refuses a list longer than
// maxQueryItems.
func TestParseRanges(t *testing.T) {
	in, err := parseRanges("1, 3,5-7")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for i := range 10 {
		if in(i) {
			got = append(got, i)
		}
	}
	if len(got) != 5 || got[0] != 1 || got[1] != 3 || got[4] != 7 {
		t.Errorf("1,3,5-7 selects %v", got)
	}
	for _, bad := range []string{"-1", "3-1", "a", "1-", strings.Repeat("0,", maxQueryItems)} {
		if _, err := parseRanges(bad); err == nil {
			t.Errorf("parseRanges(%.20q...) accepted", bad)
		}
	}
	if ids, err := parseMetricIDs(" a,b,,a , c"); err != nil || strings.Join(ids, "|") != "a|b|c" {
		t.Errorf("parseMetricIDs: %q %v", ids, err)
	}
	if _, err := parseMetricIDs(strings.Repeat("a,", maxQueryItems)); err == nil || !strings.Contains(err.Error(), "at most 1000") {
		t.Errorf("parseMetricIDs of %d ids: %v", maxQueryItems+1, err)
	}
}
