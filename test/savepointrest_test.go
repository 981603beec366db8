package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unboundedJob runs until it is stopped: a rate-limited generator into a
// blackhole.
const unboundedJob = "name: %s\noperators:\n  - {name: g, type: generator, count: 0, rate: 20}\n  - {name: s, type: blackhole, input: g}\n"

// TestSavepointRESTHostile: POST /jobs/{id}/savepoints and /stop as a
// hostile authenticated user, on a secured cluster with the shipped ACL
// policy (alice may write below her output directory only, and owns her
// job; bob may not act on it). Every bad request is refused with a status
// and a message naming what is wrong, and the JobManager keeps serving:
// the job's savepoint still works afterwards. The cluster's checkpoint
// directory and the JobManager's working directory are placed where alice
// may write, so that only the rule on the cluster's own storage refuses
// them.
func TestSavepointRESTHostile(t *testing.T) {
	needTool(t, "curl")
	var bob string
	e := startDataEnv(t, func(e *dataEnv) []string {
		e.jmWork = filepath.Join(e.out, "jm-work")
		bob = newToken(t, filepath.Join(e.jmDir, "tokens"), "bob", "eng")
		return []string{"state.checkpoints.dir=" + filepath.Join(e.out, "ckpt")}
	})
	ckpt := filepath.Join(e.out, "ckpt")

	stdout, stderr, code := e.run(t, fmt.Sprintf(unboundedJob, "hostile"), "--detached")
	id := strings.TrimSpace(stdout)
	if code != 0 || len(id) != 32 {
		t.Fatalf("submit: exit %d\n%s\n%s", code, stdout, stderr)
	}
	e.c.waitFor(30*time.Second, "the job to run", func() bool { return e.state(t, id) == "RUNNING" })

	post := func(token, path, body string) (int, string) {
		return curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+token, "-H", "Content-Type: application/json",
			"-X", "POST", "--data-binary", body, e.ext+path)
	}
	target := func(dir string) string {
		b, _ := json.Marshal(map[string]string{"target-directory": dir})
		return string(b)
	}

	file := filepath.Join(e.out, "a-file")
	os.WriteFile(file, []byte("x"), 0o600)
	link := filepath.Join(e.out, "link-to-ckpt")
	if err := os.Symlink(ckpt, link); err != nil {
		t.Fatal(err)
	}
	huge := "@" + filepath.Join(t.TempDir(), "huge.json") // 2 MiB: above the JobManager's 1 MiB for a JSON body
	os.WriteFile(huge[1:], []byte(`{"target-directory": "/`+strings.Repeat("a", 2<<20)+`"}`), 0o600)
	cases := []struct {
		name, token, path, body string
		status                  int
		want                    string // in the answer
	}{
		{"unknown field", e.token, "/savepoints", `{"target-directory": "` + e.out + `", "evil": 1}`, 400, `unknown field`},
		{"not JSON", e.token, "/savepoints", `{"target-directory":`, 400, "savepoint request"},
		{"huge body", e.token, "/savepoints", huge, 400, "savepoint request"},
		{"relative", e.token, "/savepoints", target("out/sp"), 400, "not an absolute path"},
		{"file URI with a host", e.token, "/savepoints", target("file://evil.example.com" + e.out), 400, "with a host"},
		{"other scheme", e.token, "/savepoints", target("s3://bucket/sp"), 400, "only local"},
		{"dot-dot out of her grant", e.token, "/savepoints", target(e.out + "/../../secret"), 403, "file:" + e.secret},
		{"/etc", e.token, "/savepoints", target("/etc"), 403, "file:/etc"},
		{"stop to /etc", e.token, "/stop", `{"targetDirectory": "/etc"}`, 403, "file:/etc"},
		{"checkpoint root", e.token, "/savepoints", target(ckpt), 400, "state.checkpoints.dir"},
		{"own job's checkpoint dir", e.token, "/savepoints", target(filepath.Join(ckpt, id)), 400, "state.checkpoints.dir"},
		{"another job's checkpoint dir", e.token, "/savepoints", target(filepath.Join(ckpt, strings.Repeat("ab", 16), "chk-1")), 400, "state.checkpoints.dir"},
		{"dot-dot into the checkpoint root", e.token, "/savepoints", target(e.out + "/x/../ckpt/y"), 400, "state.checkpoints.dir"},
		{"stop into the checkpoint root", e.token, "/stop", `{"targetDirectory": "` + ckpt + `"}`, 400, "state.checkpoints.dir"},
		{"JobManager work dir", e.token, "/savepoints", target(e.jmWork), 400, "working directory"},
		{"below the JobManager work dir", e.token, "/savepoints", target(filepath.Join(e.jmWork, "blobs")), 400, "working directory"},
		{"format", e.token, "/savepoints", `{"target-directory": "` + e.out + `", "formatType": "NATIVE"}`, 400, "CANONICAL"},
		{"bob, no savepoint verb", bob, "/savepoints", target(filepath.Join(e.out, "sp")), 403, "savepoint"},
		{"bob stops alice's job", bob, "/stop", `{}`, 403, "savepoint"},
	}
	for _, tc := range cases {
		status, body := post(tc.token, "/jobs/"+id+tc.path, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %.300s; want %d naming %q", tc.name, status, body, tc.status, tc.want)
		}
	}
	for _, d := range []string{ckpt, e.jmWork} {
		if names, _ := filepath.Glob(filepath.Join(d, "*", "savepoint-*")); len(names) > 0 {
			t.Errorf("a savepoint was written into %s: %v", d, names)
		}
		if names, _ := filepath.Glob(filepath.Join(d, "savepoint-*")); len(names) > 0 {
			t.Errorf("a savepoint was written into %s: %v", d, names)
		}
	}

	// Reading the job's checkpoint state is view: bob is refused, alice
	// (the owner) is not; an unknown trigger id is a 404.
	for _, p := range []string{"/checkpoints", "/checkpoints/config", "/savepoints/0123456789abcdef0123456789abcdef"} {
		if status, body := curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+bob, e.ext+"/jobs/"+id+p); status != 403 {
			t.Errorf("bob GET %s: %d %s, want 403", p, status, body)
		}
	}
	for p, want := range map[string]int{"/checkpoints": 200, "/checkpoints/config": 200, "/savepoints/0123456789abcdef0123456789abcdef": 404} {
		if status, body := e.get(t, "/jobs/"+id+p); status != want {
			t.Errorf("alice GET %s: %d %s, want %d", p, status, body, want)
		}
	}

	// A target that is a file, or a link (even to a place she may write),
	// is accepted as a request and fails as an operation naming it.
	for _, bad := range []string{file, link} {
		status, body := post(e.token, "/jobs/"+id+"/savepoints", target(bad))
		if status != 202 {
			t.Fatalf("savepoint to %s: %d %s", bad, status, body)
		}
		op := waitSavepoint(t, e, id, body)
		if !strings.Contains(op, "failure-cause") || !strings.Contains(op, bad) {
			t.Errorf("savepoint to %s: %s, want a failure naming it", bad, op)
		}
	}
	if names, _ := filepath.Glob(filepath.Join(ckpt, "savepoint-*")); len(names) > 0 {
		t.Errorf("a savepoint was written through the link: %v", names)
	}

	// The JobManager still serves: a good savepoint, then stop with one,
	// then the job is not RUNNING (409).
	good := filepath.Join(e.out, "sp")
	status, body := post(e.token, "/jobs/"+id+"/savepoints", target(good))
	if status != 202 {
		t.Fatalf("savepoint to %s: %d %s", good, status, body)
	}
	if op := waitSavepoint(t, e, id, body); !strings.Contains(op, `"location": "file:`+good+`/savepoint-`) {
		t.Fatalf("savepoint to %s: %s", good, op)
	}
	status, body = post(e.token, "/jobs/"+id+"/stop", `{"targetDirectory": "`+good+`"}`)
	if status != 202 {
		t.Fatalf("stop: %d %s", status, body)
	}
	waitSavepoint(t, e, id, body)
	e.c.waitFor(30*time.Second, "the stopped job to end", func() bool { s := e.state(t, id); return s == "FINISHED" || s == "CANCELED" })
	if status, body := post(e.token, "/jobs/"+id+"/savepoints", target(good)); status != 409 || !strings.Contains(body, "RUNNING") {
		t.Errorf("savepoint of an ended job: %d %s, want 409 naming RUNNING", status, body)
	}
}

