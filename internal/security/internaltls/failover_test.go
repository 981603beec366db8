package internaltls

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/ca"
	"github.com/sluice-dev/sluice/internal/transport"
)

// autoJobManager starts a JobManager's internal security in automatic mode
// with its CA in caDir, and its bootstrap service on a loopback port; stop
// ends the server.
func autoJobManager(t *testing.T, ctx context.Context, caDir string) (jm *JobManager, addr string, stop func()) {
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
	jm, err := SetupJobManager(ctx, cfg, log, t.TempDir())
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
	dirB := filepath.Join(t.TempDir(), "ca")
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ca.CertFile, ca.KeyFile} {
		b, err := os.ReadFile(filepath.Join(dirA, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	host, port, _ := net.SplitHostPort(addrA)
	cfg := config.New()
	for k, v := range map[string]string{
		"security.ssl.internal.auto":       "true",
		"jobmanager.rpc.address":           host,
		"jobmanager.rpc.port":              port,
		"taskmanager.registration.timeout": "10 s",
	} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tm, err := SetupTaskManager(ctx, cfg, log, "tm-1", a.JoinToken.String(), func() string { return "tm-1" })
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
