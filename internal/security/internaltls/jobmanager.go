package internaltls

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

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
	// JoinToken is the token created at start-up (automatic mode);
	// NewJoinToken may have retired it since. Never log it.
	JoinToken ca.Token
	// JoinTokenFile is where the token was written (automatic mode).
	JoinTokenFile string

	store    *tlsconf.Store
	ca       *ca.CA
	caDir    string
	tokens   *ca.Tokens
	ttl      time.Duration
	tokenTTL time.Duration
	maxUses  int
	log      *slog.Logger

	// live reports whether a TaskManager id is registered and
	// heartbeating; set by the JobManager (SetLiveCheck).
	live atomic.Pointer[func(id string) bool]

	regMu sync.Mutex // guards issued, revoked and the registry file
	// issued lists the unexpired certificates the CA issued per
	// TaskManager id, so that revoking an id revokes all of them.
	issued  map[string][]ca.Issued
	revoked []ca.Revocation

	refusals refusalLog

	// shared, when set (WithSharedRegistry), keeps the registry where
	// every JobManager replica finds it instead of in the CA directory.
	shared RegistryStore
}

// RegistryStore keeps the automatic CA's registry (join-token records and
// revocations) outside the JobManager's directory: under Kubernetes high
// availability in a Secret, written only by the leader
// (ha.Leadership.PutCARegistry), so a successor knows what its
// predecessor revoked.
type RegistryStore interface {
	CARegistry(ctx context.Context) ([]byte, bool, error)
	PutCARegistry(ctx context.Context, data []byte) error
}

// JobManagerOption changes how SetupJobManager sets up.
type JobManagerOption func(*JobManager)

// WithSharedRegistry keeps the automatic CA's registry in store, which
// also carries the active join tokens (as digests) from one leader to
// the next.
func WithSharedRegistry(store RegistryStore) JobManagerOption {
	return func(jm *JobManager) { jm.shared = store }
}

// registryTimeout bounds each read or write of a shared registry.
const registryTimeout = 30 * time.Second

// SetupJobManager builds the JobManager's internal security from cfg.
// workDir holds the automatic CA when security.ssl.internal.auto.dir is
// unset.
func SetupJobManager(ctx context.Context, cfg *config.Config, log *slog.Logger, workDir string, options ...JobManagerOption) (*JobManager, error) {
	set := SettingsFromConfig(cfg)
	mode := set.Mode()
	jm := &JobManager{Mode: mode, log: log, ttl: set.CertTTL, tokenTTL: set.JoinTokenTTL, maxUses: set.JoinTokenMaxUses,
		issued: map[string][]ca.Issued{}}
	for _, o := range options {
		o(jm)
	}
	warnUnsecured(set, mode, log)
	switch mode {
	case Off:
		jm.Security = transport.Plaintext()
		return jm, nil
	case Configured:
		store, clusterID, err := configuredJobManager(cfg, log)
		if err != nil {
			return nil, err
		}
		jm.store, jm.ClusterID = store, clusterID
		runStore(ctx, store)
		jm.Security = build(set, store, jobManagerPolicy(false), log)
		log.Info("internal TLS on", "mode", "configured", "identities", jm.ClusterID != "", "cluster-id", jm.ClusterID)
		return jm, nil
	}
	// Automatic mode.
	dir := set.AutoDir
	if dir == "" {
		dir = filepath.Join(workDir, "cluster-ca")
	}
	authority, err := ca.LoadOrCreate(dir, "")
	if err != nil {
		return nil, config.KeyError("security.ssl.internal.auto.dir", err)
	}
	jm.ca, jm.ClusterID, jm.caDir = authority, authority.ClusterID, dir
	opts, err := autoJobManagerOptions(cfg)
	if err != nil {
		return nil, err
	}
	cert, err := authority.IssueKeyPair(ca.RoleJobManager, "", jmHosts(set), jm.ttl)
	if err != nil {
		return nil, err
	}
	jm.store = tlsconf.NewStoreFromMaterial(cert, authority.Pool(), opts, log)
	jm.tokens = ca.NewTokens(authority)
	if jm.shared != nil {
		if err := jm.loadSharedRegistry(ctx); err != nil {
			return nil, err
		}
	} else if err := jm.loadRegistry(); err != nil {
		return nil, config.KeyError("security.ssl.internal.auto.dir", err)
	}
	jm.JoinTokenFile = filepath.Join(dir, "join-token")
	// A successor keeps its predecessor's tokens: TaskManager pods that
	// hold one have not joined yet.
	tok, err := jm.NewJoinToken(jm.tokenTTL, jm.maxUses, jm.shared != nil)
	if err != nil {
		return nil, err
	}
	jm.JoinToken = tok
	jm.Security = build(set, jm.store, jobManagerPolicy(true), log)
	go renewLoop(ctx, jm.log, "jobmanager certificate", func() *x509.Certificate { return leafOf(jm.store) }, jm.renewOwnOnce)
	log.Info("internal TLS on (automatic cluster CA): rpc, data and blob connections are encrypted and mutually authenticated",
		"cluster-id", authority.ClusterID, "ca-dir", dir, "join-token-file", jm.JoinTokenFile, "join-token-expires", tok.Expires.Format(time.RFC3339),
		"join-token-max-uses", jm.maxUses)
	return jm, nil
}