// waitSavepoint polls a savepoint operation (the POST's answer holds its
// request-id) until it is COMPLETED and returns the answer.
func waitSavepoint(t *testing.T, e *dataEnv, id, postBody string) string {
	t.Helper()
	var req struct {
		ID string `json:"request-id"`
	}
	if err := json.Unmarshal([]byte(postBody), &req); err != nil || req.ID == "" {
		t.Fatalf("savepoint answer %q: %v", postBody, err)
	}
	var body string
	e.c.waitFor(60*time.Second, "savepoint "+req.ID+" to complete", func() bool {
		_, body = e.get(t, "/jobs/"+id+"/savepoints/"+req.ID)
		return strings.Contains(body, `"COMPLETED"`)
	})
	return body
}

// TestRestoreNeedsViewOnTheCheckpointsJob: a retained checkpoint
// (<state.checkpoints.dir>/<job id>/chk-N) is another job's state. A user
// who may read the checkpoint directory (here: the policy grants every
// developer read on it) still may not restore it into a job of their own,
// and so read it, unless they may view the job it belongs to. Before, bob
// could restore alice's checkpoint.
func TestRestoreNeedsViewOnTheCheckpointsJob(t *testing.T) {
	needTool(t, "curl")
	var bob string
	e := startDataEnv(t, func(e *dataEnv) []string {
		ckpt := filepath.Join(filepath.Dir(e.in), "ckpt")
		policy := filepath.Join(e.jmDir, "policy.yaml")
		b, err := os.ReadFile(policy)
		if err != nil {
			t.Fatal(err)
		}
		in := `resources: ["file:` + e.in + `/*"]`
		if !strings.Contains(string(b), in) {
			t.Fatalf("policy has no rule %s:\n%s", in, b)
		}
		grant := `resources: ["file:` + e.in + `/*", "file:` + ckpt + `/*"]`
		os.WriteFile(policy, []byte(strings.Replace(string(b), in, grant, 1)), 0o600)
		bob = newToken(t, filepath.Join(e.jmDir, "tokens"), "bob", "eng")
		return []string{"state.checkpoints.dir=" + ckpt}
	})
	ckpt := filepath.Join(filepath.Dir(e.in), "ckpt")
	job := fmt.Sprintf(unboundedJob, "retained") + "config:\n  execution.checkpointing.interval: 1 s\n  execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION\n"
	stdout, stderr, code := e.run(t, job, "--detached")
	id := strings.TrimSpace(stdout)
	if code != 0 || len(id) != 32 {
		t.Fatalf("submit: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var chk string
	e.c.waitFor(60*time.Second, "a completed checkpoint of alice's job", func() bool {
		m, _ := filepath.Glob(filepath.Join(ckpt, id, "chk-*", "_metadata"))
		if len(m) > 0 {
			chk = filepath.Dir(m[0])
		}
		return chk != ""
	})
	if status, body := curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+e.token, "-X", "PATCH", e.ext+"/jobs/"+id+"?mode=cancel"); status != 202 {
		t.Fatalf("cancel: %d %s", status, body)
	}
	e.c.waitFor(30*time.Second, "the job to be canceled", func() bool { return e.state(t, id) == "CANCELED" })
	if _, err := os.Stat(filepath.Join(chk, "_metadata")); err != nil {
		t.Fatalf("the retained checkpoint is gone: %v", err)
	}

	runAs := func(token string, args ...string) (string, string, int) {
		f := filepath.Join(t.TempDir(), "job.yaml")
		os.WriteFile(f, []byte(fmt.Sprintf(unboundedJob, "retained")), 0o644)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return runSluice(ctx, t, append([]string{"run", f, "--detached", "--jobmanager", e.ext, "--cacert", e.ca, "--token", token}, args...)...)
	}
	for _, p := range []string{chk, filepath.Join(chk, "_metadata"), "file://" + chk} {
		stdout, stderr, code := runAs(bob, "-s", p)
		if code == 0 || !strings.Contains(stderr, "checkpoint of job "+id) || !strings.Contains(stderr, "bob may not view") {
			t.Errorf("bob restores alice's checkpoint %s: exit %d, want a refusal naming job %s:\n%s\n%s", p, code, id, stdout, stderr)
		}
	}
	// A path in the checkpoint directory that is no known job's.
	other := filepath.Join(ckpt, strings.Repeat("cd", 16), "chk-1")
	if stdout, stderr, code := runAs(bob, "-s", other); code == 0 || !strings.Contains(stderr, "no checkpoint of a job this JobManager knows") {
		t.Errorf("restore from %s: exit %d:\n%s\n%s", other, code, stdout, stderr)
	}
	// The owner restores her own retained checkpoint.
	if stdout, stderr, code := runAs(e.token, "-s", chk); code != 0 {
		t.Errorf("alice restores her checkpoint: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
