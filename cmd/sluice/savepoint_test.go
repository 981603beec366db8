package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// savepointJM is a JobManager that answers the savepoint and stop endpoints as Flink does:
// a request id, then IN_PROGRESS for `polls` reads, then the outcome.
type savepointJM struct {
	mu       sync.Mutex
	bodies   map[string]map[string]any // path -> request body
	polls    map[string]int            // trigger -> reads
	outcome  map[string]string         // trigger -> operation JSON
	inFlight int
	requests []string
}

func newSavepointJM(t *testing.T, inFlight int) (*savepointJM, *httptest.Server) {
	jm := &savepointJM{bodies: map[string]map[string]any{}, polls: map[string]int{}, inFlight: inFlight, outcome: map[string]string{
		"t-savepoint": `{"location": "file:/srv/sp/savepoint-5d1f2a-0c9e11aa22bb"}`,
		"t-stop":      `{"failure-cause": {"class": "CheckpointException", "message": "the job is not running: it is FINISHED"}}`,
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jm.mu.Lock()
		defer jm.mu.Unlock()
		jm.requests = append(jm.requests, r.Method+" "+r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && (r.URL.Path == "/jobs/j1/savepoints" || r.URL.Path == "/jobs/j1/stop"):
			var body map[string]any
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			jm.bodies[r.URL.Path] = body
			w.WriteHeader(http.StatusAccepted)
			if strings.HasSuffix(r.URL.Path, "/stop") {
				w.Write([]byte(`{"request-id": "t-stop"}`))
			} else {
				w.Write([]byte(`{"request-id": "t-savepoint"}`))
			}
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/jobs/j1/savepoints/"):
			trigger := strings.TrimPrefix(r.URL.Path, "/jobs/j1/savepoints/")
			op, ok := jm.outcome[trigger]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				w.Write([]byte(`{"errors": ["no such savepoint operation"]}`))
				return
			}
			if jm.polls[trigger]++; jm.polls[trigger] <= jm.inFlight {
				w.Write([]byte(`{"status": {"id": "IN_PROGRESS"}}`))
				return
			}
			w.Write([]byte(`{"status": {"id": "COMPLETED"}, "operation": ` + op + `}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errors": ["no such endpoint"]}`))
		}
	}))
	t.Cleanup(srv.Close)
	return jm, srv
}

// TestSavepointCommand: sluice savepoint triggers, polls until COMPLETED and prints the
// location alone on the last line of stdout, progress on stderr.
func TestSavepointCommand(t *testing.T) {
	jm, srv := newSavepointJM(t, 3)
	stdout, stderr, err := runCLI(t, "savepoint", "j1", "file:///srv/sp", "--jobmanager", srv.URL)
	if err != nil {
		t.Fatalf("savepoint: %v\n%s", err, stderr)
	}
	if stdout != "file:/srv/sp/savepoint-5d1f2a-0c9e11aa22bb\n" {
		t.Errorf("stdout %q, want the location alone", stdout)
	}
	if !strings.Contains(stderr, "Triggering savepoint for job j1") || !strings.Contains(stderr, "Savepoint completed") {
		t.Errorf("stderr lacks the progress: %q", stderr)
	}
	body := jm.bodies["/jobs/j1/savepoints"]
	if body["target-directory"] != "file:///srv/sp" || body["cancel-job"] != false {
		t.Errorf("request body %v, want target-directory and cancel-job false", body)
	}
	if jm.polls["t-savepoint"] != 4 {
		t.Errorf("polled %d times, want until COMPLETED (4)", jm.polls["t-savepoint"])
	}

	// Without a target the field is left out: the cluster's state.savepoints.dir applies.
	jm, srv = newSavepointJM(t, 0)
	if _, stderr, err := runCLI(t, "savepoint", "j1", "--jobmanager", srv.URL); err != nil {
		t.Fatalf("savepoint without a target: %v\n%s", err, stderr)
	}
	if _, ok := jm.bodies["/jobs/j1/savepoints"]["target-directory"]; ok {
		t.Errorf("target-directory sent without a TARGET_DIR: %v", jm.bodies)
	}
}

