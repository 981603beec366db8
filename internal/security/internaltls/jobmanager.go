package internaltls

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/config"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/ca"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
	"github.com/sluice-dev/sluice/internal/transport"
)

// JobManager is the internal security of a JobManager.
type JobManager struct {
	Mode     Mode
	Security *transport.Security
	// ClusterID is the cluster's id when certificates carry identities.
	ClusterID string
	// JoinToken is the token TaskManagers join with (automatic mode).
	// Never log it.
	JoinToken ca.Token
	// JoinTokenFile is where the token was written (automatic mode).
	JoinTokenFile string

	store  *tlsconf.Store
	ca     *ca.CA
	tokens *ca.Tokens
	ttl    time.Duration
	log    *slog.Logger
}

// SetupJobManager builds the JobManager's internal security from cfg.
// workDir holds the automatic CA when security.ssl.internal.auto.dir is
// unset.
func SetupJobManager(ctx context.Context, cfg *config.Config, log *slog.Logger, workDir string) (*JobManager, error) {
	mode := ModeOf(cfg)
	jm := &JobManager{Mode: mode, log: log, ttl: cfg.Duration("security.ssl.internal.auto.cert-ttl")}
	warnUnsecured(cfg, mode, log)
	switch mode {
	case Off:
		jm.Security = transport.Plaintext()
		return jm, nil
	case Configured:
		opts, err := tlsconf.InternalOptions(cfg)
		if err != nil {
			return nil, err
		}
		logNotes(opts, log)
		store, err := tlsconf.NewStore(opts, log)
		if err != nil {
			return nil, err
		}
		jm.store = store
		if id, ok := store.Identity(); ok {
			if id.Role != tlsconf.RoleJobManager {
				return nil, fmt.Errorf("security.ssl.internal.keystore: the certificate's identity is %s, but a JobManager needs spiffe://%s/jobmanager", id, id.ClusterID)
			}
			jm.ClusterID = id.ClusterID
		}
		runStore(ctx, store)
		jm.Security = build(cfg, store, jobManagerPolicy(false), log)
		log.Info("internal TLS on", "mode", "configured", "identities", jm.ClusterID != "", "cluster-id", jm.ClusterID)
		return jm, nil
	}
	// Automatic mode.
	dir := cfg.String("security.ssl.internal.auto.dir")
	if dir == "" {
		dir = filepath.Join(workDir, "cluster-ca")
	}
	authority, err := ca.LoadOrCreate(dir, "")
	if err != nil {
		return nil, fmt.Errorf("security.ssl.internal.auto.dir: %w", err)
	}
	jm.ca, jm.ClusterID = authority, authority.ClusterID
	cert, err := authority.IssueKeyPair(ca.RoleJobManager, "", jmHosts(cfg), jm.ttl)
	if err != nil {
		return nil, err
	}
	opts, err := tlsconf.InternalOptions(withoutKeystores(cfg))
	if err != nil {
		return nil, err
	}
	jm.store = tlsconf.NewStoreFromMaterial(cert, authority.Pool(), opts, log)
	jm.tokens = ca.NewTokens(authority)
	tok, err := jm.tokens.Create(cfg.Duration("security.cluster.join-token.ttl"))
	if err != nil {
		return nil, err
	}
	jm.JoinToken = tok
	jm.JoinTokenFile = filepath.Join(dir, "join-token")
	if err := ca.WriteTokenFile(jm.JoinTokenFile, tok); err != nil {
		return nil, err
	}
	jm.Security = build(cfg, jm.store, jobManagerPolicy(true), log)
	go jm.renewOwn(ctx)
	log.Info("internal TLS on (automatic cluster CA): rpc, data and blob connections are encrypted and mutually authenticated",
		"cluster-id", authority.ClusterID, "ca-dir", dir, "join-token-file", jm.JoinTokenFile, "join-token-expires", tok.Expires.Format(time.RFC3339))
	return jm, nil
}

// withoutKeystores lets automatic mode reuse the protocol and cipher
// settings of the configuration without its keystore keys.
func withoutKeystores(cfg *config.Config) *config.Config {
	c := cfg.Clone()
	for _, k := range []string{"security.ssl.internal.keystore", "security.ssl.internal.truststore", "security.ssl.internal.cert.fingerprint", "security.ssl.keystore", "security.ssl.truststore"} {
		_ = c.Set(k, "")
	}
	_ = c.Set("security.ssl.reload", "false")
	return c
}

func jmHosts(cfg *config.Config) []string {
	hosts := []string{"localhost", "127.0.0.1"}
	if h := cfg.String("jobmanager.rpc.address"); h != "" && h != "localhost" && h != "127.0.0.1" {
		hosts = append(hosts, h)
	}
	return hosts
}

