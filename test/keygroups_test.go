package test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMaxParallelismSetting runs wordcount on a cluster with the job's
// pipeline.max-parallelism set by -D: hash edges and the file source divide
// by it, and the JobManager refuses a parallelism above it, naming the key.
func TestMaxParallelismSetting(t *testing.T) {
	c := startCluster(t, 1, 4)
	input := writeSample(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	wordcountWithSetting(ctx, t, c, "pipeline.max-parallelism=3", "3", input)

	_, stderr, code := c.sluice(ctx, "run", "-D", "pipeline.max-parallelism=3", "examples/wordcount.yaml", "-p", "4",
		"--param", "input="+input)
	if code == 0 || !strings.Contains(stderr, "exceeds pipeline.max-parallelism (3)") || !strings.Contains(stderr, "-D pipeline.max-parallelism=4") {
		t.Errorf("run -p 4 with pipeline.max-parallelism=3: exit %d, want a refusal naming the key and the fix: %s", code, stderr)
	}
}

// wordcountWithSetting runs wordcount at parallelism p with one job setting
// (-D setting) into part files, and compares them with the reference.
func wordcountWithSetting(ctx context.Context, t *testing.T, c *cluster, setting, p, input string) {
	t.Helper()
	outDir := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := c.sluice(ctx, "run", "-D", setting, "examples/wordcount.yaml", "-p", p,
		"--param", "input="+input, "--param", "output="+outDir)
	if code != 0 {
		t.Fatalf("run -D %s -p %s: exit %d\nstdout: %s\nstderr: %s", setting, p, code, stdout, stderr)
	}
	equalLines(t, readParts(t, outDir), referenceCounts(t, input))
}