// ValidateJobManager runs the checks SetupJobManager runs on cfg, with
// the same code, without starting anything or creating the automatic CA:
// an error is one SetupJobManager would stop start-up with.
func ValidateJobManager(cfg *config.Config) error {
	switch ModeOf(cfg) {
	case Configured:
		_, _, err := configuredJobManager(cfg, slog.New(slog.DiscardHandler))
		return err
	case Auto:
		_, err := autoJobManagerOptions(cfg)
		return err
	}
	return nil
}

// configuredJobManager loads the key and trust stores of configured mode
// and checks that the certificate, when it carries an identity, is a
// JobManager's. It starts nothing (the caller runs the store).
func configuredJobManager(cfg *config.Config, log *slog.Logger) (*tlsconf.Store, string, error) {
	store, _, id, ok, err := configuredStore(cfg, log)
	if err != nil || !ok {
		return store, "", err
	}
	if id.Role != tlsconf.RoleJobManager {
		return nil, "", fmt.Errorf("security.ssl.internal.keystore: the certificate's identity is %s, but a JobManager needs spiffe://%s/jobmanager", id, id.ClusterID)
	}
	return store, id.ClusterID, nil
}

// configuredStore loads the key and trust stores of configured mode and
// reads the identity of the process's certificate, if it has one.
func configuredStore(cfg *config.Config, log *slog.Logger) (*tlsconf.Store, tlsconf.Options, tlsconf.Identity, bool, error) {
	opts, err := tlsconf.InternalOptions(cfg)
	if err != nil {
		return nil, opts, tlsconf.Identity{}, false, err
	}
	logNotes(opts, log)
	store, err := tlsconf.NewStore(opts, log)
	if err != nil {
		return nil, opts, tlsconf.Identity{}, false, err
	}
	id, ok := store.Identity()
	return store, opts, id, ok, nil
}

// autoJobManagerOptions checks the settings of automatic mode and returns
// the TLS options its certificates are used with.
func autoJobManagerOptions(cfg *config.Config) (tlsconf.Options, error) {
	if ttl := SettingsFromConfig(cfg).CertTTL; ttl < ca.MinCertTTL {
		return tlsconf.Options{}, fmt.Errorf("security.ssl.internal.auto.cert-ttl %s is below the minimum %s: certificates must outlive their renewal schedule (renewal at two thirds, retries in the last third)", ttl, ca.MinCertTTL)
	}
	return tlsconf.InternalOptions(withoutKeystores(cfg))
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

func jmHosts(set Settings) []string {
	hosts := []string{"localhost", "127.0.0.1"}
	if h := set.JobManagerAddress; h != "" && h != "localhost" && h != "127.0.0.1" {
		hosts = append(hosts, h)
	}
	return hosts
}

// renewOwnOnce re-issues the JobManager's own certificate.
func (jm *JobManager) renewOwnOnce(context.Context) error {
	leaf := leafOf(jm.store)
	var hosts []string
	if leaf != nil {
		hosts = append(hosts, leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			hosts = append(hosts, ip.String())
		}
	}
	cert, err := jm.ca.IssueKeyPair(ca.RoleJobManager, "", hosts, jm.ttl)
	if err != nil {
		return err
	}
	jm.store.SetMaterial(cert, jm.ca.Pool())
	jm.log.Info("jobmanager certificate renewed", "expires", cert.Leaf.NotAfter.Format(time.RFC3339))
	return nil
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

// taskManagerIDs returns every TaskManager id a request names: each
// string field taskmanager_id (empty ones too), at the top or in a nested
// message (a checkpoint acknowledgement names its task in a TaskRef), so
// that a new message cannot name a TaskManager where the check below does
// not look.
func taskManagerIDs(req any) []string {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	var ids []string
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		fields := m.Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			switch {
			case fd.Name() == "taskmanager_id" && fd.Kind() == protoreflect.StringKind && fd.Cardinality() != protoreflect.Repeated:
				ids = append(ids, m.Get(fd).String())
			case !m.Has(fd):
			case fd.IsMap():
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					m.Get(fd).Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool { walk(e.Message()); return true })
				}
			case fd.IsList():
				if fd.Kind() == protoreflect.MessageKind {
					l := m.Get(fd).List()
					for j := 0; j < l.Len(); j++ {
						walk(l.Get(j).Message())
					}
				}
			case fd.Kind() == protoreflect.MessageKind:
				walk(m.Get(fd).Message())
			}
		}
	}
	walk(m.ProtoReflect())
	return ids
}

