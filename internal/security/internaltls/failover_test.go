package internaltls

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/ha"
	hakube "github.com/sluice-dev/sluice/internal/ha/kubernetes"
	"github.com/sluice-dev/sluice/internal/security/ca"
	"github.com/sluice-dev/sluice/internal/transport"
)

// autoJobManager starts a JobManager's internal security in automatic mode
// with its CA in caDir, and its bootstrap service on a loopback port; stop
// ends the server.
func autoJobManager(t *testing.T, ctx context.Context, caDir string, options ...JobManagerOption) (jm *JobManager, addr string, stop func()) {
	t.Helper()
	cfg := config.New()
	for k, v := range map[string]string{
		"security.ssl.internal.auto":     "true",
		"security.ssl.internal.auto.dir": caDir,
		"jobmanager.rpc.address":         "127.0.0.1",
	} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	jm, err := SetupJobManager(ctx, cfg, log, t.TempDir(), options...)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := jm.Security.Listen(ctx, transport.RPC, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(append(jm.Security.GRPCServerOptions(), jm.ServerOptions()...)...)
	jm.Register(gs)
	go func() { _ = gs.Serve(lis) }() // owned by stop
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			gs.Stop()
		}
	}
	t.Cleanup(stop)
	return jm, lis.Addr().String(), stop
}

// A TaskManager renews its certificate with the JobManager that leads
// now, not with the one it joined: under high availability the replicas
// share the cluster CA (the <cluster-id>-cluster-ca Secret), and after a
// failover the one it joined is gone. Before, renewals went to the joined
// address for ever and failed until the TaskManager was restarted.
func TestRenewalFollowsTheLeader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dirA := filepath.Join(t.TempDir(), "ca")
	a, addrA, stopA := autoJobManager(t, ctx, dirA)
	// The standby gets the same CA (what ShareClusterCA does from the Secret).
	dirB := copyCA(t, dirA)
	tm, err := joinAt(t, ctx, addrA, "tm-1", a.JoinToken.String())
	if err != nil {
		t.Fatal(err)
	}
	joinedSerial := leafOf(tm.store).SerialNumber

	// Failover: the leader dies, the standby leads with the shared CA.
	stopA()
	b, addrB, _ := autoJobManager(t, ctx, dirB)
	if b.ClusterID != a.ClusterID {
		t.Fatalf("the standby's cluster id %s differs from %s", b.ClusterID, a.ClusterID)
	}
	leader := addrA
	tm.FollowLeader(func(context.Context) (string, error) { return leader, nil })
	if err := tm.renewOnce(ctx, addrA); err == nil {
		t.Fatal("renewal with the dead JobManager succeeded")
	}
	leader = addrB
	if err := tm.renewOnce(ctx, addrA); err != nil {
		t.Fatalf("renewal after the failover, with the new leader published: %v", err)
	}
	renewed := leafOf(tm.store)
	if renewed.SerialNumber.Cmp(joinedSerial) == 0 {
		t.Fatal("the certificate was not replaced")
	}
	if id, _ := tm.store.Identity(); id.ID != "tm-1" || id.ClusterID != a.ClusterID {
		t.Fatalf("renewed identity %+v", id)
	}
	if got := b.issued["tm-1"]; len(got) != 1 || got[0].Serial != renewed.SerialNumber.String() {
		t.Fatalf("the new leader's record of tm-1's certificates: %+v (want serial %s)", got, renewed.SerialNumber)
	}
}

// copyCA gives a standby the CA of dir, as ShareClusterCA does from the
// cluster-CA Secret.
func copyCA(t *testing.T, dir string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "ca")
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ca.CertFile, ca.KeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// joinAt joins a TaskManager with token at the JobManager at addr.
func joinAt(t *testing.T, ctx context.Context, addr, id, token string) (*TaskManager, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cfg := config.New()
	for k, v := range map[string]string{
		"security.ssl.internal.auto":       "true",
		"jobmanager.rpc.address":           host,
		"jobmanager.rpc.port":              port,
		"taskmanager.registration.timeout": "5 s",
	} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return SetupTaskManager(ctx, cfg, log, id, token, func() string { return id })
}

