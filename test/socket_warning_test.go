package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineServer serves lines to every connection it accepts, then closes it;
// it stops when the test ends.
func lineServer(t *testing.T, lines ...string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			fmt.Fprint(conn, strings.Join(lines, "\n")+"\n")
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
}

// socketSpec reads lines from a socket and writes them to part files.
const socketSpec = `name: socket-lines
parameters:
  port: "0"
  output: ""
operators:
  - name: lines
    type: socket
    host: 127.0.0.1
    port: ${port}
  - {name: out, type: print, input: lines, path: "${output}"}
`

// postJob submits spec as JSON and returns the decoded answer.
func postJob(t *testing.T, c *cluster, spec string, params, config map[string]string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"spec": spec, "parameters": params, "config": config})
	resp, err := http.Post(c.restURL+"/jobs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /jobs: %s %v", resp.Status, out)
	}
	return out
}

// TestSocketSourceReplayWarning: a socket source cannot replay its input,
// so with checkpointing its job is at most once (docs/architecture.md,
// "Engine", §6.8). The job is accepted with a warning naming the operator:
// in the POST /jobs answer, on sluice run's stderr and in the JobManager's
// log for the job. Without checkpointing there is nothing to warn about.
func TestSocketSourceReplayWarning(t *testing.T) {
	c, _ := checkpointCluster(t, 1, false)
	port := fmt.Sprint(lineServer(t, "one", "two", "three"))
	spec := filepath.Join(t.TempDir(), "socket.yaml")
	if err := os.WriteFile(spec, []byte(socketSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	const warning = `operator "lines" (socket) cannot replay its input`

	// sluice run, attached: the warning on stderr, the job runs to its end.
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", spec, "--param", "port="+port, "--param", "output="+out,
		"-D", "execution.checkpointing.interval=1 s")
	if code != 0 {
		t.Fatalf("sluice run: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "warning: job ") || !strings.Contains(stderr, warning) || !strings.Contains(stderr, "at most once") {
		t.Errorf("sluice run's stderr does not warn that the socket source cannot replay:\n%s", stderr)
	}
	if strings.Contains(stdout, warning) {
		t.Errorf("the warning went to stdout:\n%s", stdout)
	}
	if got := committedLines(t, out); strings.Join(got, ",") != "one,three,two" {
		t.Errorf("output %q, want the socket's three lines", got)
	}

	// The REST answer, and the JobManager's log naming the job.
	params := map[string]string{"port": port, "output": filepath.Join(t.TempDir(), "out2")}
	ans := postJob(t, c, socketSpec, params, map[string]string{"execution.checkpointing.interval": "1 s"})
	id, _ := ans["jobid"].(string)
	ws, _ := ans["warnings"].([]any)
	if id == "" || len(ws) != 1 || !strings.Contains(fmt.Sprint(ws[0]), warning) {
		t.Errorf("POST /jobs answered %v, want the job id and one warning about operator lines", ans)
	}
	c.waitFor(30*time.Second, "the JobManager to log the job's warning", func() bool {
		for _, l := range strings.Split(c.jm.Log(), "\n") {
			if strings.Contains(l, "job="+id) && strings.Contains(l, "level=WARN") && strings.Contains(l, "cannot replay its input") {
				return true
			}
		}
		return false
	})
	waitJobState(t, c, id, "FINISHED", 60*time.Second)

	// Without checkpointing: no warning anywhere.
	params["output"] = filepath.Join(t.TempDir(), "out3")
	ans = postJob(t, c, socketSpec, params, nil)
	if _, ok := ans["warnings"]; ok {
		t.Errorf("POST /jobs without checkpointing answered %v, want no warnings", ans)
	}
	id, _ = ans["jobid"].(string)
	waitJobState(t, c, id, "FINISHED", 60*time.Second)
	if strings.Contains(c.jm.Log(), "job="+id+" warning=") {
		t.Errorf("the JobManager logged a warning for job %s without checkpointing", id)
	}
}
