package jobmanager_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/jobmanager"
)

// TestSubmitReplayWarnings: a job whose source cannot replay its input is
// accepted, with a warning naming the operator when it checkpoints
// (SubmitJob and the POST /jobs answer) and none when it does not.
func TestSubmitReplayWarnings(t *testing.T) {
	cfg := config.New()
	if err := cfg.Set("state.checkpoints.dir", filepath.Join(t.TempDir(), "ckpt")); err != nil {
		t.Fatal(err)
	}
	c, base := startCluster(t, cfg)
	const spec = "name: s\noperators:\n  - {name: lines, type: socket, host: 127.0.0.1, port: 1}\n  - {name: out, type: blackhole, input: lines}\n"
	const want = `operator "lines" (socket) cannot replay its input`
	for _, tc := range []struct {
		name     string
		settings map[string]string
		warn     bool
	}{
		{"checkpointing", map[string]string{"execution.checkpointing.interval": "1 s"}, true},
		{"savepoints only", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := c.JM.SubmitJob(jobmanager.Submission{Spec: []byte(spec), Config: tc.settings})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(sub.Warnings) == 1 && strings.Contains(sub.Warnings[0], want); got != tc.warn || (!tc.warn && len(sub.Warnings) > 0) {
				t.Errorf("SubmitJob warnings %q, want a warning: %t", sub.Warnings, tc.warn)
			}
			body, _ := json.Marshal(map[string]any{"spec": spec, "config": tc.settings})
			code, out := do(t, "POST", base+"/jobs", "application/json", body)
			if code != http.StatusAccepted {
				t.Fatalf("POST /jobs: %d %s", code, out)
			}
			var ans struct {
				JobID    string   `json:"jobid"`
				Warnings []string `json:"warnings"`
			}
			if err := json.Unmarshal([]byte(out), &ans); err != nil {
				t.Fatal(err)
			}
			if ans.JobID == "" || (len(ans.Warnings) == 1 && strings.Contains(ans.Warnings[0], want)) != tc.warn || (!tc.warn && strings.Contains(out, "warnings")) {
				t.Errorf("POST /jobs answered %s, want a warning: %t", out, tc.warn)
			}
		})
	}
}
