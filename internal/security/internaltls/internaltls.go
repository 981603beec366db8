// Package internaltls turns the internal-security configuration into the
// transport.Security of a JobManager or TaskManager: which of the RPC, data
// and blob connections use mutual TLS, with what material, and which peer
// identities each accepts (connections 2, 3 and 4 of DESIGN.md).
//
// Three modes: off (Flink's default, one warning), configured (keystores and
// trust stores from security.ssl.internal.*, Flink's keys) and automatic
// (security.ssl.internal.auto: the JobManager runs a cluster CA and
// TaskManagers join with a token).
package internaltls

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
	"github.com/sluice-dev/sluice/internal/transport"
)

// Mode is how internal connections are secured.
type Mode int

// Modes.
const (
	Off Mode = iota
	Configured
	Auto
)

func (m Mode) String() string {
	return [...]string{"off", "configured", "automatic"}[m]
}

// ModeOf reads the mode from the configuration.
func ModeOf(cfg *config.Config) Mode { return SettingsFromConfig(cfg).Mode() }

var optOutKey = map[transport.Kind]string{
	transport.RPC:  "rpc.ssl.enabled",
	transport.Data: "taskmanager.data.ssl.enabled",
	transport.Blob: "blob.service.ssl.enabled",
}

// policy is the peer policy of each kind on one side of the connection.
type policy struct {
	server map[transport.Kind]tlsconf.PeerPolicy
	client map[transport.Kind]tlsconf.PeerPolicy
}

var (
	allowJM = []tlsconf.Role{tlsconf.RoleJobManager}
	allowTM = []tlsconf.Role{tlsconf.RoleTaskManager}
)

// jobManagerPolicy: the JM serves RPC and blobs to TaskManagers only, and
// calls TaskManagers only.
func jobManagerPolicy(auto bool) policy {
	return policy{
		server: map[transport.Kind]tlsconf.PeerPolicy{
			// In automatic mode a TaskManager's first call (Join) has no
			// certificate yet; every other call is checked by the RPC
			// interceptor, which requires a verified taskmanager identity.
			transport.RPC:  {Allow: allowTM, ClientCertOptional: auto},
			transport.Blob: {Allow: allowTM},
		},
		client: map[transport.Kind]tlsconf.PeerPolicy{
			transport.RPC: {Allow: allowTM},
		},
	}
}

// taskManagerPolicy: a TM takes control calls from the JobManager only, and
// data from TaskManagers only.
func taskManagerPolicy() policy {
	return policy{
		server: map[transport.Kind]tlsconf.PeerPolicy{
			transport.RPC:  {Allow: allowJM},
			transport.Data: {Allow: allowTM},
		},
		client: map[transport.Kind]tlsconf.PeerPolicy{
			transport.RPC:  {Allow: allowJM},
			transport.Blob: {Allow: allowJM},
			transport.Data: {Allow: allowTM},
		},
	}
}

// build installs the store's configs on a new transport.Security for the
// enabled kinds and wires handshake-failure logging.
func build(set Settings, store *tlsconf.Store, p policy, log *slog.Logger) *transport.Security {
	sec := transport.Plaintext()
	enabled := set.Kinds
	kinds := map[transport.Kind]bool{}
	for k := range p.server {
		kinds[k] = true
	}
	for k := range p.client {
		kinds[k] = true
	}
	for k := range kinds {
		if !enabled[k] {
			continue
		}
		var srv, cli = p.server[k], p.client[k]
		var sc, cc = store.ServerConfig(srv), store.ClientConfig(cli)
		if _, ok := p.server[k]; !ok {
			sc = nil
		}
		if _, ok := p.client[k]; !ok {
			cc = nil
		}
		sec.Set(k, sc, cc)
	}
	logs := map[transport.Kind]*tlsconf.FailureLog{}
	for _, k := range []transport.Kind{transport.RPC, transport.Data, transport.Blob} {
		fl := tlsconf.NewFailureLog(log, string(k)+" connection")
		fl.Classify = store.Classify
		logs[k] = fl
	}
	sec.Observe = func(k transport.Kind, peer net.Addr, err error) {
		if l, ok := logs[k]; ok {
			l.Record(peer, err)
		}
	}
	sec.Describe = store.Classify
	if store.Options().VerifyHostname {
		sec.CheckHost = func(_ transport.Kind, host string, cs tls.ConnectionState) error { return store.CheckHost(host, cs) }
	} else {
		log.Warn("internal connections do not verify host names (security.ssl.verify-hostname: false): a server is accepted by its certificate chain and identity, whatever host name its certificate carries")
	}
	if t := set.HandshakeTimeout; t > 0 {
		sec.HandshakeTimeout = t
	}
	return sec
}

// warnUnsecured logs, once, which internal connections are not secured.
func warnUnsecured(set Settings, mode Mode, log *slog.Logger) {
	if mode == Off {
		log.Warn("internal connections are NOT secured: rpc, data and blob traffic is plaintext and unauthenticated (set security.ssl.internal.enabled with keystores, or security.ssl.internal.auto: true)")
		return
	}
	var off []string
	for _, k := range []transport.Kind{transport.RPC, transport.Data, transport.Blob} {
		if !set.Kinds[k] {
			off = append(off, fmt.Sprintf("%s (%s: false)", k, optOutKey[k]))
		}
	}
	if len(off) > 0 {
		log.Warn("some internal connections are NOT secured: " + strings.Join(off, ", "))
	}
}

// logNotes logs what the TLS options ignore, once at start-up.
func logNotes(o tlsconf.Options, log *slog.Logger) {
	for _, n := range o.Notes {
		log.Info(n)
	}
}

// runStore starts the reload loop of a configured store.
func runStore(ctx context.Context, store *tlsconf.Store) {
	go store.Run(ctx)
}

const transportRPC = transport.RPC