// campaignOn makes identity lead the cluster of set on client.
func campaignOn(t *testing.T, client *fake.Clientset, set ha.Settings, identity string) ha.Leadership {
	t.Helper()
	svc, err := hakube.New(client, set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := svc.Campaign(ctx, identity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Resign)
	if err := l.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

// Under Kubernetes high availability the CA's registry lives in the
// <cluster-id>-cluster-ca-registry Secret, written by the leader only: a
// TaskManager revoked under one leader stays revoked under the next (it
// can neither renew nor register), and a join token the previous leader
// handed out (to a pod that has not joined yet) still admits it. Before,
// the registry was in each JobManager's own directory, and the successor
// took the revoked certificate.
func TestRevocationSurvivesFailover(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset()
	set := ha.Settings{Type: ha.Kubernetes, StorageDir: t.TempDir(), ClusterID: "wc", Namespace: "jobs",
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond}

	la := campaignOn(t, client, set, "jm-a")
	dirA := filepath.Join(t.TempDir(), "ca")
	a, addrA, stopA := autoJobManager(t, ctx, dirA, WithSharedRegistry(la))
	revoked, err := joinAt(t, ctx, addrA, "tm-1", a.JoinToken.String())
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.NewJoinToken(time.Hour, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := joinAt(t, ctx, addrA, "tm-2", second.String())
	if err != nil {
		t.Fatal(err)
	}
	pending, err := a.NewJoinToken(time.Hour, 0, true) // in a pod not started yet
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeTaskManager("tm-1", nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	sec, err := client.CoreV1().Secrets("jobs").Get(ctx, hakube.CARegistrySecretName("wc"), metav1.GetOptions{})
	if err != nil || len(sec.Data["registry.json"]) == 0 {
		t.Fatalf("the registry Secret: %v", err)
	}
	if strings.Contains(string(sec.Data["registry.json"]), pending.Secret) {
		t.Fatal("the registry Secret holds a token's secret in clear")
	}

	// Failover: a dies, b leads with the shared CA and reads the registry.
	stopA()
	la.Resign()
	lb := campaignOn(t, client, set, "jm-b")
	b, addrB, _ := autoJobManager(t, ctx, copyCA(t, dirA), WithSharedRegistry(lb))
	for _, tm := range []*TaskManager{revoked, kept} {
		tm.FollowLeader(func(context.Context) (string, error) { return addrB, nil })
	}
	if err := revoked.renewOnce(ctx, addrA); err == nil {
		t.Fatal("the TaskManager revoked under the previous leader renewed its certificate with the new one")
	}
	if err := kept.renewOnce(ctx, addrA); err != nil {
		t.Fatalf("a TaskManager that was not revoked cannot renew with the new leader: %v", err)
	}
	if _, err := joinAt(t, ctx, addrB, "tm-3", pending.String()); err != nil {
		t.Fatalf("a join token of the previous leader is refused by the new one: %v", err)
	}
	if infos := b.JoinTokens(); len(infos) == 0 {
		t.Fatal("the new leader knows no join token records")
	}
	// The deposed leader cannot rewrite the registry.
	if err := la.PutCARegistry(ctx, []byte("{}")); !errors.Is(err, ha.ErrNotLeader) {
		t.Fatalf("the deposed leader's registry write: %v", err)
	}
}

// unreachableRegistry is a shared registry whose writes fail.
type unreachableRegistry struct{}

func (unreachableRegistry) CARegistry(context.Context) ([]byte, bool, error) { return nil, false, nil }
func (unreachableRegistry) PutCARegistry(context.Context, []byte) error {
	return errors.New("the API server is unreachable")
}

// A revocation that cannot be stored for the next leader still holds on
// this JobManager, and the administrator is told it was not stored.
func TestRevocationNotStoredIsReported(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, addr, _ := autoJobManager(t, ctx, filepath.Join(t.TempDir(), "ca"), WithSharedRegistry(unreachableRegistry{}))
	tm, err := joinAt(t, ctx, addr, "tm-1", a.JoinToken.String())
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.RevokeTaskManager("tm-1", nil, time.Time{})
	if !errors.Is(err, ErrRevocationNotStored) || !strings.Contains(err.Error(), "unreachable") || len(res.Serials) != 1 {
		t.Fatalf("revocation with an unreachable store: %+v, %v", res, err)
	}
	if err := tm.renewOnce(ctx, addr); err == nil {
		t.Fatal("the revoked TaskManager renewed its certificate")
	}
}
