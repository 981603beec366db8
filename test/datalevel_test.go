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

// dataEnv is the README's secured quick start (internal mutual TLS with
// per-process certificates, the two REST listeners, bearer tokens, the ACL
// authorizer with examples/policy.yaml) with the policy's /srv moved under
// a temporary root that holds /srv/in (alice may read), /srv/out/alice
// (alice may write) and /srv/secret (neither). The JobManager runs in a
// directory of its own that holds its token file, as in the quick start;
// the TaskManager runs elsewhere.
type dataEnv struct {
	c                      *cluster
	ext, ca, token         string
	in, out, secret, jmDir string
	jmWork                 string // the JobManager's --work-dir
	secretText             string
	tokenLine              string // the hash on the first line of the JobManager's token file
}

// startDataEnv starts the cluster; each setup runs before the processes
// start and returns extra -D settings for them (it may also set e.jmWork).
func startDataEnv(t *testing.T, setup ...func(e *dataEnv) []string) *dataEnv {
	t.Helper()
	root := t.TempDir()
	e := &dataEnv{in: filepath.Join(root, "srv/in"), out: filepath.Join(root, "srv/out/alice"),
		secret: filepath.Join(root, "srv/secret"), jmDir: t.TempDir(), jmWork: t.TempDir(), secretText: "TOP-SECRET-7f3a9c"}
	for _, d := range []string{e.in, e.out, e.secret} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(e.secret, "data.txt"), []byte(e.secretText+"\n"), 0o644)
	os.WriteFile(filepath.Join(e.in, "ok.txt"), []byte("hello world\n"), 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	certs := filepath.Join(t.TempDir(), "certs")
	// The processes dial each other by 127.0.0.1: the certificates name it
	// (security.ssl.verify-hostname), and localhost for curl.
	if _, stderr, code := runSluice(ctx, t, "security", "create-certs", "--out", certs, "--hosts", "localhost,127.0.0.1", "--taskmanager-ids", "tm-1"); code != 0 {
		t.Fatalf("create-certs: %s", stderr)
	}
	e.ca = filepath.Join(certs, "ca.crt")
	e.token = newToken(t, filepath.Join(e.jmDir, "tokens"), "alice", "eng")
	tokens, _ := os.ReadFile(filepath.Join(e.jmDir, "tokens"))
	// The token file's first line; its hash is what a leak would show.
	first := strings.SplitN(string(tokens), "\n", 2)[0]
	e.tokenLine = strings.TrimPrefix(strings.SplitN(first, ",", 2)[0], "sha256:")
	if len(e.tokenLine) < 32 {
		t.Fatalf("unexpected token file line %q", first)
	}

	policy, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(e.jmDir, "policy.yaml"), []byte(strings.ReplaceAll(string(policy), `"file:/srv/`, `"file:`+root+`/srv/`)), 0o600)
	// The quick start's secure.yaml, with port 0 and the certificates' path.
	secure := fmt.Sprintf(`rest.listeners:
  - {name: local, address: "127.0.0.1:0", tls: false, authentication: [anonymous]}
  - {name: external, address: "127.0.0.1:0", tls: true, client-auth: request, authentication: [x509, token]}
security.ssl.rest.keystore: %[1]s/rest.pem
security.ssl.rest.truststore: %[1]s/ca.crt
security.rest.authentication.token.file: tokens
security.authorization.mode: acl
security.authorization.acl.policy-file: policy.yaml
security.audit.log.path: audit.log
`, certs)
	os.WriteFile(filepath.Join(e.jmDir, "secure.yaml"), []byte(secure), 0o644)

	c := &cluster{t: t, spec: clusterSpec{tm: func(int) []string {
		return []string{"security.ssl.internal.keystore=" + filepath.Join(certs, "taskmanager-tm-1.pem")}
	}}}
	c.defines = []string{"jobmanager.rpc.address=127.0.0.1", "jobmanager.bind-host=127.0.0.1", "jobmanager.rpc.port=0",
		"taskmanager.host=127.0.0.1", "taskmanager.bind-host=127.0.0.1", "taskmanager.numberOfTaskSlots=2",
		"security.ssl.internal.enabled=true", "security.ssl.internal.truststore=" + filepath.Join(certs, "truststore.pem")}
	for _, f := range setup {
		c.defines = append(c.defines, f(e)...)
	}
	c.jm = startProcIn(t, e.jmDir, "jobmanager", append([]string{"jobmanager", "--config", "secure.yaml", "--work-dir", e.jmWork,
		"-D", "security.ssl.internal.keystore=" + filepath.Join(certs, "jobmanager.pem")}, defineArgs(c.defines)...)...)
	c.waitJMStarted()
	e.ext = "https://localhost:" + port(c.restURLs["external"])
	c.restURL = c.restURLs["local"]
	c.addTM()
	c.waitFor(30*time.Second, "taskmanager registered", func() bool {
		return strings.Contains(c.jm.Log(), "taskmanager registered")
	})
	e.c = c
	return e
}

