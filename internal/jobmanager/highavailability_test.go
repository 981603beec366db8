package jobmanager

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/ha"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// memLeadership is a high-availability store in memory, shared by the
// JobManagers of a test as the ConfigMaps are by real replicas.
type memLeadership struct {
	mu       sync.Mutex
	jobs     map[string][]byte
	ckpts    map[string]ha.CheckpointPointer
	results  map[string]ha.JobResult
	caReg    []byte
	leader   ha.LeaderInfo
	removed  []string
	putErr   error
	ctx      context.Context
	lose     context.CancelFunc
	resigned bool
}

func newMemLeadership() *memLeadership {
	ctx, cancel := context.WithCancel(context.Background())
	return &memLeadership{jobs: map[string][]byte{}, ckpts: map[string]ha.CheckpointPointer{}, results: map[string]ha.JobResult{}, ctx: ctx, lose: cancel}
}

// successor is a new term over the same store.
func (m *memLeadership) successor() *memLeadership {
	n := newMemLeadership()
	n.jobs, n.ckpts, n.results, n.caReg = m.jobs, m.ckpts, m.results, m.caReg
	return n
}

func (m *memLeadership) Context() context.Context    { return m.ctx }
func (m *memLeadership) Claim(context.Context) error { return nil }
func (m *memLeadership) PublishLeader(_ context.Context, info ha.LeaderInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leader = info
	return nil
}
func (m *memLeadership) PutJob(_ context.Context, id string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.putErr != nil {
		return m.putErr
	}
	m.jobs[id] = data
	return nil
}
func (m *memLeadership) RemoveJob(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.jobs, id)
	m.removed = append(m.removed, id)
	return nil
}
func (m *memLeadership) Jobs(context.Context) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range m.jobs {
		out[k] = v
	}
	return out, nil
}
func (m *memLeadership) PutCheckpoint(_ context.Context, job string, cp ha.CheckpointPointer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ckpts[job] = cp
	return nil
}
func (m *memLeadership) LatestCheckpoint(_ context.Context, job string) (ha.CheckpointPointer, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp, ok := m.ckpts[job]
	return cp, ok, nil
}
func (m *memLeadership) PutJobResult(_ context.Context, r ha.JobResult) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results[r.ID] = r
	delete(m.jobs, r.ID)
	delete(m.ckpts, r.ID)
	m.removed = append(m.removed, r.ID)
	return nil
}
func (m *memLeadership) JobResults(context.Context) (map[string]ha.JobResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]ha.JobResult{}
	for k, v := range m.results {
		out[k] = v
	}
	return out, nil
}
func (m *memLeadership) PutCARegistry(_ context.Context, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.caReg = data
	return nil
}
func (m *memLeadership) CARegistry(context.Context) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.caReg, m.caReg != nil, nil
}
func (m *memLeadership) Resign() { m.mu.Lock(); m.resigned = true; m.mu.Unlock(); m.lose() }

var _ ha.Leadership = (*memLeadership)(nil)

func newHAJM(t *testing.T, l ha.Leadership) *JobManager {
	t.Helper()
	cfg := config.New()
	for k, v := range map[string]string{"rest.port": "0", "jobmanager.rpc.port": "0", "slot.request.timeout": "10 min"} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	jm, err := New(Options{Config: cfg, WorkDir: t.TempDir(), HA: l})
	if err != nil {
		t.Fatal(err)
	}
	return jm
}

const haSpec = `name: ha
operators:
  - name: gen
    type: generator
    count: 10
  - name: out
    type: print
    input: gen
`

