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

// Exactly-once checkpoints under failure (issue 11): examples/stateful.yaml
// runs with 1 s checkpoints on a JobManager and two TaskManagers; one
// TaskManager is killed with SIGKILL while the job runs and a third one is
// started; the job finishes and its committed output equals, line for line
// after sorting, that of the same job run without a failure.

// checkpointCluster starts a JobManager and n TaskManagers with a shared
// checkpoint directory (returned) and the settings every recovery test
// needs: a quick failure detection and restarts.
func checkpointCluster(t *testing.T, n int, tls bool, defines ...string) (*cluster, string) {
	t.Helper()
	ckpt := filepath.Join(t.TempDir(), "checkpoints")
	defines = append([]string{
		"state.checkpoints.dir=" + ckpt, "state.checkpoints.num-retained=2",
		"heartbeat.interval=500 ms", "heartbeat.timeout=3 s", "slot.request.timeout=30 s",
		"restart-strategy.type=fixed-delay", "restart-strategy.fixed-delay.attempts=5",
		"restart-strategy.fixed-delay.delay=500 ms",
	}, defines...)
	if tls {
		return tlsEverywhereCluster(t, n, defines), ckpt
	}
	return startClusterWith(t, clusterSpec{n: n, slots: 2, defines: defines}), ckpt
}

// runDetached submits a job and returns its id.
func runDetached(t *testing.T, c *cluster, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, append([]string{"run", "--detached"}, args...)...)
	if code != 0 {
		t.Fatalf("sluice run %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return strings.TrimSpace(stdout)
}

// checkpointCounts reads GET /jobs/{id}/checkpoints.
func checkpointCounts(c *cluster, id string) (completed, failed, restored float64, latest map[string]any) {
	var st map[string]any
	if err := c.get("/jobs/"+id+"/checkpoints", &st); err != nil {
		return
	}
	counts, _ := st["counts"].(map[string]any)
	completed, _ = counts["completed"].(float64)
	failed, _ = counts["failed"].(float64)
	restored, _ = counts["restored"].(float64)
	latest, _ = st["latest"].(map[string]any)
	return
}

func waitCheckpoints(t *testing.T, c *cluster, id string, n float64) {
	t.Helper()
	c.waitFor(60*time.Second, fmt.Sprintf("%v completed checkpoints of job %s", n, id), func() bool {
		done, _, _, _ := checkpointCounts(c, id)
		return done >= n
	})
}

func waitJobState(t *testing.T, c *cluster, id, want string, timeout time.Duration) {
	t.Helper()
	c.waitFor(timeout, "job "+id+" "+want, func() bool {
		s := c.jobState(id)
		if s == "FAILED" && want != "FAILED" {
			t.Fatalf("job %s failed: %v\nJobManager log:\n%s", id, c.job(id)["failure-cause"], c.jm.Log())
		}
		return s == want
	})
}

// committedLines reads every visible (committed) part file in dir, sorted.
// Hidden in-progress files are not output.
func committedLines(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// referenceOutput runs examples/stateful.yaml without a failure, as fast as
// possible, and returns its sorted output.
func referenceOutput(t *testing.T, c *cluster, args ...string) []string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "reference")
	id := runDetached(t, c, append([]string{"examples/stateful.yaml", "-p", "2", "--param", "rate=0", "--param", "output=" + out}, args...)...)
	waitJobState(t, c, id, "FINISHED", 60*time.Second)
	lines := committedLines(t, out)
	if len(lines) != 100 {
		t.Fatalf("reference run: %d output lines, want one per key (100)", len(lines))
	}
	return lines
}

func TestExactlyOnceAfterKill(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "ckpt.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		tls     bool
		defines []string // cluster
		args    []string // job
		sealed  bool
	}{
		{name: "hashmap"},
		{name: "pebble", args: []string{"-D", "state.backend.type=pebble"}},
		{name: "pebble-incremental", args: []string{"-D", "state.backend.type=pebble", "-D", "state.backend.incremental=true"}},
		{name: "encrypted", defines: []string{"state.checkpoints.encryption.key-file=" + keyFile}, sealed: true},
		{name: "tls", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // a cluster of its own
			c, ckpt := checkpointCluster(t, 2, tc.tls, tc.defines...)
			want := referenceOutput(t, c, tc.args...)

			out := filepath.Join(t.TempDir(), "out")
			id := runDetached(t, c, append([]string{"examples/stateful.yaml", "-p", "2", "--param", "output=" + out}, tc.args...)...)
			waitCheckpoints(t, c, id, 2)
			c.tms[0].Kill()
			c.addTM()
			waitJobState(t, c, id, "FINISHED", 120*time.Second)
			if got := committedLines(t, out); !slices.Equal(got, want) {
				t.Fatalf("output after a failure differs from the run without one:\n got %d lines %q\nwant %d lines %q\nJobManager log:\n%s",
					len(got), got, len(want), want, c.jm.Log())
			}
			j := c.job(id)
			if r, _ := j["restarts"].(float64); r < 1 {
				t.Errorf("the job did not restart after the kill (restarts %v)", j["restarts"])
			}
			if _, _, restored, _ := checkpointCounts(c, id); restored < 1 {
				t.Errorf("the job did not restore a checkpoint after the kill")
			}
			wantLog := "integrity-checked (SHA-256), not encrypted"
			if tc.sealed {
				wantLog = "encrypted (AES-256-GCM)"
			}
			if !strings.Contains(c.jm.Log(), wantLog) {
				t.Errorf("the JobManager's log does not say %q", wantLog)
			}
			checkPrivateTree(t, ckpt)
		})
	}
}