// run submits a job spec as alice; args are extra `sluice run` arguments.
func (e *dataEnv) run(t *testing.T, spec string, args ...string) (string, string, int) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(f, []byte(spec), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return runSluice(ctx, t, append([]string{"run", f, "--jobmanager", e.ext, "--cacert", e.ca, "--token", e.token}, args...)...)
}

func (e *dataEnv) get(t *testing.T, path string) (int, string) {
	return curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+e.token, e.ext+path)
}

func (e *dataEnv) state(t *testing.T, id string) string {
	_, body := e.get(t, "/jobs/"+id)
	var j struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &j); err != nil || j.State == "" {
		return body
	}
	return j.State
}

// leaked fails the test if the secret reached any answer, log or output.
func (e *dataEnv) leaked(t *testing.T, what string, texts ...string) {
	t.Helper()
	texts = append(texts, e.c.jm.Log(), e.c.tms[0].Log())
	for _, tx := range texts {
		if strings.Contains(tx, e.secretText) {
			t.Errorf("%s: the secret appears in an answer, log or output", what)
			return
		}
	}
	for _, d := range []string{e.out, e.in} {
		_ = filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), e.secretText) {
					t.Errorf("%s: the secret was copied to %s", what, p)
				}
			}
			return nil
		})
	}
}

// secretUntouched fails the test if a file appeared in /srv/secret.
func (e *dataEnv) secretUntouched(t *testing.T, what string) {
	t.Helper()
	entries, _ := os.ReadDir(e.secret)
	if len(entries) != 1 {
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		t.Errorf("%s: files written into the secret directory: %v", what, names)
	}
}

const printJob = "name: %s\noperators:\n  - {name: src, type: file, path: '%s'}\n  - {name: p, type: print, input: src}\n"
const writeJob = "name: %s\noperators:\n  - {name: g, type: generator, count: 5}\n  - {name: out, type: file, input: g, path: '%s'}\n"

