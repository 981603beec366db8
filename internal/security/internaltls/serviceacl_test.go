package internaltls

import (
	"testing"

	"google.golang.org/grpc"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
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