// TestStopCommand: sluice stop sends Flink's stop fields and, when the savepoint failed,
// exits non-zero with the failure's message and prints no location.
func TestStopCommand(t *testing.T) {
	jm, srv := newSavepointJM(t, 1)
	stdout, stderr, err := runCLI(t, "stop", "j1", "--savepointPath", "/srv/sp", "--drain", "--jobmanager", srv.URL)
	if err == nil || exitCode(err) == 0 {
		t.Fatalf("stop with a failed savepoint succeeded: %q %q", stdout, stderr)
	}
	if !strings.Contains(err.Error(), "savepoint of job j1 failed: the job is not running: it is FINISHED") || stdout != "" {
		t.Errorf("error %v, stdout %q", err, stdout)
	}
	body := jm.bodies["/jobs/j1/stop"]
	if body["targetDirectory"] != "/srv/sp" || body["drain"] != true {
		t.Errorf("stop body %v, want targetDirectory and drain", body)
	}

	// Flink's short flags.
	jm, srv = newSavepointJM(t, 0)
	runCLI(t, "stop", "j1", "-p", "/srv/other", "--jobmanager", srv.URL)
	if body := jm.bodies["/jobs/j1/stop"]; body["targetDirectory"] != "/srv/other" || body["drain"] != false {
		t.Errorf("stop -p: body %v", body)
	}
}

// TestSavepointTargetChecked: a target that no cluster process can resolve alike is refused
// before anything is sent.
func TestSavepointTargetChecked(t *testing.T) {
	for _, args := range [][]string{
		{"savepoint", "j1", "relative/dir"},
		{"savepoint", "j1", "s3://bucket/sp"},
		{"stop", "j1", "--savepointPath", "sp"},
		{"stop", "j1", "--savepointPath", ""},
	} {
		jm, srv := newSavepointJM(t, 0)
		_, _, err := runCLI(t, append(args, "--jobmanager", srv.URL)...)
		what := "TARGET_DIR"
		if args[0] == "stop" {
			what = "--savepointPath"
		}
		if err == nil || !strings.HasPrefix(err.Error(), what+": ") {
			t.Errorf("%v: %v, want an error naming %s", args, err, what)
		}
		if len(jm.requests) != 0 {
			t.Errorf("%v: sent %v", args, jm.requests)
		}
	}
}

// TestRunSavepointFields: sluice run -s and -n reach the JobManager as the submission's
// savepointPath and allowNonRestoredState.
func TestRunSavepointFields(t *testing.T) {
	var got map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/jobs" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got = map[string]string{}
		for k, v := range r.MultipartForm.Value {
			got[k] = v[0]
		}
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"jobid": "j1"}`))
	}))
	t.Cleanup(srv.Close)
	spec := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(spec, []byte("name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args          []string
		path, allowed string
	}{
		{[]string{"--fromSavepoint", "file:/srv/sp/savepoint-1", "--allowNonRestoredState"}, "file:/srv/sp/savepoint-1", "true"},
		{[]string{"-s", "/srv/sp/savepoint-2", "-n"}, "/srv/sp/savepoint-2", "true"},
		{[]string{"-s", "/srv/sp/savepoint-3"}, "/srv/sp/savepoint-3", ""},
		{nil, "", ""},
	} {
		args := append([]string{"run", spec, "--detached", "--jobmanager", srv.URL}, tc.args...)
		if stdout, stderr, err := runCLI(t, args...); err != nil || stdout != "j1\n" {
			t.Fatalf("%v: %v %q %q", tc.args, err, stdout, stderr)
		}
		if got["savepointPath"] != tc.path || got["allowNonRestoredState"] != tc.allowed {
			t.Errorf("%v: sent savepointPath %q allowNonRestoredState %q", tc.args, got["savepointPath"], got["allowNonRestoredState"])
		}
	}
	if _, _, err := runCLI(t, "run", spec, "-n", "--jobmanager", srv.URL); err == nil || !strings.Contains(err.Error(), "--fromSavepoint (-s)") {
		t.Errorf("-n without -s: %v", err)
	}
}