// TestDataLevelEnforcement: issue 9 defect 1. Data-level authorization is
// decided at submit on the path's text and enforced again where the
// TaskManager opens the file: symlinked files and directories, symlinks
// swapped in after the submission, ".." and relative paths never let
// alice read or write outside what the policy grants her.
func TestDataLevelEnforcement(t *testing.T) {
	needTool(t, "curl")
	e := startDataEnv(t)

	t.Run("granted paths work", func(t *testing.T) {
		dst := filepath.Join(e.out, "ok")
		if out, stderr, code := e.run(t, fmt.Sprintf(writeJob, "ok", dst)); code != 0 {
			t.Fatalf("a job within the grants: %s %s", out, stderr)
		}
		if _, err := os.Stat(filepath.Join(dst, "part-out-0")); err != nil {
			t.Fatalf("no part file: %v", err)
		}
		if out, stderr, code := e.run(t, fmt.Sprintf(printJob, "ok-read", filepath.Join(e.in, "ok.txt"))); code != 0 {
			t.Fatalf("reading a granted file: %s %s", out, stderr)
		}
	})

	t.Run("symlinked file in the read directory", func(t *testing.T) {
		link := filepath.Join(e.in, "link.txt")
		os.Symlink(filepath.Join(e.secret, "data.txt"), link)
		out, stderr, code := e.run(t, fmt.Sprintf(printJob, "symfile", link))
		if code == 0 || !strings.Contains(stderr, "symbolic link") {
			t.Errorf("job through a symlinked file: exit %d\n%s\n%s", code, out, stderr)
		}
		e.leaked(t, "symlinked file", out, stderr)
	})

	t.Run("symlinked directory in the read directory", func(t *testing.T) {
		link := filepath.Join(e.in, "sub")
		os.Symlink(e.secret, link)
		out, stderr, code := e.run(t, fmt.Sprintf(printJob, "symdir", filepath.Join(link, "data.txt")))
		if code == 0 || !strings.Contains(stderr, "symbolic link") {
			t.Errorf("job through a symlinked directory: exit %d\n%s\n%s", code, out, stderr)
		}
		e.leaked(t, "symlinked read directory", out, stderr)
	})

	t.Run("symlinked directory in the write directory", func(t *testing.T) {
		link := filepath.Join(e.out, "x")
		os.Symlink(e.secret, link)
		for _, dst := range []string{link, filepath.Join(link, "deeper")} {
			out, stderr, code := e.run(t, fmt.Sprintf(writeJob, "symout", dst))
			if code == 0 || !strings.Contains(stderr, "symbolic link") {
				t.Errorf("sink %s: exit %d\n%s\n%s", dst, code, out, stderr)
			}
		}
		e.secretUntouched(t, "symlinked sink directory")
	})

	t.Run("symlinks swapped after submission", func(t *testing.T) {
		// A job holding every slot makes the next ones wait: they are
		// accepted (the paths are regular when submitted), the paths are
		// swapped for symlinks, and only then do the tasks open them.
		out, stderr, code := e.run(t, "name: blocker\noperators:\n  - {name: g, type: generator, count: 0, rate: 10}\n  - {name: s, type: blackhole, input: g}\n", "--detached", "-p", "2")
		if code != 0 {
			t.Fatalf("blocker: %s %s", out, stderr)
		}
		blocker := strings.TrimSpace(out)
		e.c.waitFor(30*time.Second, "blocker running", func() bool { return e.state(t, blocker) == "RUNNING" })

		later := filepath.Join(e.in, "later.txt")
		os.WriteFile(later, []byte("innocent\n"), 0o644)
		laterDir := filepath.Join(e.out, "later")
		os.MkdirAll(laterDir, 0o755)
		out, stderr, code = e.run(t, fmt.Sprintf(printJob, "swapread", later), "--detached")
		if code != 0 {
			t.Fatalf("submit reader: %s %s", out, stderr)
		}
		reader := strings.TrimSpace(out)
		out, stderr, code = e.run(t, fmt.Sprintf(writeJob, "swapwrite", laterDir), "--detached")
		if code != 0 {
			t.Fatalf("submit writer: %s %s", out, stderr)
		}
		writer := strings.TrimSpace(out)
		for _, id := range []string{reader, writer} {
			if s := e.state(t, id); s == "RUNNING" || s == "FINISHED" {
				t.Fatalf("job %s is %s before the swap: the blocker does not hold the slots", id, s)
			}
		}
		os.Remove(later)
		os.Symlink(filepath.Join(e.secret, "data.txt"), later)
		os.Remove(laterDir)
		os.Symlink(e.secret, laterDir)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, stderr, code := runSluice(ctx, t, "cancel", blocker, "--jobmanager", e.ext, "--cacert", e.ca, "--token", e.token); code != 0 {
			t.Fatalf("cancel blocker: %s", stderr)
		}
		for _, id := range []string{reader, writer} {
			e.c.waitFor(60*time.Second, "job "+id+" ends", func() bool {
				s := e.state(t, id)
				return s == "FAILED" || s == "FINISHED" || s == "CANCELED"
			})
			_, body := e.get(t, "/jobs/"+id)
			if e.state(t, id) != "FAILED" || !strings.Contains(body, "symbolic link") {
				t.Errorf("job %s after the swap: %s", id, body)
			}
			e.leaked(t, "swapped symlink", body)
		}
		e.secretUntouched(t, "swapped sink directory")
	})

	t.Run("dot-dot is cleaned and refused at submit", func(t *testing.T) {
		for _, tc := range []struct{ spec, named string }{
			{fmt.Sprintf(printJob, "dotdot", e.in+"/../secret/data.txt"), e.secret + "/data.txt"},
			{fmt.Sprintf(writeJob, "dotdot", e.out+"/../bob/x"), filepath.Dir(e.out) + "/bob/x"},
		} {
			out, stderr, code := e.run(t, tc.spec)
			if code == 0 || !strings.Contains(stderr, "forbidden") || !strings.Contains(stderr, tc.named) {
				t.Errorf("a .. path: exit %d, %s %q (want 403 naming %s)", code, out, stderr, tc.named)
			}
			e.leaked(t, "dot-dot", out, stderr)
		}
		e.secretUntouched(t, "dot-dot")
	})

	t.Run("relative paths are refused at submit", func(t *testing.T) {
		for _, spec := range []string{
			fmt.Sprintf(writeJob, "rel", "../srv/out/alice/x"),
			fmt.Sprintf(printJob, "rel", "srv/in/ok.txt"),
			fmt.Sprintf(printJob, "rel", "./tokens"),
		} {
			out, stderr, code := e.run(t, spec)
			if code == 0 || !strings.Contains(stderr, "is relative: use an absolute path") {
				t.Errorf("a relative path: exit %d, %s %q", code, out, stderr)
			}
		}
	})
}