// renewOwn re-issues the JobManager's own certificate before it expires.
func (jm *JobManager) renewOwn(ctx context.Context) {
	for {
		leaf := jm.store.Certificate().Leaf
		if leaf == nil {
			leaf, _ = x509.ParseCertificate(jm.store.Certificate().Certificate[0])
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(ca.RenewAt(leaf))):
		}
		cert, err := jm.ca.IssueKeyPair(ca.RoleJobManager, "", nil, jm.ttl)
		if err != nil {
			jm.log.Error("renew jobmanager certificate", "err", err)
			continue
		}
		jm.store.SetMaterial(cert, jm.ca.Pool())
		jm.log.Info("jobmanager certificate renewed", "expires", cert.Leaf.NotAfter)
	}
}

// ServerOptions returns the gRPC options the JobManager's RPC server needs:
// the interceptor that enforces identities per call.
func (jm *JobManager) ServerOptions() []grpc.ServerOption {
	if jm.Mode == Off || !jm.Security.Secured(transport.RPC) {
		return nil
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(jm.authorizeCall)}
}

// Register adds the bootstrap service (automatic mode) to the RPC server.
func (jm *JobManager) Register(gs *grpc.Server) {
	if jm.Mode == Auto && jm.Security.Secured(transport.RPC) {
		controlpb.RegisterBootstrapServer(gs, &bootstrapServer{jm: jm})
	}
}

type taskManagerRequest interface{ GetTaskmanagerId() string }

// authorizeCall is service-level authorization of the control plane: the
// ServiceACL table, and a call naming a TaskManager must come from that
// TaskManager.
func (jm *JobManager) authorizeCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	id, err := checkServiceACL(ctx, info.FullMethod, jm.ClusterID)
	if err != nil {
		return nil, err
	}
	if r, ok := req.(taskManagerRequest); ok && id.ClusterID != "" && r.GetTaskmanagerId() != id.ID {
		return nil, status.Errorf(codes.PermissionDenied, "%s may not act as taskmanager %q", id, r.GetTaskmanagerId())
	}
	return handler(ctx, req)
}

// peerIdentity returns the verified identity of the caller.
func peerIdentity(ctx context.Context) (tlsconf.Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return tlsconf.Identity{}, status.Error(codes.Unauthenticated, "no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return tlsconf.Identity{}, status.Error(codes.Unauthenticated, "no client certificate: a taskmanager must join the cluster first (--join-token)")
	}
	id, ok, err := tlsconf.IdentityOf(info.State.PeerCertificates[0])
	if err != nil || !ok {
		return tlsconf.Identity{}, status.Errorf(codes.PermissionDenied, "client certificate carries no sluice identity (%v)", err)
	}
	return id, nil
}

var tmIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

type bootstrapServer struct {
	controlpb.UnimplementedBootstrapServer
	jm *JobManager
}

func (b *bootstrapServer) Join(ctx context.Context, req *controlpb.JoinRequest) (*controlpb.CertificateResponse, error) {
	jm := b.jm
	addr := ""
	if p, ok := peer.FromContext(ctx); ok {
		addr = p.Addr.String()
	}
	if !tmIDPattern.MatchString(req.TaskmanagerId) {
		return nil, status.Errorf(codes.InvalidArgument, "taskmanager id %q: want 1-128 letters, digits, '.', '_' or '-'", req.TaskmanagerId)
	}
	if err := jm.tokens.Validate(req.TokenId, req.TokenSecret); err != nil {
		jm.log.Warn("join refused", "peer", addr, "taskmanager", req.TaskmanagerId, "reason", err.Error())
		return nil, status.Errorf(codes.PermissionDenied, "join refused: %v", err)
	}
	der, err := jm.ca.SignCSR(req.Csr, ca.RoleTaskManager, req.TaskmanagerId, jm.ttl)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate request: %v", err)
	}
	jm.log.Info("taskmanager joined the cluster", "taskmanager", req.TaskmanagerId, "peer", addr, "token", "id "+req.TokenId)
	return &controlpb.CertificateResponse{Chain: [][]byte{der, jm.ca.Cert.Raw}, Ca: jm.ca.Cert.Raw, ClusterId: jm.ca.ClusterID}, nil
}

func (b *bootstrapServer) Renew(ctx context.Context, req *controlpb.RenewRequest) (*controlpb.CertificateResponse, error) {
	jm := b.jm
	id, err := peerIdentity(ctx)
	if err != nil {
		return nil, err
	}
	if id.Role != tlsconf.RoleTaskManager || id.ClusterID != jm.ClusterID {
		return nil, status.Errorf(codes.PermissionDenied, "%s may not renew a taskmanager certificate", id)
	}
	der, err := jm.ca.SignCSR(req.Csr, ca.RoleTaskManager, id.ID, jm.ttl)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate request: %v", err)
	}
	jm.log.Info("taskmanager certificate renewed", "taskmanager", id.ID)
	return &controlpb.CertificateResponse{Chain: [][]byte{der, jm.ca.Cert.Raw}, Ca: jm.ca.Cert.Raw, ClusterId: jm.ca.ClusterID}, nil
}

// RemoveTokenFile deletes the join token file (on shutdown of a throwaway
// cluster).
func (jm *JobManager) RemoveTokenFile() {
	if jm.JoinTokenFile != "" {
		os.Remove(jm.JoinTokenFile)
	}
}
