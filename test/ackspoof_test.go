package test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
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

// TestCheckpointCallsCannotSpeakForAnotherTaskManager: on a cluster where
// each TaskManager has its own certificate, a TaskManager (here: anyone
// holding tm-2's certificate) may not acknowledge or decline checkpoints,
// or report the end of input, for tasks deployed to tm-1, whether it names
// tm-1 (its certificate says tm-2) or itself (the task is not its own).
// Each call is refused before it reaches the coordinator and logged, and
// the job's checkpoints keep completing. Before, a call naming tm-1 inside
// its task reference was not checked against the certificate, so tm-2
// could decline (abort) every checkpoint of tm-1's tasks.
func TestCheckpointCallsCannotSpeakForAnotherTaskManager(t *testing.T) {
	dir := createCerts(t, "c1", "tm-1", "tm-2")
	c := startClusterWith(t, identitySpec(dir, filepath.Join(dir, "truststore.pem"), 1,
		"state.checkpoints.dir="+filepath.Join(t.TempDir(), "ckpt")))
	job := fmt.Sprintf(unboundedJob, "spoofed") + "config:\n  execution.checkpointing.interval: 1 s\n"
	spec := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(spec, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	id := runDetached(t, c, spec)
	waitCheckpoints(t, c, id, 1)

	cert := keyPair(t, filepath.Join(dir, "taskmanager-tm-2.pem"))
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", c.rpcPort), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, // the attacker does not care who answers
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	jm := controlpb.NewJobManagerClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, _, _, latest := checkpointCounts(c, id)
	next := int64(1)
	if done, ok := latest["completed"].(map[string]any); ok {
		n, _ := done["id"].(float64)
		next = int64(n) + 1
	}
	for _, tm := range []string{"tm-1", "tm-2"} {
		ref := &controlpb.TaskRef{TaskmanagerId: tm, JobId: id, Attempt: 0, Vertex: 0, Subtask: 0}
		for cp := next; cp < next+5; cp++ {
			_, err := jm.DeclineCheckpoint(ctx, &controlpb.DeclineCheckpointRequest{Task: ref, CheckpointId: cp, Reason: "forged"})
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("decline of checkpoint %d naming %s from tm-2's certificate: %v, want PermissionDenied", cp, tm, err)
			}
			_, err = jm.AcknowledgeCheckpoint(ctx, &controlpb.AcknowledgeCheckpointRequest{Task: ref, CheckpointId: cp, Finished: true})
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("acknowledgement of checkpoint %d naming %s from tm-2's certificate: %v, want PermissionDenied", cp, tm, err)
			}
		}
		if _, err := jm.ReportEndOfData(ctx, ref); status.Code(err) != codes.PermissionDenied {
			t.Errorf("end of data naming %s from tm-2's certificate: %v, want PermissionDenied", tm, err)
		}
	}
	c.waitFor(10*time.Second, "the refusals to be logged", func() bool {
		log := c.jm.Log()
		return strings.Contains(log, `may not act as taskmanager \"tm-1\"`) && strings.Contains(log, "checkpoint call refused")
	})
	// The job goes on: more checkpoints complete, none failed.
	done, _, _, _ := checkpointCounts(c, id)
	waitCheckpoints(t, c, id, done+2)
	if _, failed, _, _ := checkpointCounts(c, id); failed != 0 {
		t.Errorf("%v checkpoints failed after the forged calls", failed)
	}
	if s := c.jobState(id); s != "RUNNING" {
		t.Errorf("job %s after the forged calls, want RUNNING", s)
	}
}