// TestJobManagerNeverReadsJobData: issue 9 defect 2. A csv source without
// fields named like the JobManager's token file, with an attached file of
// that name: the JobManager plans the job without opening anything (its
// own token file least of all); the task reads the attachment. Before the
// fix the 400 answer quoted the token file's first line.
func TestJobManagerNeverReadsJobData(t *testing.T) {
	needTool(t, "curl")
	e := startDataEnv(t)
	att := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(att, []byte("name,city\nann,paris\nbob,rome\n"), 0o644)
	spec := "name: probe\noperators:\n  - {name: src, type: file, path: tokens, format: csv}\n" +
		"  - {name: p, type: print, input: src}\n"
	out, stderr, code := e.run(t, spec, "--file", att)
	if strings.Contains(out+stderr, e.tokenLine) || strings.Contains(e.c.jm.Log(), e.tokenLine) {
		t.Fatalf("the JobManager's token file reached an answer or its log: %s %s", out, stderr)
	}
	if code != 0 {
		t.Fatalf("job reading its attachment: exit %d %s %s", code, out, stderr)
	}
	// The task read the attachment, not a file of that name anywhere else.
	e.c.waitFor(10*time.Second, "the attachment's rows printed", func() bool {
		return strings.Contains(e.c.tms[0].Log(), "ann paris")
	})
	if strings.Contains(e.c.tms[0].Log(), e.tokenLine) {
		t.Fatal("the TaskManager read the JobManager's token file")
	}
	// Without the attachment the same spec is refused at submit.
	out, stderr, code = e.run(t, spec)
	if code == 0 || !strings.Contains(stderr, "use an absolute path") || strings.Contains(out+stderr, e.tokenLine) {
		t.Fatalf("relative csv path without attachment: exit %d %s %s", code, out, stderr)
	}
}

// TestPrintSinkCannotForgeLogLines: issue 9 defect 13. A record holding a
// newline and a log-looking line, printed by a print sink to the
// TaskManager's output (its log), stays on one line.
func TestPrintSinkCannotForgeLogLines(t *testing.T) {
	needTool(t, "curl")
	e := startDataEnv(t)
	spec := "name: forge\noperators:\n  - {name: g, type: generator, count: 1}\n" +
		"  - {name: m, type: map, input: g, expr: 'key + \"\\nlevel=ERROR msg=forged\\r\\u001b[31m\\u2028level=ERROR msg=forged2\"', as: s}\n" +
		"  - {name: p, type: print, input: m}\n"
	if out, stderr, code := e.run(t, spec); code != 0 {
		t.Fatalf("exit %d %s %s", code, out, stderr)
	}
	tm := e.c.tms[0]
	e.c.waitFor(10*time.Second, "the record printed", func() bool {
		return strings.Contains(tm.Log(), `key-0\nlevel=ERROR msg=forged\r\u001b[31m\u2028level=ERROR msg=forged2`)
	})
	for _, line := range strings.Split(tm.Log(), "\n") {
		if strings.HasPrefix(line, "level=ERROR") || strings.Contains(line, "\x1b") || strings.Contains(line, "\u2028") {
			t.Errorf("forged or raw line in the TaskManager's log: %q", line)
		}
	}
}
