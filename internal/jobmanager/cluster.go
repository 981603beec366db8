package jobmanager

import (
	"context"
	"crypto/x509"
	"fmt"
	"sort"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
)

// taskManager is a registered TaskManager. Guarded by JobManager.mu.
type taskManager struct {
	id          string
	rpcAddr     string
	dataAddr    string
	metricsAddr string
	hostname    string
	slots       int
	free        int
	registered  time.Time
	lastBeat    time.Time
	bytesSent   int64
	bytesRecv   int64
	// process is what the TaskManager's last heartbeat said of its process
	// and machine; nil before the first.
	process *controlpb.ProcessStats
	conn    *grpc.ClientConn
	client  controlpb.TaskManagerClient
	// instance is the registering process's random instance id; cert
	// is the certificate it registered with (nil without TLS).
	instance string
	cert     *x509.Certificate
}

// liveLocked reports whether tm still counts as alive: it heartbeated
// within heartbeat.timeout. Call with mu held.
func (jm *JobManager) liveLocked(tm *taskManager, now time.Time) bool {
	return now.Sub(tm.lastBeat) <= jm.hbTimeout
}

// TaskManagerLive reports whether TaskManager id is registered and alive;
// internal security refuses joins for such an id.
func (jm *JobManager) TaskManagerLive(id string) bool {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	tm, ok := jm.tms[id]
	return ok && jm.liveLocked(tm, time.Now())
}

// peerCertificate returns the verified client certificate of an RPC, or nil.
func peerCertificate(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
		return info.State.PeerCertificates[0]
	}
	return nil
}

// rpcServer implements the JobManager control service.
type rpcServer struct {
	controlpb.UnimplementedJobManagerServer
	jm *JobManager
}

func (s *rpcServer) RegisterTaskManager(ctx context.Context, req *controlpb.RegisterRequest) (*controlpb.RegisterResponse, error) {
	jm := s.jm
	if req.TaskmanagerId == "" || req.RpcAddress == "" || req.DataAddress == "" {
		return nil, fmt.Errorf("registration refused: taskmanager id, rpc address and data address are required")
	}
	if req.Slots < 1 || req.Slots > 4096 {
		return nil, fmt.Errorf("registration refused: %d slots: want 1..4096", req.Slots)
	}
	conn, err := grpc.NewClient(req.RpcAddress, jm.sec.GRPCDialOptions()...)
	if err != nil {
		return nil, fmt.Errorf("registration refused: rpc address %q: %w", req.RpcAddress, err)
	}
	now := time.Now()
	jm.mu.Lock()
	if old, ok := jm.tms[req.TaskmanagerId]; ok {
		// The same process registering again (it lost us for a moment)
		// has cancelled its tasks: replace its registration. Another
		// process must not take a live TaskManager's id, however it
		// authenticated (join token, its own or a shared certificate):
		// the live one keeps its slots and tasks.
		same := req.InstanceId != "" && req.InstanceId == old.instance
		if !same && jm.liveLocked(old, now) {
			jm.mu.Unlock()
			conn.Close()
			jm.log.Warn("registration refused: taskmanager id already live", "taskmanager", req.TaskmanagerId,
				"live-rpc", old.rpcAddr, "live-host", old.hostname, "refused-rpc", req.RpcAddress, "refused-host", req.Hostname)
			return nil, status.Error(codes.AlreadyExists, internaltls.AlreadyLiveMessage(req.TaskmanagerId))
		}
		reason := "taskmanager registered again"
		if !same {
			reason = fmt.Sprintf("taskmanager %s was replaced by a new process after its heartbeats stopped", old.id)
		}
		jm.removeTMLocked(old, reason)
	}
	jm.tms[req.TaskmanagerId] = &taskManager{
		id: req.TaskmanagerId, rpcAddr: req.RpcAddress, dataAddr: req.DataAddress,
		metricsAddr: req.MetricsAddress, hostname: req.Hostname,
		slots: int(req.Slots), free: int(req.Slots), registered: now, lastBeat: now,
		conn: conn, client: controlpb.NewTaskManagerClient(conn),
		instance: req.InstanceId, cert: peerCertificate(ctx),
	}
	jm.signalSlots()
	jm.mu.Unlock()
	jm.log.Info("taskmanager registered", "taskmanager", req.TaskmanagerId, "rpc", req.RpcAddress, "data", req.DataAddress, "slots", req.Slots)
	return &controlpb.RegisterResponse{
		ClusterId:           jm.clusterID,
		HeartbeatIntervalMs: jm.hbInterval.Milliseconds(),
		HeartbeatTimeoutMs:  jm.hbTimeout.Milliseconds(),
		BlobAddress:         jm.blobAddr,
	}, nil
}