// A leader publishes its address and stores each submission before it
// runs; a store that fails refuses the submission; a successor over the
// same store runs the job again under its id; a JobManager that loses
// leadership stops without removing its jobs from the store.
func TestHighAvailabilityJobStore(t *testing.T) {
	l := newMemLeadership()
	jm := newHAJM(t, l)
	errc := make(chan error, 1)
	go func() { errc <- jm.Run(context.Background()) }()
	select {
	case <-jm.Ready():
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the JobManager did not start")
	}
	if l.leader.RPCAddress != jm.RPCAddress() || l.leader.RESTAddress != jm.RESTAddress() {
		t.Fatalf("published %+v, the JobManager listens on %s and %s", l.leader, jm.RPCAddress(), jm.RESTAddress())
	}
	id, err := jm.Submit(Submission{Spec: []byte(haSpec), Parallelism: 2, Config: map[string]string{"parallelism.default": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	var rec haJob
	if err := json.Unmarshal(l.jobs[id], &rec); err != nil || rec.ID != id || string(rec.Spec) != haSpec || rec.Parallelism != 2 {
		t.Fatalf("stored %q (%v)", l.jobs[id], err)
	}
	l.mu.Lock()
	l.putErr = errors.New("not the leader")
	l.mu.Unlock()
	if _, err := jm.Submit(Submission{Spec: []byte(haSpec)}); err == nil || !strings.Contains(err.Error(), "store the job for high availability") {
		t.Fatalf("submission with a failing store: %v", err)
	}
	jm.mu.Lock()
	n := len(jm.jobs)
	jm.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d jobs registered; the unstored one must not be", n)
	}
	// Leadership lost: Run ends with an error naming it, and the waiting
	// job stays stored for the next leader.
	l.lose()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "lost its leadership") {
			t.Fatalf("Run after losing leadership: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after leadership was lost")
	}
	if _, ok := l.jobs[id]; !ok || len(l.removed) != 0 {
		t.Fatalf("the job left the store when the JobManager stopped leading (removed %v)", l.removed)
	}
	// The successor recovers it under the same id.
	next := l.successor()
	jm2 := newHAJM(t, next)
	stop := runTestJM(t, jm2)
	defer stop()
	jm2.mu.Lock()
	j := jm2.jobs[id]
	jm2.mu.Unlock()
	if j == nil || j.parallelism != 2 || string(j.spec) != haSpec {
		t.Fatalf("the successor did not recover job %s: %+v", id, j)
	}
	// A job that ends for good leaves the store.
	if err := jm2.Cancel(id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		next.mu.Lock()
		_, stored := next.jobs[id]
		next.mu.Unlock()
		if !stored {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a cancelled job stayed in the high-availability store")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An application cluster's job runs once. Its end is recorded (the
// JobResultStore) before the job is forgotten, so a successor — started
// by the Deployment because the leader died after the job ended but
// before it deleted the Deployment — does not submit it again, and one
// that finds the job still stored next to its result does not recover it.
// Before, the successor ran the finished job a second time.
func TestApplicationJobNotRunAgain(t *testing.T) {
	const app = "app1"
	l := newMemLeadership()
	jm := newHAJM(t, l)
	stop := runTestJM(t, jm)
	if err := jm.SubmitApplication(Submission{Spec: []byte(haSpec), Parallelism: 1}, app); err != nil {
		t.Fatal(err)
	}
	if err := jm.Cancel(app); err != nil { // no TaskManager: it ends here
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := jm.WaitResultRecorded(wctx, app); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	r, ok := l.results[app]
	_, stored := l.jobs[app]
	l.mu.Unlock()
	if !ok || stored || r.State != string(Canceled) {
		t.Fatalf("after the result was recorded: result %+v (%v), still stored %v", r, ok, stored)
	}
	stop()

	// The successor: the application submits its job again at start.
	next := l.successor()
	jm2 := newHAJM(t, next)
	defer runTestJM(t, jm2)()
	if err := jm2.SubmitApplication(Submission{Spec: []byte(haSpec), Parallelism: 1}, app); err != nil {
		t.Fatal(err)
	}
	jm2.mu.Lock()
	_, running := jm2.jobs[app]
	jm2.mu.Unlock()
	if running {
		t.Fatal("the successor ran the ended application job again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, _, err := jm2.Wait(ctx, app); err != nil || st != Canceled {
		t.Fatalf("Wait on the ended job under the successor: %q, %v", st, err)
	}

	// The leader died between recording the result and forgetting the
	// job: the successor cleans up and does not recover it.
	crashed := newMemLeadership()
	data, _ := json.Marshal(haJob{ID: "app2", Spec: []byte(haSpec), Parallelism: 1})
	crashed.jobs["app2"] = data
	crashed.results["app2"] = ha.JobResult{ID: "app2", State: string(Finished)}
	jm3 := newHAJM(t, crashed)
	defer runTestJM(t, jm3)()
	jm3.mu.Lock()
	_, recovered := jm3.jobs["app2"]
	jm3.mu.Unlock()
	crashed.mu.Lock()
	_, stillStored := crashed.jobs["app2"]
	crashed.mu.Unlock()
	if recovered || stillStored {
		t.Fatalf("a job with a recorded result: recovered %v, still stored %v", recovered, stillStored)
	}
}

// A job whose delegation tokens the client shipped (kinit-only) cannot run under a successor,
// which never gets the tokens: it ends FAILED with the reason, recorded once, and is not
// resubmitted without them.
func TestShippedTokenJobNotRecovered(t *testing.T) {
	l := newMemLeadership()
	rec, err := json.Marshal(haJob{ID: "kinit1", Spec: []byte(haSpec), Parallelism: 1, ShippedTokens: []string{"kafka"}, Submitted: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	l.jobs["kinit1"] = rec
	jm := newHAJM(t, l)
	defer runTestJM(t, jm)()
	l.mu.Lock()
	r, ok := l.results["kinit1"]
	l.mu.Unlock()
	if !ok || r.State != string(Failed) || !strings.Contains(r.Cause, "kafka delegation tokens were shipped by the client") || !strings.Contains(r.Cause, "sluice run --kerberos") {
		t.Fatalf("result %+v (%v), want FAILED naming the shipped kafka tokens and what to do", r, ok)
	}
	jm.mu.Lock()
	_, running := jm.jobs["kinit1"]
	jm.mu.Unlock()
	if running {
		t.Fatal("the job was resubmitted without its tokens")
	}
	if got := shippedServices([]credentials.Token{{Service: "postgres", Secret: "x"}, {Service: "kafka"}, {Service: "kafka"}}); strings.Join(got, ",") != "kafka,postgres" {
		t.Errorf("shippedServices = %v", got)
	}
}
