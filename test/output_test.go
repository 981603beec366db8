package test

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// runPrinting runs wordcount with its print sink (no output path) attached, with stdout
// captured (not a terminal), and checks that stdout carries exactly the word counts, each
// once, then the final state line, and no status-line control sequences anywhere.
func runPrinting(t *testing.T, c *cluster) {
	t.Helper()
	input := filepath.Join(repoRoot(t), "examples/data/gettysburg.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", "examples/wordcount.yaml", "-p", "4", "--param", "input="+input)
	if code != 0 {
		t.Fatalf("sluice run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	last := lines[len(lines)-1]
	if !regexpMatch(`^Job [0-9a-f]+ FINISHED$`, last) {
		t.Errorf("last line of stdout %q, want the final state", last)
	}
	equalLines(t, sortedLines(strings.Join(lines[:len(lines)-1], "\n")), referenceCounts(t, input))
	if !regexpMatch(`(?m)^nation 5$`, stdout) {
		t.Errorf("stdout lacks \"nation 5\":\n%s", stdout)
	}
	for name, s := range map[string]string{"stdout": stdout, "stderr": stderr} {
		if strings.ContainsAny(s, "\r\x1b") {
			t.Errorf("%s is not a terminal but has status-line control characters: %q", name, s)
		}
	}
	// The TaskManagers still print the records to their own stdout (Flink's .out).
	c.waitFor(10*time.Second, "the records in the TaskManagers' stdout", func() bool {
		for _, tm := range c.tms {
			if regexpMatch(`(?m)^nation 5$`, tm.Log()) {
				return true
			}
		}
		return false
	})
}

// TestRunStreamsPrintedRecords: sluice run shows what the job's print sinks print, on a
// plaintext cluster and on one with internal TLS and per-TaskManager identities (where the
// JobManager takes a task's lines only from the TaskManager whose certificate names the one
// the task runs on).
func TestRunStreamsPrintedRecords(t *testing.T) {
	t.Run("plaintext", func(t *testing.T) {
		runPrinting(t, startCluster(t, 2, 2))
	})
	t.Run("internal-tls", func(t *testing.T) {
		c, _ := autoCluster(t, 2, "security.ssl.internal.auto.join-token.max-uses=0")
		runPrinting(t, c)
		if strings.Contains(c.jm.Log(), "output refused") || strings.Contains(c.jm.Log(), "may not") {
			t.Errorf("the JobManager refused output of its own TaskManagers:\n%s", c.jm.Log())
		}
	})
}

// TestPendingReason: a job that needs more slots than the cluster has says why it waits in
// GET /jobs/{id} ("waiting for 4 slots, 2 available"), and stops saying so once it runs.
func TestPendingReason(t *testing.T) {
	c := startCluster(t, 1, 2, "slot.request.timeout=2 min")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, stderr, code := c.sluice(ctx, "run", "examples/unbounded.yaml", "--detached", "-p", "4", "--param", "rate=100")
	if code != 0 {
		t.Fatalf("submit: %s %s", out, stderr)
	}
	id := strings.TrimSpace(out)
	var reason string
	c.waitFor(30*time.Second, "a pending reason", func() bool {
		reason, _ = c.job(id)["pending-reason"].(string)
		return reason != ""
	})
	if !strings.HasPrefix(reason, "waiting for 4 slots, 2 available") || !strings.Contains(reason, "slot.request.timeout") {
		t.Errorf("pending-reason %q, want \"waiting for 4 slots, 2 available\" and the key that bounds the wait", reason)
	}
	if s := c.jobState(id); s != "CREATED" {
		t.Errorf("state %s while waiting for slots, want CREATED", s)
	}
	// sluice status shows it too.
	if out, _, _ := c.sluice(ctx, "status", id); !strings.Contains(out, "Pending: waiting for 4 slots") {
		t.Errorf("sluice status lacks the reason: %s", out)
	}
	c.addTM()
	c.waitFor(30*time.Second, "the job running without a pending reason", func() bool {
		j := c.job(id)
		_, waiting := j["pending-reason"]
		return j["state"] == "RUNNING" && !waiting
	})
	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel: %s", stderr)
	}
}

// TestForeignTaskManagerCannotInjectOutput: with per-process certificates, a TaskManager
// cannot put lines into the output of a job task it does not run: claiming to be the
// TaskManager that runs it is refused by its certificate, and sending as itself is refused
// because the task is not deployed on it. The job's output stays clean.
func TestForeignTaskManagerCannotInjectOutput(t *testing.T) {
	dir := createCerts(t, "c1", "tm-1", "tm-2")
	c := startClusterWith(t, identitySpec(dir, filepath.Join(dir, "truststore.pem"), 2))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, stderr, code := c.sluice(ctx, "run", "examples/unbounded.yaml", "--detached", "-p", "1", "--param", "rate=10")
	if code != 0 {
		t.Fatalf("submit: %s %s", out, stderr)
	}
	id := strings.TrimSpace(out)
	// The TaskManager whose slot the job took runs every task of it (-p 1).
	var runner, other string
	c.waitFor(30*time.Second, "the job running on one TaskManager", func() bool {
		var tms map[string][]map[string]any
		if c.jobState(id) != "RUNNING" || c.get("/taskmanagers", &tms) != nil {
			return false
		}
		for _, tm := range tms["taskmanagers"] {
			if tm["freeSlots"].(float64) < tm["slotsNumber"].(float64) {
				runner = tm["id"].(string)
			} else {
				other = tm["id"].(string)
			}
		}
		return runner != "" && other != ""
	})

	// The other TaskManager's certificate, on the JobManager's control plane.
	cert := keyPair(t, filepath.Join(dir, "taskmanager-"+other+".pem"))
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", c.rpcPort), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true,
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	jm := controlpb.NewJobManagerClient(conn)
	for _, claim := range []string{runner, other} {
		_, err := jm.ReportOutput(ctx, &controlpb.TaskOutput{TaskmanagerId: claim, JobId: id, Vertex: 0, Subtask: 0, Lines: []string{"forged by " + other}})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s sending output as %s for a task on %s: %v, want PermissionDenied", other, claim, runner, err)
		}
	}
	var o struct {
		Lines      []string `json:"lines"`
		NextOffset int64    `json:"next-offset"`
	}
	if err := c.get("/jobs/"+id+"/output", &o); err != nil {
		t.Fatal(err)
	}
	if len(o.Lines) != 0 || o.NextOffset != 0 {
		t.Errorf("the job's output took forged lines: %+v", o)
	}
	if !strings.Contains(c.jm.Log(), "output refused") {
		t.Errorf("the JobManager did not log the refused output")
	}
	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel: %s", stderr)
	}
}