// checkPrivateTree checks that every directory under root is 0700 and
// every file 0600.
func checkPrivateTree(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
}

// countingSpec is an unbounded keyed count whose every update goes to part
// files: after a restore, a key's first count continues from its saved one.
const countingSpec = `name: counting
parameters:
  output: ""
operators:
  - {name: gen, type: generator, count: 0, rate: 400, keys: 20}
  - {name: by-key, type: key_by, input: gen, key: key}
  - {name: count, type: aggregate, input: by-key, function: count}
  - {name: out, type: print, input: count, path: "${output}"}
`

// stopWithSavepoint runs sluice stop and returns the savepoint's location,
// which it prints alone on its last line of stdout.
func stopWithSavepoint(t *testing.T, c *cluster, id, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "stop", id, "--savepointPath", dir)
	if code != 0 {
		t.Fatalf("sluice stop: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	loc := lines[len(lines)-1]
	if !strings.HasPrefix(loc, "file:"+dir+"/savepoint-") {
		t.Fatalf("sluice stop printed %q, want the savepoint's location under %s", stdout, dir)
	}
	return loc
}

// countsByKey reads a counting job's committed output: per key, the counts in
// the order each part file holds them (one subtask's file holds a key's whole
// history of one run).
func countsByKey(t *testing.T, dir string) map[string][]int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return strings.Compare(partOrder(a.Name()), partOrder(b.Name())) })
	out := map[string][]int{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var key string
			var n int
			if _, err := fmt.Sscan(strings.NewReplacer(",", " ", "=", " ").Replace(l), &key, &n); err != nil {
				t.Fatalf("%s: line %q: %v", e.Name(), l, err)
			}
			out[key] = append(out[key], n)
		}
	}
	return out
}

// partOrder orders committed part files part-<op>-<job>-<subtask>-<checkpoint>
// by checkpoint id, so a key's counts read in the order they were committed.
func partOrder(name string) string {
	i := strings.LastIndex(name, "-")
	return fmt.Sprintf("%012s", name[i+1:])
}