func (s *rpcServer) Heartbeat(ctx context.Context, req *controlpb.HeartbeatRequest) (*controlpb.HeartbeatResponse, error) {
	jm := s.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	tm, ok := jm.tms[req.TaskmanagerId]
	if !ok || (tm.instance != "" && req.InstanceId != tm.instance) {
		// Unknown, or another process than the one registered under
		// this id: it does not keep that registration alive.
		return &controlpb.HeartbeatResponse{Known: false}, nil
	}
	tm.lastBeat = time.Now()
	tm.bytesSent, tm.bytesRecv = req.BytesSent, req.BytesReceived
	if req.Process != nil {
		tm.process = req.Process
	}
	for _, m := range req.Tasks {
		jm.applyMetricsLocked(m)
	}
	return &controlpb.HeartbeatResponse{Known: true}, nil
}

func (jm *JobManager) applyMetricsLocked(m *controlpb.TaskMetrics) {
	if m == nil {
		return
	}
	j, ok := jm.jobs[m.JobId]
	if !ok || int(m.Attempt) != j.attempt {
		return
	}
	t, ok := j.tasks[taskKey{int(m.Vertex), int(m.Subtask)}]
	if !ok {
		return
	}
	t.metrics = taskMetrics{readRecords: m.ReadRecords, readBytes: m.ReadBytes, writeRecords: m.WriteRecords, writeBytes: m.WriteBytes,
		backPressuredMS: m.BackPressuredMs, alignmentNS: m.CheckpointAlignmentNs,
		inWM: m.CurrentInputWatermark, outWM: m.CurrentOutputWatermark, hasInWM: m.HasInputWatermark, hasOutWM: m.HasOutputWatermark,
		lateDropped: m.NumLateRecordsDropped, idleMS: m.IdleMs}
	t.addSample(time.Now(), t.metrics, jm.pressureWindow())
}

func (s *rpcServer) UpdateTaskState(ctx context.Context, u *controlpb.TaskStateUpdate) (*controlpb.Ack, error) {
	s.jm.taskStateChanged(u)
	return &controlpb.Ack{}, nil
}

// monitorHeartbeats declares TaskManagers lost when they miss
// heartbeat.timeout, failing the tasks they ran.
func (jm *JobManager) monitorHeartbeats(ctx context.Context) {
	defer jm.bg.Done()
	period := jm.hbInterval / 2
	if period > time.Second || period <= 0 {
		period = time.Second
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			jm.mu.Lock()
			for _, tm := range jm.tms {
				if since := now.Sub(tm.lastBeat); since > jm.hbTimeout {
					reason := fmt.Sprintf("taskmanager %s (%s) lost: no heartbeat for %s (heartbeat.timeout %s)", tm.id, tm.rpcAddr, since.Round(time.Millisecond), jm.hbTimeout)
					jm.log.Warn("taskmanager lost", "taskmanager", tm.id, "address", tm.rpcAddr, "silent-for", since.Round(time.Millisecond), "heartbeat.timeout", jm.hbTimeout)
					jm.removeTMLocked(tm, reason)
				}
			}
			jm.mu.Unlock()
		}
	}
}

// removeTMLocked forgets a TaskManager and fails every job attempt that had
// tasks on it.
func (jm *JobManager) removeTMLocked(tm *taskManager, reason string) {
	delete(jm.tms, tm.id)
	if !jm.spawn(func() { tm.conn.Close() }) {
		tm.conn.Close()
	}
	for _, j := range jm.jobs {
		if j.state.Terminal() {
			continue
		}
		delete(j.slots, tm.id)
		hit := false
		for _, t := range j.tasks {
			if t.tm == tm.id && !taskTerminal(t.state) {
				t.state, t.err, t.end = TaskFailed, reason, time.Now()
				hit = true
			}
		}
		if hit {
			jm.taskFailedLocked(j, reason)
		}
	}
}

// unreachableLocked declares a TaskManager lost when a call to it failed
// because nothing answers at its address: waiting for the heartbeat timeout
// would only spend restart attempts on a dead process.
func (jm *JobManager) unreachableLocked(tm *taskManager, err error) {
	if status.Code(err) != codes.Unavailable {
		return
	}
	if cur, ok := jm.tms[tm.id]; !ok || cur != tm {
		return
	}
	reason := fmt.Sprintf("taskmanager %s (%s) lost: unreachable: %v", tm.id, tm.rpcAddr, err)
	jm.log.Warn("taskmanager lost", "taskmanager", tm.id, "address", tm.rpcAddr, "reason", "unreachable", "err", err)
	jm.removeTMLocked(tm, reason)
}

// sortedTMs returns the registered TaskManagers by id. Call with mu held.
func (jm *JobManager) sortedTMs() []*taskManager {
	out := make([]*taskManager, 0, len(jm.tms))
	for _, tm := range jm.tms {
		out = append(out, tm)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].id < out[b].id })
	return out
}

// WaitForTaskManagers blocks until n TaskManagers are registered.
func (jm *JobManager) WaitForTaskManagers(ctx context.Context, n int) error {
	for {
		jm.mu.Lock()
		have, wait := len(jm.tms), jm.slotFreed
		jm.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d taskmanagers (have %d): %w", n, have, ctx.Err())
		case <-wait:
		case <-time.After(100 * time.Millisecond):
		}
	}
}
