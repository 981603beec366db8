package jobmanager_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/jobmanager"
)

// TestSubmitRefusesRelativeDataPaths: a relative path would be checked
// against the JobManager's working directory and opened against a
// TaskManager's; it is refused at submit, saying what to do.
func TestSubmitRefusesRelativeDataPaths(t *testing.T) {
	c, base := startCluster(t, nil)
	for _, spec := range []string{
		"name: x\noperators:\n  - {name: src, type: file, path: ../etc/passwd}\n  - {name: p, type: print, input: src}\n",
		"name: x\noperators:\n  - {name: g, type: generator, count: 1}\n  - {name: out, type: file, input: g, path: ../srv/out/alice/x}\n",
		"name: x\noperators:\n  - {name: g, type: generator, count: 1}\n  - {name: out, type: print, input: g, path: out}\n",
	} {
		body, _ := json.Marshal(map[string]any{"spec": spec})
		if code, out := do(t, "POST", base+"/jobs", "application/json", body); code != 400 || !strings.Contains(out, "is relative: use an absolute path") {
			t.Errorf("relative path: %d %s", code, out)
		}
		if _, err := c.JM.Submit(jobmanager.Submission{Spec: []byte(spec)}); !errors.Is(err, jobmanager.ErrBadSubmission) || !strings.Contains(err.Error(), "use an absolute path") {
			t.Errorf("Submit without a base directory: %v", err)
		}
	}
}

// TestSubmitNeverReadsJobData: the JobManager plans a csv source without
// fields without opening it. Before the fix it read the header at submit
// and quoted it in the 400 answer (here: a line of a token file).
func TestSubmitNeverReadsJobData(t *testing.T) {
	_, base := startCluster(t, nil)
	secret := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(secret, []byte("sha256:0badc0ffee0badc0ffee,root,admins\n"), 0o600)
	spec := "name: x\noperators:\n  - {name: src, type: file, path: " + secret + ", format: csv}\n  - {name: p, type: blackhole, input: src}\n"
	body, _ := json.Marshal(map[string]any{"spec": spec})
	code, out := do(t, "POST", base+"/jobs", "application/json", body)
	if strings.Contains(out, "0badc0ffee") {
		t.Fatalf("the JobManager read the job's data: %d %s", code, out)
	}
	if code != 202 {
		t.Fatalf("submit: %d %s", code, out)
	}
}
