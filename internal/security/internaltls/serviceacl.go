package internaltls

import (
	"context"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

// Anyone marks a method callable without a certificate (the automatic-mode
// join, which checks its token itself).
const Anyone tlsconf.Role = "anyone"

// ServiceACL is service-level authorization of the control plane (Hadoop's
// model): which process identities may call which RPC. The TLS handshake
// already admits only the roles a server accepts; this table decides per
// method, and a test checks that every method of every service is in it.
var ServiceACL = map[string][]tlsconf.Role{
	controlpb.JobManager_RegisterTaskManager_FullMethodName:   {tlsconf.RoleTaskManager},
	controlpb.JobManager_Heartbeat_FullMethodName:             {tlsconf.RoleTaskManager},
	controlpb.JobManager_UpdateTaskState_FullMethodName:       {tlsconf.RoleTaskManager},
	controlpb.JobManager_ReportOutput_FullMethodName:          {tlsconf.RoleTaskManager},
	controlpb.JobManager_AcknowledgeCheckpoint_FullMethodName: {tlsconf.RoleTaskManager},
	controlpb.JobManager_DeclineCheckpoint_FullMethodName:     {tlsconf.RoleTaskManager},
	controlpb.JobManager_ReportEndOfData_FullMethodName:       {tlsconf.RoleTaskManager},
	controlpb.TaskManager_TriggerCheckpoint_FullMethodName:    {tlsconf.RoleJobManager},
	controlpb.TaskManager_NotifyCheckpoint_FullMethodName:     {tlsconf.RoleJobManager},
	controlpb.TaskManager_DeployTask_FullMethodName:           {tlsconf.RoleJobManager},
	controlpb.TaskManager_CancelJob_FullMethodName:            {tlsconf.RoleJobManager},
	controlpb.TaskManager_ListLogs_FullMethodName:             {tlsconf.RoleJobManager},
	controlpb.TaskManager_ReadLog_FullMethodName:              {tlsconf.RoleJobManager},
	controlpb.Bootstrap_Join_FullMethodName:                   {Anyone},
	controlpb.Bootstrap_Renew_FullMethodName:                  {tlsconf.RoleTaskManager},
}

// checkServiceACL refuses a call whose caller's role the table does not
// list for the method. clusterID "" means certificates carry no identities
// (Flink's shared certificate): then there is nothing to check.
func checkServiceACL(ctx context.Context, method, clusterID string) (tlsconf.Identity, error) {
	allowed, ok := ServiceACL[method]
	if !ok {
		return tlsconf.Identity{}, status.Errorf(codes.PermissionDenied, "%s is not in the service ACL", method)
	}
	if slices.Contains(allowed, Anyone) || clusterID == "" {
		return tlsconf.Identity{}, nil
	}
	id, err := peerIdentity(ctx)
	if err != nil {
		return id, err
	}
	if id.ClusterID != clusterID || !slices.Contains(allowed, id.Role) {
		return id, status.Errorf(codes.PermissionDenied, "%s may not call %s (allowed: %v of cluster %s)", id, method, allowed, clusterID)
	}
	return id, nil
}

// TaskManagerServerOptions returns the interceptor that applies the
// service ACL on a TaskManager's RPC server.
func (tm *TaskManager) ServerOptions() []grpc.ServerOption {
	if tm.Mode == Off || !tm.Security.Secured(transportRPC) {
		return nil
	}
	cluster := ""
	if id, ok := tm.store.Identity(); ok {
		cluster = id.ClusterID
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if _, err := checkServiceACL(ctx, info.FullMethod, cluster); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	})}
}
