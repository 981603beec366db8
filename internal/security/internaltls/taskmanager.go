package internaltls

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/config"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/ca"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
	"github.com/sluice-dev/sluice/internal/transport"
)

// TaskManager is the internal security of a TaskManager.
type TaskManager struct {
	Mode     Mode
	Security *transport.Security
	// ID is the TaskManager's resource id: --id, else
	// taskmanager.resource-id, else the id its certificate names, else
	// generated.
	ID    string
	store *tlsconf.Store
	log   *slog.Logger
	hosts []string // the names its certificate carries (automatic mode)
	// leader, when set (FollowLeader), finds the JobManager that leads the
	// cluster now: renewals go there, not to the one the TaskManager
	// joined, which may have failed over since.
	leader atomic.Pointer[func(context.Context) (string, error)]
}

// FollowLeader makes certificate renewals (automatic mode) go to the
// JobManager leader returns, asked at each renewal: under high
// availability the JobManager a TaskManager joined may have lost
// leadership or died, and its successor shares the cluster CA.
func (tm *TaskManager) FollowLeader(leader func(context.Context) (string, error)) {
	if leader != nil {
		tm.leader.Store(&leader)
	}
}

// renewalAddress is where the next renewal goes: the current leader when
// FollowLeader was called, else the JobManager the TaskManager joined.
func (tm *TaskManager) renewalAddress(ctx context.Context, joined string) (string, error) {
	f := tm.leader.Load()
	if f == nil {
		return joined, nil
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addr, err := (*f)(lctx)
	if err != nil {
		return "", fmt.Errorf("find the leading jobmanager to renew the certificate with: %w", err)
	}
	return addr, nil
}

// tmHosts are the names a TaskManager is dialed by, for its certificate in
// automatic mode: taskmanager.host (what it advertises), and localhost and
// 127.0.0.1 (what it advertises without taskmanager.host, and what
// processes on the same machine use).
func tmHosts(set Settings) []string {
	hosts := []string{"localhost", "127.0.0.1"}
	if h := set.TaskManagerHost; h != "" && h != "localhost" && h != "127.0.0.1" {
		hosts = append(hosts, h)
	}
	return hosts
}

// joinToken finds the join token: the flag, then security.cluster.join-token,
// then security.cluster.join-token-file.
func joinToken(set Settings, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if t := set.JoinToken; t != "" {
		return t, nil
	}
	if f := set.JoinTokenFile; f != "" {
		t, err := ca.ReadTokenFile(f)
		if err != nil {
			return "", config.KeyError("security.cluster.join-token-file", err)
		}
		return t, nil
	}
	return "", nil
}

// ValidateTaskManager runs the checks SetupTaskManager runs on cfg (with
// the --id and --join-token flags, "" when not given), with the same code,
// without joining a cluster or starting anything: an error is one
// SetupTaskManager would stop start-up with.
func ValidateTaskManager(cfg *config.Config, tmID, tokenFlag string) error {
	set := SettingsFromConfig(cfg)
	tokStr, err := joinToken(set, tokenFlag)
	if err != nil {
		return err
	}
	mode := set.Mode()
	if tokStr != "" {
		mode = Auto
	}
	if tmID == "" {
		tmID = set.ResourceID
	}
	switch mode {
	case Configured:
		_, _, err = configuredTaskManager(cfg, slog.New(slog.DiscardHandler), tmID)
	case Auto:
		_, _, err = autoTaskManager(cfg, tokStr)
	}
	return err
}

// configuredTaskManager loads the key and trust stores of configured mode
// and checks the certificate's identity against the TaskManager's id
// (tmID, "" when neither --id nor taskmanager.resource-id names one). It
// returns the id to use ("" when neither names one nor the certificate).
func configuredTaskManager(cfg *config.Config, log *slog.Logger, tmID string) (*tlsconf.Store, string, error) {
	store, opts, id, ok, err := configuredStore(cfg, log)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return store, tmID, nil
	}
	if id.Role != tlsconf.RoleTaskManager {
		return nil, "", fmt.Errorf("security.ssl.internal.keystore: the certificate's identity is %s, but a TaskManager needs spiffe://%s/taskmanager/<id> (its own) or spiffe://%s/taskmanager (shared)", id, id.ClusterID, id.ClusterID)
	}
	switch {
	case id.ID == "":
		// Shared certificate: any id.
	case tmID == "":
		tmID = id.ID
	case tmID != id.ID:
		return nil, "", fmt.Errorf("--id / taskmanager.resource-id is %q, but the certificate in security.ssl.internal.keystore (%s) is taskmanager %q's: start without --id to take the certificate's id, or use a certificate for %q or a shared one (create-certs' taskmanager.pem)",
			tmID, opts.Keystore, id.ID, tmID)
	}
	return store, tmID, nil
}

