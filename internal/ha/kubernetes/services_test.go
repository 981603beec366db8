package kubernetes

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluice-dev/sluice/internal/ha"
)

func testSettings(t *testing.T) ha.Settings {
	return ha.Settings{
		Type: ha.Kubernetes, StorageDir: t.TempDir(), ClusterID: "wordcount", Namespace: "jobs",
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond,
	}
}

func campaign(t *testing.T, s *Services, id string) ha.Leadership {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := s.Campaign(ctx, id)
	if err != nil {
		t.Fatalf("campaign %s: %v", id, err)
	}
	t.Cleanup(l.Resign)
	return l
}

func TestLeaderPublishesAndStoresJobs(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	set := testSettings(t)
	s, err := New(client, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Leader(ctx); err != nil || ok {
		t.Fatalf("Leader before any election = %v, %v; want none", ok, err)
	}
	l := campaign(t, s, "jm-a")
	if err := l.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishLeader(ctx, ha.LeaderInfo{RPCAddress: "10.0.0.1:6123", RESTAddress: "10.0.0.1:8081"}); err != nil {
		t.Fatal(err)
	}
	info, ok, err := s.Leader(ctx)
	if err != nil || !ok || info.RPCAddress != "10.0.0.1:6123" || info.Identity != "jm-a" {
		t.Fatalf("Leader = %+v, %v, %v", info, ok, err)
	}
	if err := l.PutJob(ctx, "abc123", []byte(`{"spec":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.PutCheckpoint(ctx, "abc123", ha.CheckpointPointer{ID: 3, Path: "/ckpt/abc123/chk-3"}); err != nil {
		t.Fatal(err)
	}
	if err := l.PutCheckpoint(ctx, "abc123", ha.CheckpointPointer{ID: 4, Path: "/ckpt/abc123/chk-4"}); err != nil {
		t.Fatal(err)
	}
	if err := l.PutCheckpoint(ctx, "abc123", ha.CheckpointPointer{ID: 2, Path: "/ckpt/abc123/chk-2"}); err == nil {
		t.Fatal("a pointer to an older checkpoint was accepted")
	}
	jobs, err := l.Jobs(ctx)
	if err != nil || string(jobs["abc123"]) != `{"spec":"x"}` || len(jobs) != 1 {
		t.Fatalf("Jobs = %q, %v", jobs, err)
	}
	cp, ok, err := l.LatestCheckpoint(ctx, "abc123")
	if err != nil || !ok || cp.ID != 4 || cp.Path != "/ckpt/abc123/chk-4" {
		t.Fatalf("LatestCheckpoint = %+v, %v, %v", cp, ok, err)
	}
	// Only the latest pointer is kept.
	cm, err := client.CoreV1().ConfigMaps("jobs").Get(ctx, JobConfigMapName("wordcount", "abc123"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != 1 || cm.Data["checkpointID-0000000000000000004"] == "" {
		t.Fatalf("job ConfigMap data = %v", cm.Data)
	}
	if cm.Labels[LabelApp] != "wordcount" || cm.Labels[LabelConfigMapType] != ConfigMapTypeHA || !strings.Contains(cm.Annotations[LeaderAnnotation], `"jm-a"`) {
		t.Fatalf("job ConfigMap labels %v annotations %v", cm.Labels, cm.Annotations)
	}
	// The large state is a private file under the storage dir.
	fi, err := os.Stat(s.files.path("abc123"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("job file: %v, %v", fi, err)
	}
	if err := l.RemoveJob(ctx, "abc123"); err != nil {
		t.Fatal(err)
	}
	if jobs, err := l.Jobs(ctx); err != nil || len(jobs) != 0 {
		t.Fatalf("Jobs after RemoveJob = %v, %v", jobs, err)
	}
	if _, ok, _ := l.LatestCheckpoint(ctx, "abc123"); ok {
		t.Fatal("the checkpoint pointer outlived its job")
	}
	if _, err := os.Stat(s.files.path("abc123")); !os.IsNotExist(err) {
		t.Fatalf("job file after RemoveJob: %v", err)
	}
}

// A leader that lost its Lease must not overwrite what its successor
// recovered. The deposed leader here is one that has not noticed (a paused
// process whose elector still believes it leads): after the successor
// claimed the ConfigMaps, every write it makes fails with ErrNotLeader,
// names the new leader and changes nothing.
func TestDeposedLeaderCannotWrite(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	set := testSettings(t)
	sa, _ := New(client, set, nil)
	a := campaign(t, sa, "jm-a")
	if err := a.PutJob(ctx, "job1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := a.PutCheckpoint(ctx, "job1", ha.CheckpointPointer{ID: 5, Path: "/c/chk-5"}); err != nil {
		t.Fatal(err)
	}
	stale := &leadership{s: sa, id: "jm-a", ctx: context.Background(), isLeader: func() bool { return true }}
	a.Resign()
	sb, _ := New(client, set, nil)
	b := campaign(t, sb, "jm-b")
	if err := b.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := b.LatestCheckpoint(ctx, "job1")
	if err != nil || !ok || cp.ID != 5 {
		t.Fatalf("successor reads %+v, %v, %v", cp, ok, err)
	}
	for name, write := range map[string]func() error{
		"PutCheckpoint": func() error { return stale.PutCheckpoint(ctx, "job1", ha.CheckpointPointer{ID: 6, Path: "/c/chk-6"}) },
		"PutJob":        func() error { return stale.PutJob(ctx, "job2", []byte("two")) },
		"PublishLeader": func() error { return stale.PublishLeader(ctx, ha.LeaderInfo{RPCAddress: "old:1"}) },
		"RemoveJob":     func() error { return stale.RemoveJob(ctx, "job1") },
		"new job ConfigMap": func() error {
			return stale.PutCheckpoint(ctx, "job3", ha.CheckpointPointer{ID: 1, Path: "/c/chk-1"})
		},
	} {
		if err := write(); !errors.Is(err, ha.ErrNotLeader) {
			t.Errorf("%s by the deposed leader: err = %v, want ErrNotLeader", name, err)
		} else if !strings.Contains(err.Error(), "jm-b") {
			t.Errorf("%s: error %q does not name the new leader", name, err)
		}
	}
	if cp, _, _ := b.LatestCheckpoint(ctx, "job1"); cp.ID != 5 {
		t.Fatalf("the deposed leader moved the pointer to %d", cp.ID)
	}
	jobs, err := b.Jobs(ctx)
	if err != nil || len(jobs) != 1 || string(jobs["job1"]) != "one" {
		t.Fatalf("jobs after the deposed leader's writes: %q, %v", jobs, err)
	}
	if info, _, _ := sb.Leader(ctx); info.RPCAddress == "old:1" {
		t.Fatal("the deposed leader published its address")
	}
	// A leader that knows it lost refuses without asking.
	if err := a.PutCheckpoint(ctx, "job1", ha.CheckpointPointer{ID: 7}); !errors.Is(err, ha.ErrNotLeader) {
		t.Fatalf("write after Resign: %v", err)
	}
	// The successor writes.
	if err := b.PutCheckpoint(ctx, "job1", ha.CheckpointPointer{ID: 6, Path: "/c/chk-6"}); err != nil {
		t.Fatal(err)
	}
}

// A stored submission changed on the shared storage is refused at recovery.
func TestTamperedJobFileRefused(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	s, _ := New(client, testSettings(t), nil)
	l := campaign(t, s, "jm-a")
	if err := l.PutJob(ctx, "job1", []byte(`{"spec":"honest"}`)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.files.path("job1"), []byte(`{"spec":"evil"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Jobs(ctx); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("Jobs with a tampered file: %v", err)
	}
}

// Resign releases the Lease, so a standby leads at once rather than after
// the lease duration.
func TestResignHandsOver(t *testing.T) {
	client := fake.NewClientset()
	set := testSettings(t)
	set.LeaseDuration, set.RenewDeadline = time.Minute, 30*time.Second
	sa, _ := New(client, set, nil)
	a := campaign(t, sa, "jm-a")
	sb, _ := New(client, set, nil)
	got := make(chan ha.Leadership, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		l, err := sb.Campaign(ctx, "jm-b")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("the standby led while the leader held the Lease")
	case <-time.After(500 * time.Millisecond):
	}
	a.Resign()
	if a.Context().Err() == nil {
		t.Fatal("the leadership context outlived Resign")
	}
	select {
	case l := <-got:
		if l == nil {
			return
		}
		defer l.Resign()
	case <-time.After(10 * time.Second):
		t.Fatal("the standby did not take over after the leader resigned (well before the lease duration)")
	}
}

// Two JobManager replicas end up with one CA: the second writes the
// first's into its directory, and a restarted one gets it back.
func TestShareClusterCA(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	a, b := t.TempDir(), t.TempDir()
	if err := ShareClusterCA(ctx, client, "jobs", "wordcount", a); err != nil {
		t.Fatal(err)
	}
	if err := ShareClusterCA(ctx, client, "jobs", "wordcount", b); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "ca.key"} {
		x, _ := os.ReadFile(a + "/" + f)
		y, _ := os.ReadFile(b + "/" + f)
		if len(x) == 0 || string(x) != string(y) {
			t.Fatalf("%s differs between the replicas", f)
		}
	}
	if fi, err := os.Stat(b + "/ca.key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v %v", fi, err)
	}
	s, err := client.CoreV1().Secrets("jobs").Get(ctx, ClusterCASecretName("wordcount"), metav1.GetOptions{})
	if err != nil || len(s.Data["ca.key"]) == 0 {
		t.Fatalf("Secret: %v", err)
	}
}

// PutJobResult records the result and forgets the job in one update of the
// cluster ConfigMap (no reader sees the job without its result), then
// removes its checkpoint pointer and file; results are bounded; a deposed
// leader cannot record one.
func TestJobResultStore(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	set := testSettings(t)
	s, _ := New(client, set, nil)
	l := campaign(t, s, "jm-a")
	if err := l.PutJob(ctx, "job1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := l.PutCheckpoint(ctx, "job1", ha.CheckpointPointer{ID: 3, Path: "/c/chk-3"}); err != nil {
		t.Fatal(err)
	}
	ended := time.Now().UTC().Truncate(time.Second)
	if err := l.PutJobResult(ctx, ha.JobResult{ID: "job1", State: "FINISHED", Ended: ended}); err != nil {
		t.Fatal(err)
	}
	cm, err := client.CoreV1().ConfigMaps("jobs").Get(ctx, ClusterConfigMapName("wordcount"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.Data[jobKeyPrefix+"job1"]; ok || !strings.Contains(cm.Data[jobResultPrefix+"job1"], `"state":"FINISHED"`) {
		t.Fatalf("cluster ConfigMap after the result: %v", cm.Data)
	}
	if _, ok, _ := l.LatestCheckpoint(ctx, "job1"); ok {
		t.Fatal("the checkpoint pointer outlived the recorded result")
	}
	if _, err := os.Stat(s.files.path("job1")); !os.IsNotExist(err) {
		t.Fatalf("job file after the result: %v", err)
	}
	res, err := l.JobResults(ctx)
	if err != nil || len(res) != 1 || res["job1"].State != "FINISHED" || !res["job1"].Ended.Equal(ended) {
		t.Fatalf("JobResults = %+v, %v", res, err)
	}
	// Bounded: the oldest results go.
	for i := range maxJobResults + 5 {
		id := "x" + strconv.Itoa(i)
		if err := l.PutJobResult(ctx, ha.JobResult{ID: id, State: "CANCELED", Ended: ended.Add(time.Duration(i+1) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	res, _ = l.JobResults(ctx)
	if _, ok := res["job1"]; len(res) != maxJobResults || ok {
		t.Fatalf("%d results kept (job1 kept: %v), want the newest %d", len(res), ok, maxJobResults)
	}
	// A deposed leader cannot record a result.
	stale := &leadership{s: s, id: "jm-a", ctx: context.Background(), isLeader: func() bool { return true }}
	l.Resign()
	sb, _ := New(client, set, nil)
	b := campaign(t, sb, "jm-b")
	if err := b.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stale.PutJobResult(ctx, ha.JobResult{ID: "job9", State: "FAILED"}); !errors.Is(err, ha.ErrNotLeader) {
		t.Fatalf("result by the deposed leader: %v", err)
	}
}
