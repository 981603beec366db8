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
	store    *tlsconf.Store
	log      *slog.Logger
}

// joinToken finds the join token: the flag, then security.cluster.join-token,
// then security.cluster.join-token-file.
func joinToken(cfg *config.Config, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if t := cfg.Secret("security.cluster.join-token").Value(); t != "" {
		return t, nil
	}
	if f := cfg.String("security.cluster.join-token-file"); f != "" {
		t, err := ca.ReadTokenFile(f)
		if err != nil {
			return "", fmt.Errorf("security.cluster.join-token-file: %w", err)
		}
		return t, nil
	}
	return "", nil
}

// SetupTaskManager builds a TaskManager's internal security. In automatic
// mode (or when a join token is given) it joins the cluster first: it
// creates its key, sends a CSR with the token to the JobManager, whose CA it
// checks against the hash in the token, and renews the certificate it gets
// before it expires.
func SetupTaskManager(ctx context.Context, cfg *config.Config, log *slog.Logger, tmID, tokenFlag string) (*TaskManager, error) {
	tokStr, err := joinToken(cfg, tokenFlag)
	if err != nil {
		return nil, err
	}
	mode := ModeOf(cfg)
	if tokStr != "" {
		mode = Auto
	}
	tm := &TaskManager{Mode: mode, log: log}
	switch mode {
	case Off:
		warnUnsecured(cfg, mode, log)
		tm.Security = transport.Plaintext()
		return tm, nil
	case Configured:
		warnUnsecured(cfg, mode, log)
		opts, err := tlsconf.InternalOptions(cfg)
		if err != nil {
			return nil, err
		}
		logNotes(opts, log)
		store, err := tlsconf.NewStore(opts, log)
		if err != nil {
			return nil, err
		}
		if id, ok := store.Identity(); ok && id.Role != tlsconf.RoleTaskManager {
			return nil, fmt.Errorf("security.ssl.internal.keystore: the certificate's identity is %s, but a TaskManager needs spiffe://%s/taskmanager/<id>", id, id.ClusterID)
		}
		tm.store = store
		runStore(ctx, store)
		tm.Security = build(cfg, store, taskManagerPolicy(), log)
		return tm, nil
	}
	if tokStr == "" {
		return nil, errors.New("security.ssl.internal.auto is on: a TaskManager needs the cluster's join token: --join-token, security.cluster.join-token or security.cluster.join-token-file (the JobManager wrote it to its security.ssl.internal.auto.dir/join-token)")
	}
	tok, err := ca.ParseToken(strings.TrimSpace(tokStr))
	if err != nil {
		return nil, fmt.Errorf("join token: %w", err)
	}
	opts, err := tlsconf.InternalOptions(withoutKeystores(cfg))
	if err != nil {
		return nil, err
	}
	jmAddr := net.JoinHostPort(cfg.String("jobmanager.rpc.address"), fmt.Sprint(cfg.Int("jobmanager.rpc.port")))
	key, resp, err := join(ctx, jmAddr, tok, tmID, log)
	if err != nil {
		return nil, err
	}
	cert, roots, err := material(key, resp)
	if err != nil {
		return nil, err
	}
	tm.store = tlsconf.NewStoreFromMaterial(cert, roots, opts, log)
	tm.Security = build(cfg, tm.store, taskManagerPolicy(), log)
	go tm.renew(ctx, jmAddr)
	log.Info("joined the cluster", "cluster-id", resp.ClusterId, "identity", "spiffe://"+resp.ClusterId+"/taskmanager/"+tmID, "certificate-expires", cert.Leaf.NotAfter.Format(time.RFC3339))
	return tm, nil
}

// join performs the bootstrap: retry while the JobManager is unreachable,
// stop at once when it refuses us or its CA does not match the token.
func join(ctx context.Context, jmAddr string, tok ca.Token, tmID string, log *slog.Logger) (crypto.Signer, *controlpb.CertificateResponse, error) {
	key, csr, err := ca.NewCSR(tmID)
	if err != nil {
		return nil, nil, err
	}
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
		}
		log.Warn("joining the cluster failed; retrying", "jobmanager", jmAddr, "err", msg, "retry-in", backoff)
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

// renew replaces the TaskManager's certificate at two thirds of its life,
// authenticating with the current one.
func (tm *TaskManager) renew(ctx context.Context, jmAddr string) {
	for {
		leaf := tm.store.Certificate().Leaf
		wait := time.Until(ca.RenewAt(leaf))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := tm.renewOnce(ctx, jmAddr); err != nil {
			tm.log.Error("certificate renewal failed; retrying in 30s", "err", err, "expires", leaf.NotAfter)
			select {
			case <-ctx.Done():
				return
			case <-time.After(30 * time.Second):
			}
		}
	}
}

func (tm *TaskManager) renewOnce(ctx context.Context, jmAddr string) error {
	id, _ := tm.store.Identity()
	key, csr, err := ca.NewCSR(id.ID)
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
		return err
	}
	cert, roots, err := material(key, resp)
	if err != nil {
		return err
	}
	tm.store.SetMaterial(cert, roots)
	tm.log.Info("certificate renewed", "expires", cert.Leaf.NotAfter.Format(time.RFC3339))
	return nil
}