// autoTaskManager checks the join token and settings of automatic mode.
func autoTaskManager(cfg *config.Config, tokStr string) (ca.Token, tlsconf.Options, error) {
	if tokStr == "" {
		return ca.Token{}, tlsconf.Options{}, errors.New("security.ssl.internal.auto is on: a TaskManager needs the cluster's join token: --join-token, security.cluster.join-token or security.cluster.join-token-file (the JobManager wrote it to its security.ssl.internal.auto.dir/join-token)")
	}
	tok, err := ca.ParseToken(strings.TrimSpace(tokStr))
	if err != nil {
		return ca.Token{}, tlsconf.Options{}, fmt.Errorf("join token: %w", err)
	}
	opts, err := tlsconf.InternalOptions(withoutKeystores(cfg))
	return tok, opts, err
}

// SetupTaskManager builds a TaskManager's internal security and decides its
// id. tmID is the --id flag ("" when not given); defaultID generates an id
// when neither the flag, taskmanager.resource-id nor the certificate names
// one. In automatic mode (or when a join token is given) it joins the
// cluster first: it creates its key, sends a CSR with the token to the
// JobManager, whose CA it checks against the hash in the token, and renews
// the certificate it gets before it expires.
func SetupTaskManager(ctx context.Context, cfg *config.Config, log *slog.Logger, tmID, tokenFlag string, defaultID func() string) (*TaskManager, error) {
	set := SettingsFromConfig(cfg)
	tokStr, err := joinToken(set, tokenFlag)
	if err != nil {
		return nil, err
	}
	mode := set.Mode()
	if tokStr != "" {
		mode = Auto
	}
	if tmID == "" {
		tmID = set.ResourceID
	}
	tm := &TaskManager{Mode: mode, log: log, ID: tmID}
	if tm.ID == "" && mode != Configured {
		tm.ID = defaultID()
	}
	switch mode {
	case Off:
		warnUnsecured(set, mode, log)
		tm.Security = transport.Plaintext()
		return tm, nil
	case Configured:
		warnUnsecured(set, mode, log)
		store, id, err := configuredTaskManager(cfg, log, tm.ID)
		if err != nil {
			return nil, err
		}
		tm.ID = id
		if tm.ID == "" {
			tm.ID = defaultID()
		}
		tm.store = store
		runStore(ctx, store)
		tm.Security = build(set, store, taskManagerPolicy(), log)
		return tm, nil
	}
	tok, opts, err := autoTaskManager(cfg, tokStr)
	if err != nil {
		return nil, err
	}
	jmAddr := net.JoinHostPort(set.JobManagerAddress, fmt.Sprint(set.JobManagerPort))
	tm.hosts = tmHosts(set)
	key, resp, err := join(ctx, jmAddr, tok, tm.ID, tm.hosts, set.RegistrationTimeout, log)
	if err != nil {
		return nil, err
	}
	cert, roots, err := material(key, resp)
	if err != nil {
		return nil, err
	}
	tm.store = tlsconf.NewStoreFromMaterial(cert, roots, opts, log)
	tm.Security = build(set, tm.store, taskManagerPolicy(), log)
	go renewLoop(ctx, log, "certificate", func() *x509.Certificate { return leafOf(tm.store) }, func(ctx context.Context) error { return tm.renewOnce(ctx, jmAddr) })
	log.Info("joined the cluster", "cluster-id", resp.ClusterId, "identity", "spiffe://"+resp.ClusterId+"/taskmanager/"+tm.ID, "certificate-expires", cert.Leaf.NotAfter.Format(time.RFC3339))
	return tm, nil
}

