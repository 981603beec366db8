package internaltls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/security/ca"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// TestTaskManagerMayNotActForAnother: a TaskManager's certificate names
// one TaskManager, and every TaskManager id a call carries — at the top
// of the request or in a nested TaskRef (checkpoint acknowledgements,
// declines) — must be that one. Before, only a top-level taskmanager_id
// was checked, so tm-a could acknowledge or decline checkpoints for the
// tasks of tm-b.
func TestTaskManagerMayNotActForAnother(t *testing.T) {
	authority, err := ca.New("", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := authority.IssueKeyPair(string(tlsconf.RoleTaskManager), "tm-a", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	id, ok, err := tlsconf.IdentityOf(cert)
	if err != nil || !ok {
		t.Fatalf("identity of the issued certificate: %v %v", ok, err)
	}
	jm := &JobManager{ClusterID: id.ClusterID, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}},
	})
	ref := func(tm string) *controlpb.TaskRef {
		return &controlpb.TaskRef{TaskmanagerId: tm, JobId: "j1", Attempt: 1}
	}
	handled := false
	handler := func(context.Context, any) (any, error) { handled = true; return &controlpb.Ack{}, nil }
	for _, c := range []struct {
		method string
		req    func(tm string) any
	}{
		{controlpb.JobManager_AcknowledgeCheckpoint_FullMethodName, func(tm string) any {
			return &controlpb.AcknowledgeCheckpointRequest{Task: ref(tm), CheckpointId: 3, Finished: true}
		}},
		{controlpb.JobManager_DeclineCheckpoint_FullMethodName, func(tm string) any {
			return &controlpb.DeclineCheckpointRequest{Task: ref(tm), CheckpointId: 3, Reason: "forged"}
		}},
		{controlpb.JobManager_ReportEndOfData_FullMethodName, func(tm string) any { return ref(tm) }},
		{controlpb.JobManager_UpdateTaskState_FullMethodName, func(tm string) any {
			return &controlpb.TaskStateUpdate{TaskmanagerId: tm, JobId: "j1"}
		}},
	} {
		for _, tm := range []string{"tm-b", ""} {
			handled = false
			_, err := jm.authorizeCall(ctx, c.req(tm), &grpc.UnaryServerInfo{FullMethod: c.method}, handler)
			if status.Code(err) != codes.PermissionDenied || handled {
				t.Errorf("%s naming taskmanager %q from tm-a's certificate: err %v, handled %v; want PermissionDenied before the handler", c.method, tm, err, handled)
			}
		}
		handled = false
		if _, err := jm.authorizeCall(ctx, c.req("tm-a"), &grpc.UnaryServerInfo{FullMethod: c.method}, handler); err != nil || !handled {
			t.Errorf("%s naming its own taskmanager: err %v, handled %v", c.method, err, handled)
		}
	}
}
