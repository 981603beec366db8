package jobmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/minicluster"
)

func startCluster(t *testing.T, cfg *config.Config) (*minicluster.Cluster, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := minicluster.Start(ctx, minicluster.Options{Config: cfg, TaskManagers: 1, Slots: 2, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c, "http://" + c.JM.RESTAddress()
}

func do(t *testing.T, method, url, ctype string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const genJob = `name: gen
operators:
  - {name: g, type: generator, count: 1000}
  - {name: by, type: key_by, input: g, key: key}
  - {name: c, type: aggregate, input: by, function: count}
  - {name: s, type: blackhole, input: c}
`

func TestRESTSubmitAndInspect(t *testing.T) {
	cfg := config.New()
	if err := cfg.Set("security.ssl.internal.keystore-password", "hunter2"); err != nil {
		t.Fatal(err)
	}
	c, base := startCluster(t, cfg)
	body, _ := json.Marshal(map[string]any{"spec": genJob, "parallelism": 2})
	code, out := do(t, "POST", base+"/jobs", "application/json", body)
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", code, out)
	}
	var sub struct{ JobID string }
	json.Unmarshal([]byte(out), &sub)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	state, cause, err := c.JM.Wait(ctx, sub.JobID)
	if err != nil || state != "FINISHED" {
		t.Fatalf("job ended %s (%s) %v", state, cause, err)
	}
	code, out = do(t, "GET", base+"/jobs/"+sub.JobID, "", nil)
	if code != 200 || !strings.Contains(out, `"write-records"`) || !strings.Contains(out, `"FINISHED"`) {
		t.Fatalf("job details: %d %s", code, out)
	}
	code, out = do(t, "GET", base+"/jobs/overview", "", nil)
	if code != 200 || !strings.Contains(out, sub.JobID) {
		t.Fatalf("overview: %d %s", code, out)
	}
	code, out = do(t, "GET", base+"/jobmanager/config", "", nil)
	if code != 200 || strings.Contains(out, "hunter2") || !strings.Contains(out, "security.ssl.internal.keystore-password") {
		t.Fatalf("config must list the key with its value masked: %s", out)
	}
	code, out = do(t, "GET", base+"/metrics", "", nil)
	if code != 200 || !strings.Contains(out, `sluice_job_state{job_id="`+sub.JobID+`"`) || !strings.Contains(out, "sluice_taskmanagers 1") {
		t.Fatalf("metrics: %d %.300s", code, out)
	}
}

func TestRESTBadRequests(t *testing.T) {
	_, base := startCluster(t, nil)
	cases := []struct {
		name, method, path, ctype string
		body                      []byte
		want                      int
		msg                       string
	}{
		{"unknown job", "GET", "/jobs/0123", "", nil, 404, "not found"},
		{"cancel unknown job", "PATCH", "/jobs/0123?mode=cancel", "", nil, 404, "no such job"},
		{"bad mode", "PATCH", "/jobs/0123?mode=stop", "", nil, 400, "mode=cancel"},
		{"unknown endpoint", "GET", "/nope", "", nil, 404, "no such endpoint"},
		{"wrong content type", "POST", "/jobs", "text/plain", []byte("x"), 415, "multipart/form-data"},
		{"bad json", "POST", "/jobs", "application/json", []byte("{"), 400, "job submission body"},
		{"unknown field", "POST", "/jobs", "application/json", []byte(`{"spec":"x","evil":1}`), 400, "evil"},
		{"no spec", "POST", "/jobs", "application/json", []byte(`{}`), 400, "spec"},
		{"bad spec", "POST", "/jobs", "application/json", []byte(`{"spec":"name: x\noperators: [{name: a, type: nope}]"}`), 400, "nope"},
		{"huge json", "POST", "/jobs", "application/json", append([]byte(`{"spec":"`), bytes.Repeat([]byte("a"), 2<<20)...), 413, "exceeds"},
		{"bad multipart", "POST", "/jobs", "multipart/form-data; boundary=x", []byte("garbage"), 400, "job submission"},
	}
	for _, tc := range cases {
		code, out := do(t, tc.method, base+tc.path, tc.ctype, tc.body)
		if code != tc.want || !strings.Contains(out, tc.msg) {
			t.Errorf("%s: got %d %s; want %d containing %q", tc.name, code, out, tc.want, tc.msg)
		}
	}
	// Still serving.
	if code, _ := do(t, "GET", base+"/overview", "", nil); code != 200 {
		t.Fatalf("overview after bad requests: %d", code)
	}
}