// join performs the bootstrap: retry while the JobManager is unreachable
// or a live TaskManager holds the id, up to taskmanager.registration.timeout;
// stop at once when the token is refused or the JobManager's CA does not
// match it (retrying cannot fix those).
func join(ctx context.Context, jmAddr string, tok ca.Token, tmID string, hosts []string, timeout time.Duration, log *slog.Logger) (crypto.Signer, *controlpb.CertificateResponse, error) {
	key, csr, err := ca.NewCSR(tmID, hosts)
	if err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(timeout)
	backoff := 200 * time.Millisecond
	for {
		cfg, _ := ca.BootstrapClientConfig(tok)
		conn, err := grpc.NewClient(jmAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return nil, nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := controlpb.NewBootstrapClient(conn).Join(cctx, &controlpb.JoinRequest{
			TokenId: tok.ID, TokenSecret: tok.Secret, TaskmanagerId: tmID, Csr: csr,
		})
		cancel()
		conn.Close()
		if err == nil {
			return key, resp, nil
		}
		msg := status.Convert(err).Message()
		switch {
		case status.Code(err) == codes.PermissionDenied || status.Code(err) == codes.InvalidArgument:
			return nil, nil, fmt.Errorf("joining the cluster at %s: %s", jmAddr, msg)
		case strings.Contains(msg, "join token"), strings.Contains(msg, "not the JobManager"):
			return nil, nil, fmt.Errorf("joining the cluster at %s: refusing this JobManager: %s", jmAddr, msg)
		case strings.Contains(msg, "first record does not look like a TLS handshake"):
			return nil, nil, fmt.Errorf("joining the cluster at %s: the JobManager does not speak TLS on its RPC port: a join token works only against a JobManager with security.ssl.internal.auto: true (%s)", jmAddr, msg)
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("could not join the cluster at %s within taskmanager.registration.timeout (%s): %s", jmAddr, timeout, msg)
		}
		if status.Code(err) == codes.AlreadyExists {
			log.Error("joining the cluster refused; retrying until taskmanager.registration.timeout", "jobmanager", jmAddr, "taskmanager", tmID, "err", msg, "retry-in", backoff)
		} else {
			log.Warn("joining the cluster failed; retrying", "jobmanager", jmAddr, "err", msg, "retry-in", backoff)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func material(key crypto.Signer, resp *controlpb.CertificateResponse) (tls.Certificate, *x509.CertPool, error) {
	if len(resp.Chain) == 0 {
		return tls.Certificate{}, nil, errors.New("jobmanager returned no certificate")
	}
	leaf, err := x509.ParseCertificate(resp.Chain[0])
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("jobmanager returned a bad certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(resp.Ca)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("jobmanager returned a bad CA certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return tls.Certificate{Certificate: resp.Chain, PrivateKey: key, Leaf: leaf}, roots, nil
}

func (tm *TaskManager) renewOnce(ctx context.Context, joined string) error {
	jmAddr, err := tm.renewalAddress(ctx, joined)
	if err != nil {
		return err
	}
	id, _ := tm.store.Identity()
	key, csr, err := ca.NewCSR(id.ID, tm.hosts)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(jmAddr, tm.Security.GRPCDialOptions()...)
	if err != nil {
		return err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := controlpb.NewBootstrapClient(conn).Renew(cctx, &controlpb.RenewRequest{Csr: csr})
	if err != nil {
		return fmt.Errorf("renew with the jobmanager at %s: %w", jmAddr, err)
	}
	cert, roots, err := material(key, resp)
	if err != nil {
		return err
	}
	tm.store.SetMaterial(cert, roots)
	tm.log.Info("certificate renewed", "expires", cert.Leaf.NotAfter.Format(time.RFC3339))
	return nil
}
