package test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFlinkRESTAuthorization: the new endpoints are decided by their one
// verb and resource, under /v1/ as without it: a job's plan, vertices,
// metrics, back-pressure, config and result need view on the job; the
// log files of the JobManager and the TaskManagers need view on logs;
// process metrics need view on metrics; the environment needs view on
// config.
func TestFlinkRESTAuthorization(t *testing.T) {
	needTool(t, "curl")
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policy, []byte(`super-users: [root]
roles:
  developer:
    - verbs: [submit]
      resources: [jobs]
    - verbs: [view]
      resources: [cluster, taskmanagers]
  logreader:
    - verbs: [view]
      resources: [logs]
bindings:
  - role: developer
    users: [alice, bob, carol]
  - role: logreader
    users: [bob]
`), 0o600)
	e := startRESTExample(t, "security.authorization.mode=acl", "security.authorization.acl.policy-file="+policy,
		"env.log.dir="+t.TempDir())
	tokens := authzTokens(t, e)
	get := func(user, path string) (int, string) {
		return curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+tokens[user], e.extURL+path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, stderr, code := runSluice(ctx, t, "run", "examples/unbounded.yaml", "--detached", "-p", "1", "--param", "rate=100",
		"--jobmanager", e.extURL, "--cacert", e.ca, "--token", tokens["alice"])
	if code != 0 {
		t.Fatalf("alice submits: %s %s", out, stderr)
	}
	id := strings.TrimSpace(out)
	var vid string
	e.c.waitFor(30*time.Second, "alice's job running", func() bool {
		code, body := get("alice", "/v1/jobs/"+id)
		var j struct {
			State    string `json:"state"`
			Vertices []struct {
				ID string `json:"id"`
			} `json:"vertices"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &j) != nil || j.State != "RUNNING" || len(j.Vertices) == 0 {
			return false
		}
		vid = j.Vertices[0].ID
		return true
	})

	jobPaths := []string{"/jobs/" + id + "/plan", "/jobs/" + id + "/config", "/jobs/" + id + "/execution-result",
		"/jobs/" + id + "/metrics", "/jobs/" + id + "/exceptions", "/jobs/" + id + "/vertices/" + vid,
		"/jobs/" + id + "/vertices/" + vid + "/metrics", "/jobs/" + id + "/vertices/" + vid + "/subtasks/metrics",
		"/jobs/" + id + "/vertices/" + vid + "/backpressure"}
	for _, p := range jobPaths {
		for _, prefix := range []string{"", "/v1"} {
			if code, body := get("carol", prefix+p); code != 403 || !strings.Contains(body, "carol may not view job/"+id) {
				t.Errorf("carol GET %s%s: %d %.200s, want 403 naming view job/%s", prefix, p, code, body, id)
			}
			if code, body := get("alice", prefix+p); code != 200 {
				t.Errorf("alice (owner) GET %s%s: %d %.200s", prefix, p, code, body)
			}
		}
	}

	logPaths := []string{"/v1/jobmanager/logs", "/v1/jobmanager/logs/sluice-jobmanager.log",
		"/v1/taskmanagers/tm-1/logs", "/v1/taskmanagers/tm-1/logs/sluice-taskmanager-tm-1.log"}
	for _, p := range logPaths {
		if code, body := get("alice", p); code != 403 || !strings.Contains(body, "view logs") {
			t.Errorf("alice GET %s: %d %.200s, want 403 (view logs)", p, code, body)
		}
		if code, _ := curl(t, e.localURL+p); code != 403 {
			t.Errorf("anonymous GET %s: %d, want 403", p, code)
		}
	}
	if code, body := get("bob", "/v1/taskmanagers/tm-1/logs/sluice-taskmanager-tm-1.log"); code != 200 || !strings.Contains(body, "taskmanager started") {
		t.Errorf("bob (view logs) reads tm-1's log: %d %.300s", code, body)
	}
	if code, body := get("bob", "/v1/jobmanager/logs"); code != 200 || !strings.Contains(body, "sluice-jobmanager.log") {
		t.Errorf("bob (view logs) lists the JobManager's logs: %d %.300s", code, body)
	}

	for p, need := range map[string]string{"/v1/taskmanagers/tm-1/metrics": "view metrics", "/v1/jobmanager/metrics": "view metrics",
		"/v1/jobmanager/environment": "view config"} {
		if code, body := get("alice", p); code != 403 || !strings.Contains(body, need) {
			t.Errorf("alice GET %s: %d %.200s, want 403 (%s)", p, code, body, need)
		}
		if code, body := get("root", p); code != 200 {
			t.Errorf("root GET %s: %d %.200s", p, code, body)
		}
	}
	if code, body := get("alice", "/v1/taskmanagers/tm-1"); code != 200 || !strings.Contains(body, `"dataPort"`) {
		t.Errorf("alice (view taskmanagers) GET /v1/taskmanagers/tm-1: %d %.200s", code, body)
	}
	if code, _ := curl(t, e.localURL+"/v1/taskmanagers/tm-1"); code != 403 {
		t.Errorf("anonymous GET /v1/taskmanagers/tm-1: %d, want 403", code)
	}
	// The environment shows the JobManager's runtime, and no caller's token.
	if _, body := get("root", "/v1/jobmanager/environment"); strings.Contains(body, tokens["root"]) || !strings.Contains(body, `"jvm"`) {
		t.Errorf("environment: %.400s", body)
	}
}