func TestSavepointRescale(t *testing.T) {
	t.Parallel()
	c, _ := checkpointCluster(t, 2, false)
	dir := t.TempDir()
	counting := filepath.Join(dir, "counting.yaml")
	if err := os.WriteFile(counting, []byte(countingSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	// examples/unbounded.yaml itself, with its blackhole sink swapped for part
	// files, so that the totals can be read.
	example, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/unbounded.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readable := strings.Replace(strings.Replace(string(example), "type: blackhole", "type: print\n    path: ${output}", 1),
		"parameters:\n", "parameters:\n  output: \"\"\n", 1)
	unbounded := filepath.Join(dir, "unbounded.yaml")
	if err := os.WriteFile(unbounded, []byte(readable), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("counts", func(t *testing.T) {
		// The first count of a key continues from the savepoint, and every update is the
		// previous one plus one: nothing lost, nothing counted twice, across the rescale.
		rescaleRounds(t, c, counting, 20, func(key string, saved, next int) bool { return next == saved+1 })
	})
	t.Run("unbounded-example", func(t *testing.T) {
		// Its totals sum value*2 over the ids of a key (value = id, key = key-(id mod 100)): each
		// update adds 2*id for an id of the key, so a total continues from the saved one
		// exactly when the difference is not negative and congruent to 2*k modulo 200.
		rescaleRounds(t, c, unbounded, 100, func(key string, saved, next int) bool {
			var k int
			fmt.Sscanf(key, "key-%d", &k)
			d := next - saved
			return d >= 0 && d%200 == (2*k)%200 // d is 0 only for id 0, the first record of key-0
		}, "--param", "rate=400")
	})
}

// rescaleRounds runs spec at -p 2, stops it with a savepoint, resumes it at -p 4, stops
// it again and resumes it at -p 1, and checks with follows that every key's committed
// totals continue from the last savepoint's through each rescale.
func rescaleRounds(t *testing.T, c *cluster, spec string, keys int, follows func(key string, prev, next int) bool, extra ...string) {
	spDir := t.TempDir()
	saved := map[string]int{} // per key: the total the last savepoint holds
	from := ""
	for round, p := range []string{"2", "4", "1"} {
		out := filepath.Join(t.TempDir(), "out-"+p)
		args := append([]string{spec, "-p", p, "--param", "output=" + out, "-D", "execution.checkpointing.interval=500 ms"}, extra...)
		if from != "" {
			args = append(args, "--fromSavepoint", from)
		}
		id := runDetached(t, c, args...)
		waitJobState(t, c, id, "RUNNING", 30*time.Second)
		waitCheckpoints(t, c, id, 2)
		from = stopWithSavepoint(t, c, id, spDir)
		waitJobState(t, c, id, "FINISHED", 30*time.Second)
		totals := countsByKey(t, out)
		if len(totals) != keys {
			t.Fatalf("round %d (-p %s): output has %d keys, want %d", round, p, len(totals), keys)
		}
		for key, seq := range totals {
			if !follows(key, saved[key], seq[0]) {
				t.Errorf("round %d (-p %s): key %s restarts at %d after the savepoint's %d", round, p, key, seq[0], saved[key])
			}
			for i := 1; i < len(seq); i++ {
				if !follows(key, seq[i-1], seq[i]) {
					t.Errorf("round %d: key %s goes from %d to %d", round, key, seq[i-1], seq[i])
					break
				}
			}
			saved[key] = seq[len(seq)-1]
		}
		if round > 0 {
			if _, _, restored, _ := checkpointCounts(c, id); restored != 1 {
				t.Errorf("round %d: restored count %v, want 1", round, restored)
			}
		}
	}
}

// TestCheckpointTampering: a byte flipped in a state file of the latest
// checkpoint is found at recovery, which logs the file and restores the
// previous checkpoint; with encryption, a state file copied from another
// job is refused too.
func TestCheckpointTampering(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "ckpt.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		defines []string
		tamper  func(t *testing.T, file, other string)
	}{
		{name: "flipped-byte", tamper: func(t *testing.T, file, _ string) { flipByte(t, file) }},
		{name: "flipped-byte-sealed", defines: []string{"state.checkpoints.encryption.key-file=" + keyFile},
			tamper: func(t *testing.T, file, _ string) { flipByte(t, file) }},
		{name: "other-job-sealed", defines: []string{"state.checkpoints.encryption.key-file=" + keyFile},
			tamper: func(t *testing.T, file, other string) {
				b, err := os.ReadFile(other)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // a cluster of its own
			c, ckpt := checkpointCluster(t, 2, false, tc.defines...)
			// Another job's checkpoints, for the state file to copy.
			otherID := runDetached(t, c, "examples/stateful.yaml", "-p", "1", "--param", "rate=200", "--param", "output="+t.TempDir())
			waitCheckpoints(t, c, otherID, 1)
			_, _, _, latest := checkpointCounts(c, otherID)
			otherFile := keyedFile(t, ckpt, otherID, latest)
			otherCopy := filepath.Join(t.TempDir(), "other-keyed")
			copyFile(t, otherFile, otherCopy)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c.sluice(ctx, "cancel", otherID)

			out := filepath.Join(t.TempDir(), "out")
			id := runDetached(t, c, "examples/stateful.yaml", "-p", "1", "--param", "output="+out)
			waitCheckpoints(t, c, id, 3)
			// Stop the job's progress where it is: kill every TaskManager, then
			// tamper with the newest checkpoint, then let it recover.
			for _, tm := range c.tms {
				tm.Kill()
			}
			_, _, _, latest = checkpointCounts(c, id)
			file := keyedFile(t, ckpt, id, latest)
			tc.tamper(t, file, otherCopy)
			rel, _ := filepath.Rel(filepath.Join(ckpt, id), file)
			c.addTM()
			c.waitFor(60*time.Second, "the JobManager to refuse the tampered checkpoint, naming the file", func() bool {
				return strings.Contains(c.jm.Log(), rel) && strings.Contains(c.jm.Log(), "refused")
			})
			waitJobState(t, c, id, "FINISHED", 120*time.Second)
			if got := committedLines(t, out); len(got) != 100 {
				t.Errorf("after restoring the previous checkpoint the job wrote %d lines, want 100", len(got))
			}
		})
	}
}

// keyedFile returns the path of a keyed state file of the checkpoint that
// GET /jobs/{id}/checkpoints reports as the latest completed.
func keyedFile(t *testing.T, ckpt, id string, latest map[string]any) string {
	t.Helper()
	done, _ := latest["completed"].(map[string]any)
	if done == nil {
		t.Fatalf("job %s has no completed checkpoint: %v", id, latest)
	}
	n := int64(done["id"].(float64))
	dir := filepath.Join(ckpt, id, fmt.Sprintf("chk-%d", n))
	matches, _ := filepath.Glob(filepath.Join(dir, "*-keyed"))
	if len(matches) == 0 {
		t.Fatalf("no keyed state file in %s", dir)
	}
	return matches[0]
}

func flipByte(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointBadInput: each bad setting or savepoint is refused with an
// error naming the key, path or operator.
func TestCheckpointBadInput(t *testing.T) {
	c, _ := checkpointCluster(t, 1, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(args ...string) (string, int) {
		_, stderr, code := c.sluice(ctx, append([]string{"run", "--detached"}, args...)...)
		return stderr, code
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if stderr, code := run("examples/stateful.yaml", "-s", missing); code == 0 || !strings.Contains(stderr, missing) || !strings.Contains(stderr, "is it the savepoint directory printed by sluice savepoint") {
		t.Errorf("missing savepoint: exit %d: %s", code, stderr)
	}
	if stderr, code := run("examples/stateful.yaml", "-D", "execution.checkpointing.interval=50 ms"); code == 0 ||
		!strings.Contains(stderr, "execution.checkpointing.interval: 50 ms is below the minimum of 100 ms") {
		t.Errorf("interval below the minimum: exit %d: %s", code, stderr)
	}

	// A savepoint of another job graph: its operators are missing here.
	spec := filepath.Join(t.TempDir(), "counting.yaml")
	os.WriteFile(spec, []byte(countingSpec), 0o600)
	id := runDetached(t, c, spec, "-p", "1", "--param", "output="+t.TempDir())
	waitJobState(t, c, id, "RUNNING", 30*time.Second)
	loc := stopWithSavepoint(t, c, id, t.TempDir())
	stderr, code := run("examples/stateful.yaml", "-p", "1", "-s", loc, "--param", "output="+t.TempDir())
	if code == 0 || !strings.Contains(stderr, `"count"`) || !strings.Contains(stderr, "--allowNonRestoredState") {
		t.Errorf("savepoint of another job graph: exit %d: %s", code, stderr)
	}
	if stderr, code := run("examples/stateful.yaml", "-p", "1", "-s", loc, "-n", "--param", "output="+t.TempDir()); code != 0 {
		t.Errorf("--allowNonRestoredState: exit %d: %s", code, stderr)
	}

	// A checkpoint directory the JobManager cannot create (tests run as root,
	// so a path under a regular file stands for an unusable directory):
	// refused at submit, naming the key and the path.
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o600)
	bad := filepath.Join(blocker, "ckpt")
	c2 := startClusterWith(t, clusterSpec{n: 0, slots: 1, defines: []string{"state.checkpoints.dir=" + bad}})
	_, stderr, code = c2.sluice(ctx, "run", "--detached", "examples/stateful.yaml")
	if code == 0 || !strings.Contains(stderr, "state.checkpoints.dir") || !strings.Contains(stderr, bad) || !strings.Contains(stderr, "not a directory") {
		t.Errorf("unusable checkpoint dir: exit %d: %s", code, stderr)
	}
	// A job with checkpoints on a cluster without a checkpoint directory.
	c3 := startClusterWith(t, clusterSpec{n: 0, slots: 1})
	_, stderr, code = c3.sluice(ctx, "run", "--detached", "examples/stateful.yaml")
	if code == 0 || !strings.Contains(stderr, "state.checkpoints.dir") {
		t.Errorf("no checkpoint dir: exit %d: %s", code, stderr)
	}
}

// tlsEverywhereCluster is a cluster with TLS on every connection: internal
// mutual TLS with a certificate per process (tm-1 to tm-3), and the REST API
// over HTTPS, which the test and the CLI reach trusting the cluster's CA.
func tlsEverywhereCluster(t *testing.T, n int, defines []string) *cluster {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, stderr, code := runSluice(ctx, t, "security", "create-certs", "--out", dir, "--cluster-id", "c1",
		"--taskmanager-ids", "tm-1,tm-2,tm-3", "--hosts", "localhost,127.0.0.1"); code != 0 {
		t.Fatalf("create-certs: %s", stderr)
	}
	trust := filepath.Join(dir, "truststore.pem")
	spec := identitySpec(dir, trust, n, append(defines, "security.ssl.rest.enabled=true",
		"security.ssl.rest.keystore="+filepath.Join(dir, "rest.pem"))...)
	spec.restTrust = trust
	c := startClusterWith(t, spec)
	if !strings.HasPrefix(c.restURL, "https://") {
		t.Fatalf("the REST API is not served over HTTPS: %s", c.restURL)
	}
	return c
}
