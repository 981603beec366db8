package internaltls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/ca"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

// TestServiceACLCoversEveryMethod: a new RPC cannot be added without
// deciding who may call it.
func TestServiceACLCoversEveryMethod(t *testing.T) {
	for _, sd := range []grpc.ServiceDesc{controlpb.JobManager_ServiceDesc, controlpb.TaskManager_ServiceDesc, controlpb.Bootstrap_ServiceDesc} {
		for _, m := range sd.Methods {
			full := "/" + sd.ServiceName + "/" + m.MethodName
			if roles, ok := ServiceACL[full]; !ok || len(roles) == 0 {
				t.Errorf("%s has no entry in ServiceACL", full)
			}
		}
		if len(sd.Streams) > 0 {
			t.Errorf("%s has streams: add them to ServiceACL and this test", sd.ServiceName)
		}
	}
}

// TestOnlyTheJobManagerReadsTaskManagerLogs: a TaskManager's log files are
// served to the JobManager's identity only; another TaskManager (or a
// stolen TaskManager certificate) is refused before the handler.
func TestOnlyTheJobManagerReadsTaskManagerLogs(t *testing.T) {
	authority, err := ca.New("", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	peerAs := func(role tlsconf.Role, id string) (context.Context, string) {
		kp, err := authority.IssueKeyPair(string(role), id, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(kp.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		ident, _, _ := tlsconf.IdentityOf(cert)
		return peer.NewContext(context.Background(), &peer.Peer{
			Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242},
			AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}},
		}), ident.ClusterID
	}
	tmCtx, cluster := peerAs(tlsconf.RoleTaskManager, "tm-b")
	jmCtx, _ := peerAs(tlsconf.RoleJobManager, "")
	for _, m := range []string{controlpb.TaskManager_ListLogs_FullMethodName, controlpb.TaskManager_ReadLog_FullMethodName} {
		if _, err := checkServiceACL(tmCtx, m, cluster); status.Code(err) != codes.PermissionDenied {
			t.Errorf("a TaskManager calls %s: %v, want PermissionDenied", m, err)
		}
		if _, err := checkServiceACL(jmCtx, m, cluster); err != nil {
			t.Errorf("the JobManager calls %s: %v", m, err)
		}
	}
}