// authorizeCall is service-level authorization of the control plane: the
// ServiceACL table, and a call naming a TaskManager must come from that
// TaskManager.
func (jm *JobManager) authorizeCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	// A revoked certificate is refused at the handshake; this catches the
	// connections it established before it was revoked.
	if p, ok := peer.FromContext(ctx); ok && jm.store != nil {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			if why, revoked := jm.store.Revoked(ti.State.PeerCertificates[0].SerialNumber); revoked {
				err := status.Errorf(codes.PermissionDenied, "this TaskManager's certificate was revoked (%s): it may not act in this cluster; an administrator must issue it a new identity (a new join token in automatic mode)", why)
				jm.refusals.log(jm.log, ctx, info.FullMethod, "", err)
				return nil, err
			}
		}
	}
	id, err := checkServiceACL(ctx, info.FullMethod, jm.ClusterID)
	if err != nil {
		jm.refusals.log(jm.log, ctx, info.FullMethod, "", err)
		return nil, err
	}
	if id.ClusterID != "" {
		for _, tm := range taskManagerIDs(req) {
			if id.MayActAs(tm) {
				continue
			}
			err := status.Errorf(codes.PermissionDenied, "%s may not act as taskmanager %q: its certificate names taskmanager %q; start the TaskManager without --id (it takes the id from its certificate) or with --id %s, or give it a certificate for %q or a shared one (spiffe://%s/taskmanager)",
				id, tm, id.ID, id.ID, tm, id.ClusterID)
			jm.refusals.log(jm.log, ctx, info.FullMethod, tm, err)
			return nil, err
		}
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
	if err := jm.tokens.Use(req.TokenId, req.TokenSecret); err != nil {
		jm.log.Warn("join refused", "peer", addr, "taskmanager", req.TaskmanagerId, "reason", err.Error())
		return nil, status.Errorf(codes.PermissionDenied, "join refused: %v", err)
	}
	// A token admits a new TaskManager, never a second holder of a live
	// one's identity: that would let the token's holder take over its
	// registration (checked again at registration, whatever the
	// certificate).
	if jm.isLive(req.TaskmanagerId) {
		jm.tokens.Release(req.TokenId)
		jm.log.Warn("join refused: taskmanager id already live", "peer", addr, "taskmanager", req.TaskmanagerId, "token", "id "+req.TokenId)
		return nil, status.Error(codes.AlreadyExists, AlreadyLiveMessage(req.TaskmanagerId))
	}
	der, err := jm.ca.SignCSR(req.Csr, ca.RoleTaskManager, req.TaskmanagerId, jm.ttl)
	if err != nil {
		jm.tokens.Release(req.TokenId)
		return nil, status.Errorf(codes.InvalidArgument, "certificate request: %v", err)
	}
	rec := jm.recordIssued(req.TaskmanagerId, der)
	jm.tokens.Record(req.TokenId, rec)
	_ = jm.saveRegistry()
	jm.log.Info("taskmanager joined the cluster", "taskmanager", req.TaskmanagerId, "peer", addr, "token", "id "+req.TokenId, "serial", rec.Serial)
	return &controlpb.CertificateResponse{Chain: [][]byte{der, jm.ca.Cert.Raw}, Ca: jm.ca.Cert.Raw, ClusterId: jm.ca.ClusterID}, nil
}

func (b *bootstrapServer) Renew(ctx context.Context, req *controlpb.RenewRequest) (*controlpb.CertificateResponse, error) {
	jm := b.jm
	id, err := peerIdentity(ctx)
	if err != nil {
		return nil, err
	}
	// A shared certificate names no id: renewing it would mint a
	// certificate for every TaskManager identity at once.
	if id.Role != tlsconf.RoleTaskManager || id.ClusterID != jm.ClusterID || id.SharedTaskManager() {
		return nil, status.Errorf(codes.PermissionDenied, "%s may not renew a taskmanager certificate (only certificates this cluster's CA issued to one TaskManager id are renewed)", id)
	}
	der, err := jm.ca.SignCSR(req.Csr, ca.RoleTaskManager, id.ID, jm.ttl)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate request: %v", err)
	}
	rec := jm.recordIssued(id.ID, der)
	if jm.shared != nil {
		// Only a shared registry keeps renewals: a successor must be able
		// to revoke this certificate by its TaskManager id.
		_ = jm.saveRegistry()
	}
	jm.log.Info("taskmanager certificate renewed", "taskmanager", id.ID, "serial", rec.Serial)
	return &controlpb.CertificateResponse{Chain: [][]byte{der, jm.ca.Cert.Raw}, Ca: jm.ca.Cert.Raw, ClusterId: jm.ca.ClusterID}, nil
}

// RemoveTokenFile deletes the join token file (on shutdown of a throwaway
// cluster).
func (jm *JobManager) RemoveTokenFile() {
	if jm.JoinTokenFile != "" {
		os.Remove(jm.JoinTokenFile)
	}
}
