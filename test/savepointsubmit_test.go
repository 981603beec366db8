package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/security/sealed"
)

const blackholeJob = "name: %s\noperators:\n  - {name: g, type: generator, count: 5}\n  - {name: s, type: blackhole, input: g}\n"

// TestRunFromSavepointSubmission: sluice run --fromSavepoint/-s and --allowNonRestoredState/-n
// reach the JobManager (multipart submission), which refuses a path without a _metadata with
// a 400 that says what to give, and takes a savepoint directory, its _metadata or a file: URI.
func TestRunFromSavepointSubmission(t *testing.T) {
	c := startCluster(t, 1, 1)
	dir := t.TempDir()
	spec := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(spec, []byte(strings.ReplaceAll(blackholeJob, "%s", "restore")), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	missing := filepath.Join(dir, "savepoint-gone")
	for _, p := range []string{missing, "file://" + missing, missing + "/_metadata"} {
		_, stderr, code := c.sluice(ctx, "run", spec, "-s", p)
		want := "savepoint " + p + ": no _metadata there (is it the savepoint directory printed by sluice savepoint?)"
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("run -s %s: exit %d, stderr %q; want %q", p, code, stderr, want)
		}
	}
	if _, stderr, code := c.sluice(ctx, "run", spec, "--allowNonRestoredState"); code == 0 || !strings.Contains(stderr, "--fromSavepoint (-s)") {
		t.Errorf("run -n without -s: exit %d, %s", code, stderr)
	}

	sp := filepath.Join(dir, "savepoint-5d1f2a-0c9e11aa22bb")
	if err := os.Mkdir(sp, 0o700); err != nil {
		t.Fatal(err)
	}
	writeEmptySavepoint(t, sp)
	for _, args := range [][]string{
		{"--fromSavepoint", "file:" + sp, "--allowNonRestoredState"},
		{"-s", sp + "/_metadata", "-n"},
		{"-s", "file://" + sp},
	} {
		stdout, stderr, code := c.sluice(ctx, append([]string{"run", spec}, args...)...)
		if code != 0 || !strings.Contains(stdout, "FINISHED") {
			t.Errorf("run %v: exit %d\n%s\n%s", args, code, stdout, stderr)
		}
	}
	// The JobManager took both fields (the restore itself comes with the savepoint step).
	c.waitFor(5*time.Second, "the JobManager to log the savepoints the jobs start from", func() bool {
		log := c.jm.Log()
		return strings.Count(log, `msg="job restores from a savepoint"`) == 3 &&
			strings.Count(log, "path="+sp+" allow-non-restored-state=true") == 2 &&
			strings.Count(log, "path="+sp+" allow-non-restored-state=false") == 1
	})
}

// TestRestoreNeedsReadOnTheSavepoint: restoring reads the savepoint's files, so the submitter
// needs read on file:<savepoint dir>, decided before the JobManager looks at the path: where
// alice may not read, an existing savepoint and a missing one get the same 403.
func TestRestoreNeedsReadOnTheSavepoint(t *testing.T) {
	needTool(t, "curl")
	e := startDataEnv(t)
	for _, d := range []string{filepath.Join(e.secret, "sp"), filepath.Join(e.in, "sp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		writeEmptySavepoint(t, d)
	}
	var refusals []string
	for _, p := range []string{filepath.Join(e.secret, "sp"), filepath.Join(e.secret, "none"), filepath.Join(e.secret, "sp", "_metadata")} {
		stdout, stderr, code := e.run(t, strings.ReplaceAll(blackholeJob, "%s", "restore"), "-s", p)
		stderr += stdout
		dir := strings.TrimSuffix(p, "/_metadata")
		if code == 0 || !strings.Contains(stderr, "forbidden: the job would read file:"+dir+",") {
			t.Errorf("restore from %s: exit %d, want a refusal naming read file:%s:\n%s", p, code, dir, stderr)
		}
		if strings.Contains(stderr, "_metadata there") {
			t.Errorf("restore from %s: the refusal tells whether a savepoint is there:\n%s", p, stderr)
		}
		refusals = append(refusals, strings.ReplaceAll(stderr, dir, "DIR"))
	}
	if refusals[0] != refusals[1] {
		t.Errorf("an existing and a missing savepoint are refused differently:\n%s\n%s", refusals[0], refusals[1])
	}
	// Where she may read: a missing one is a 400, an existing one is taken.
	if _, stderr, code := e.run(t, strings.ReplaceAll(blackholeJob, "%s", "restore"), "-s", filepath.Join(e.in, "none")); code == 0 || !strings.Contains(stderr, "no _metadata there") {
		t.Errorf("restore from a missing savepoint alice may read: exit %d\n%s", code, stderr)
	}
	if stdout, stderr, code := e.run(t, strings.ReplaceAll(blackholeJob, "%s", "restore"), "-s", filepath.Join(e.in, "sp")); code != 0 {
		t.Errorf("restore from a savepoint alice may read: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// writeEmptySavepoint writes, in dir, the _metadata of a savepoint without
// state (unsealed: its digest line ends it), as sluice savepoint writes one.
func writeEmptySavepoint(t *testing.T, dir string) {
	t.Helper()
	body, err := checkpoint.Marshal(&checkpoint.Metadata{
		Format: checkpoint.Format, JobID: "5d1f2a0c9e11aa22bb33cc44dd55ee66", JobName: "restore", CheckpointID: 1,
		Type: checkpoint.TypeSavepoint, MaxParallelism: 128, Sealing: checkpoint.SealingSHA256, Triggered: 1718000000000, Completed: 1718000000100,
		Operators: []checkpoint.OperatorState{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.MetadataName), sealed.AppendDigestLine(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
