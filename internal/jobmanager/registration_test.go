package jobmanager

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// TestRegistrationOfALiveID: a second process cannot take a live
// TaskManager's id (the live one keeps its slots); the same process may
// register again (a transient disconnect); once the holder's heartbeats
// stopped for heartbeat.timeout, a new process may take the id (a
// restarted TaskManager). A heartbeat from another process does not keep
// the registration alive.
func TestRegistrationOfALiveID(t *testing.T) {
	jm, err := New(Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := &rpcServer{jm: jm}
	ctx := context.Background()
	reg := func(instance, rpc string) error {
		_, err := s.RegisterTaskManager(ctx, &controlpb.RegisterRequest{
			TaskmanagerId: "victim", RpcAddress: rpc, DataAddress: "127.0.0.1:1", Slots: 2, InstanceId: instance,
		})
		return err
	}
	if err := reg("process-a", "127.0.0.1:1001"); err != nil {
		t.Fatal(err)
	}
	jm.mu.Lock()
	jm.tms["victim"].free = 1 // a slot in use by a running job
	jm.mu.Unlock()

	err = reg("process-b", "127.0.0.1:1002")
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), `"victim"`) || !strings.Contains(err.Error(), "--id") {
		t.Fatalf("another process for a live id: %v, want AlreadyExists naming the id and --id", err)
	}
	jm.mu.Lock()
	if tm := jm.tms["victim"]; tm.rpcAddr != "127.0.0.1:1001" || tm.free != 1 {
		t.Errorf("the live TaskManager lost its registration: %+v", tm)
	}
	jm.mu.Unlock()
	if err := reg("", "127.0.0.1:1003"); status.Code(err) != codes.AlreadyExists {
		t.Errorf("a registration without instance id for a live id: %v, want AlreadyExists", err)
	}

	// Another process's heartbeat is not the victim's.
	if resp, err := s.Heartbeat(ctx, &controlpb.HeartbeatRequest{TaskmanagerId: "victim", InstanceId: "process-b"}); err != nil || resp.Known {
		t.Errorf("heartbeat of another process: known=%v err=%v, want unknown", resp.GetKnown(), err)
	}
	if resp, err := s.Heartbeat(ctx, &controlpb.HeartbeatRequest{TaskmanagerId: "victim", InstanceId: "process-a"}); err != nil || !resp.Known {
		t.Errorf("heartbeat of the registered process: known=%v err=%v", resp.GetKnown(), err)
	}

	// The same process again: accepted.
	if err := reg("process-a", "127.0.0.1:1001"); err != nil {
		t.Fatalf("the same process registering again: %v", err)
	}

	// The holder went silent past heartbeat.timeout: the id is free.
	jm.mu.Lock()
	jm.tms["victim"].lastBeat = time.Now().Add(-jm.hbTimeout - time.Second)
	jm.mu.Unlock()
	if jm.TaskManagerLive("victim") {
		t.Error("a silent TaskManager still counts as live")
	}
	if err := reg("process-c", "127.0.0.1:1004"); err != nil {
		t.Fatalf("a new process after the holder timed out: %v", err)
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if tm := jm.tms["victim"]; tm.instance != "process-c" {
		t.Errorf("registered instance %q, want process-c", tm.instance)
	}
}
