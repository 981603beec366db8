package internaltls

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/peer"

	"github.com/sluice-dev/sluice/internal/security/ca"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

// AlreadyLiveMessage is the refusal of a registration or join for a
// TaskManager id that a live TaskManager holds. Both sides show it.
func AlreadyLiveMessage(id string) string {
	return fmt.Sprintf("taskmanager id %q is already registered by a live TaskManager: start this one with another --id (or taskmanager.resource-id), or stop the other one first (its id is free again heartbeat.timeout after its last heartbeat)", id)
}

// SetLiveCheck installs the JobManager's answer to "is TaskManager id
// registered and heartbeating?", consulted by joins.
func (jm *JobManager) SetLiveCheck(live func(id string) bool) { jm.live.Store(&live) }

func (jm *JobManager) isLive(id string) bool {
	if f := jm.live.Load(); f != nil {
		return (*f)(id)
	}
	return false
}

// recordIssued remembers a certificate the CA issued to TaskManager id
// (for RevokeTaskManager) and returns its record.
func (jm *JobManager) recordIssued(id string, der []byte) ca.Issued {
	rec := ca.Issued{TaskManager: id, At: time.Now().UTC()}
	if c, err := x509.ParseCertificate(der); err == nil {
		rec.Serial, rec.NotAfter = c.SerialNumber.String(), c.NotAfter.UTC()
	}
	jm.regMu.Lock()
	defer jm.regMu.Unlock()
	now := time.Now()
	kept := jm.issued[id][:0]
	for _, r := range jm.issued[id] {
		if r.NotAfter.After(now) {
			kept = append(kept, r)
		}
	}
	jm.issued[id] = append(kept, rec)
	return rec
}

// loadRegistry restores the token records and revocations of a previous
// run from the CA directory; revoked certificates that have not expired
// stay refused.
func (jm *JobManager) loadRegistry() error {
	r, err := ca.LoadRegistry(jm.caDir)
	if err != nil {
		return err
	}
	jm.restoreRegistry(r)
	return nil
}

// restoreRegistry applies a stored registry: token records, and the
// revocations of certificates that have not expired.
func (jm *JobManager) restoreRegistry(r ca.Registry) {
	jm.tokens.Restore(r.Tokens)
	now := time.Now()
	// Certificates issued at joins in a previous run stay revocable by id.
	for _, t := range r.Tokens {
		for _, is := range t.Issued {
			if is.NotAfter.After(now) && is.TaskManager != "" {
				jm.issued[is.TaskManager] = append(jm.issued[is.TaskManager], is)
			}
		}
	}
	for _, rv := range r.Revoked {
		if !rv.NotAfter.IsZero() && rv.NotAfter.Before(now) {
			continue
		}
		if n, ok := new(big.Int).SetString(rv.Serial, 10); ok {
			jm.store.Revoke(n, "taskmanager "+rv.TaskManager+" revoked at "+rv.At.Format(time.RFC3339))
			jm.revoked = append(jm.revoked, rv)
		}
	}
}

// loadSharedRegistry is loadRegistry from the shared store: also the
// predecessor's active tokens and renewed certificates.
func (jm *JobManager) loadSharedRegistry(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	b, ok, err := jm.shared.CARegistry(cctx)
	if err != nil {
		return fmt.Errorf("read the cluster CA's registry (revocations and join tokens) of the previous leader: %w", err)
	}
	if !ok {
		return nil
	}
	r, err := ca.UnmarshalRegistry(b, "the shared cluster CA registry")
	if err != nil {
		return err
	}
	jm.restoreRegistry(r)
	jm.tokens.ImportActive(r.Active)
	now := time.Now()
	for _, is := range r.Renewed {
		if is.NotAfter.After(now) && is.TaskManager != "" {
			jm.issued[is.TaskManager] = append(jm.issued[is.TaskManager], is)
		}
	}
	jm.log.Info("cluster CA registry taken over from the previous leader", "revoked", len(jm.revoked), "active-join-tokens", len(r.Active))
	return nil
}

// saveRegistry persists token records and revocations: to the shared
// store when there is one, else to the CA directory. The in-memory state
// is authoritative while the JobManager runs; a failure is logged and
// returned.
func (jm *JobManager) saveRegistry() error {
	if jm.caDir == "" && jm.shared == nil {
		return nil
	}
	jm.regMu.Lock()
	defer jm.regMu.Unlock()
	r := ca.Registry{Tokens: jm.tokens.Infos(), Revoked: jm.revoked}
	if jm.shared == nil {
		if err := ca.SaveRegistry(jm.caDir, r); err != nil {
			jm.log.Error("could not persist join-token records and revocations", "dir", jm.caDir, "err", err)
			return err
		}
		return nil
	}
	r.Active = jm.tokens.Active()
	// Infos lists the active tokens too; the successor gets them from Active.
	r.Tokens = slices.DeleteFunc(r.Tokens, func(i ca.TokenInfo) bool { return i.Active })
	now := time.Now()
	r.Revoked = slices.DeleteFunc(slices.Clone(r.Revoked), func(rv ca.Revocation) bool { return !rv.NotAfter.IsZero() && rv.NotAfter.Before(now) })
	for _, recs := range jm.issued {
		for _, is := range recs {
			if is.NotAfter.After(now) {
				r.Renewed = append(r.Renewed, is)
			}
		}
	}
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	if err := jm.shared.PutCARegistry(ctx, b); err != nil {
		jm.log.Error("could not store join-token records and revocations for the next leader", "err", err)
		return fmt.Errorf("store the cluster CA registry for the next leader: %w", err)
	}
	return nil
}

// JoinTokenResult is a new join token as the admin API returns it. Token
// is the full secret token, for the administrator to hand to TaskManagers.
type JoinTokenResult struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
	MaxUses int       `json:"max-uses"`
	File    string    `json:"file"`
	Retired []string  `json:"retired"`
}

// ErrNotAutomatic is returned by the join-token operations when internal
// TLS is not in automatic mode.
var ErrNotAutomatic = errors.New("join tokens exist only in automatic mode (security.ssl.internal.auto: true)")

// NewJoinToken creates a join token valid for ttl (the configured
// security.cluster.join-token.ttl when 0) admitting maxUses joins (the
// configured join-token.max-uses when < 0; 0 is unbounded), writes it to
// the join-token file and, unless keepOld, retires every other token: the
// rotation of security.ssl.internal.auto.join-token without a restart.
func (jm *JobManager) NewJoinToken(ttl time.Duration, maxUses int, keepOld bool) (ca.Token, error) {
	if jm.Mode != Auto || jm.tokens == nil {
		return ca.Token{}, ErrNotAutomatic
	}
	if ttl == 0 {
		ttl = jm.tokenTTL
	}
	if maxUses < 0 {
		maxUses = jm.maxUses
	}
	tok, err := jm.tokens.Create(ttl, maxUses)
	if err != nil {
		return ca.Token{}, err
	}
	if err := ca.WriteTokenFile(jm.JoinTokenFile, tok); err != nil {
		jm.tokens.Revoke(tok.ID)
		return ca.Token{}, err
	}
	var retired []string
	if !keepOld {
		retired = jm.tokens.RevokeAllBut(tok.ID)
	}
	// A token the next leader would not know is still handed out: the
	// failure is logged, and pods holding it join this leader.
	_ = jm.saveRegistry()
	jm.log.Info("join token created", "token", tok, "expires", tok.Expires.Format(time.RFC3339), "max-uses", maxUses, "path", jm.JoinTokenFile, "retired", retired)
	return tok, nil
}

// NewJoinTokenResult is NewJoinToken for the admin API.
func (jm *JobManager) NewJoinTokenResult(ttl time.Duration, maxUses int, keepOld bool) (JoinTokenResult, error) {
	before := map[string]bool{}
	if jm.tokens != nil {
		for _, i := range jm.tokens.Infos() {
			before[i.ID] = i.Active
		}
	}
	tok, err := jm.NewJoinToken(ttl, maxUses, keepOld)
	if err != nil {
		return JoinTokenResult{}, err
	}
	res := JoinTokenResult{Token: tok.String(), ID: tok.ID, Expires: tok.Expires, File: jm.JoinTokenFile, Retired: []string{}}
	for _, i := range jm.tokens.Infos() {
		if i.ID == tok.ID {
			res.MaxUses = i.MaxUses
		} else if before[i.ID] && !i.Active {
			res.Retired = append(res.Retired, i.ID)
		}
	}
	return res, nil
}

// JoinTokens lists every join token with the TaskManager ids it issued
// certificates to, without secrets.
func (jm *JobManager) JoinTokens() []ca.TokenInfo {
	if jm.tokens == nil {
		return nil
	}
	return jm.tokens.Infos()
}

// Revocation is what RevokeTaskManager did.
type Revocation struct {
	TaskManager string   `json:"taskmanager"`
	Serials     []string `json:"serials"`
	// Tokens are the join tokens that issued the revoked certificates.
	Tokens []string `json:"join-tokens"`
}

// ErrRevocationNotStored: RevokeTaskManager revoked the certificates on
// this JobManager (the caller drops the registration all the same) but
// could not store the revocation for a restart or the next leader.
var ErrRevocationNotStored = errors.New("the revocation could not be stored for a restart or the next leader")

// ErrSharedCertificate refuses to revoke a TaskManager that authenticates
// with a certificate shared by other TaskManagers.
var ErrSharedCertificate = errors.New("the taskmanager authenticates with a shared certificate (no id, or no identity): revoking it would lock out every TaskManager using it; give TaskManagers their own certificates (automatic mode or create-certs --taskmanager-ids) or replace the shared certificate")

// RevokeTaskManager refuses, from now on, every certificate the CA issued
// to TaskManager id and the certificate it registered with (serial, nil
// when unknown): the JobManager's handshakes reject them, so it can
// neither register, heartbeat nor renew. The caller drops its
// registration. The revocation is persisted in the CA directory in
// automatic mode; in configured mode it lasts until the JobManager
// restarts.
func (jm *JobManager) RevokeTaskManager(id string, serial *big.Int, notAfter time.Time) (Revocation, error) {
	if jm.Mode == Off || jm.store == nil {
		return Revocation{}, errors.New("internal TLS is off: there is no certificate to revoke (set security.ssl.internal.enabled or security.ssl.internal.auto)")
	}
	jm.regMu.Lock()
	serials := map[string]time.Time{}
	for _, r := range jm.issued[id] {
		serials[r.Serial] = r.NotAfter
	}
	if serial != nil {
		serials[serial.String()] = notAfter
	}
	delete(jm.issued, id)
	now := time.Now().UTC()
	out := Revocation{TaskManager: id, Serials: []string{}, Tokens: []string{}}
	for s, na := range serials {
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			continue
		}
		jm.store.Revoke(n, "taskmanager "+id+" revoked at "+now.Format(time.RFC3339)+" (sluice security revoke-taskmanager)")
		jm.revoked = append(jm.revoked, ca.Revocation{TaskManager: id, Serial: s, At: now, NotAfter: na})
		out.Serials = append(out.Serials, s)
	}
	jm.regMu.Unlock()
	if len(out.Serials) == 0 {
		return out, fmt.Errorf("taskmanager %q: no certificate known for it (not registered, and this JobManager's CA issued it none)", id)
	}
	for _, t := range jm.JoinTokens() {
		for _, is := range t.Issued {
			if is.TaskManager == id {
				out.Tokens = append(out.Tokens, t.ID)
				break
			}
		}
	}
	if err := jm.saveRegistry(); err != nil {
		jm.log.Warn("taskmanager revoked on this JobManager only: its certificates are refused until it restarts or loses leadership", "taskmanager", id, "serials", out.Serials, "err", err)
		return out, fmt.Errorf("taskmanager %q is revoked on this JobManager, but %w (%v): revoke it again once the store is reachable", id, ErrRevocationNotStored, err)
	}
	jm.log.Warn("taskmanager revoked: its certificates are refused from now on", "taskmanager", id, "serials", out.Serials, "join-tokens", out.Tokens)
	return out, nil
}

// refusalLog logs refused control calls on the JobManager, once a minute
// per peer, method and claimed id, so that a TaskManager retrying a refused
// registration is visible in the JobManager's log without flooding it.
type refusalLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *refusalLog) log(log *slog.Logger, ctx context.Context, method, claimed string, err error) {
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	host := addr
	if i := lastColon(addr); i > 0 {
		host = addr[:i]
	}
	key := host + "|" + method + "|" + claimed
	r.mu.Lock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	now := time.Now()
	if t, ok := r.last[key]; ok && now.Sub(t) < time.Minute {
		r.mu.Unlock()
		return
	}
	r.last[key] = now
	r.mu.Unlock()
	log.Warn("control call refused", "method", method, "peer", addr, "taskmanager", claimed, "reason", err.Error())
}

func lastColon(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}

func leafOf(s *tlsconf.Store) *x509.Certificate {
	c := s.Certificate()
	if c == nil || len(c.Certificate) == 0 {
		return nil
	}
	if c.Leaf != nil {
		return c.Leaf
	}
	leaf, _ := x509.ParseCertificate(c.Certificate[0])
	return leaf
}

// renewLoop renews a certificate on ca.RenewIn's schedule, counted from
// when the current certificate was received, and backs off on failures
// (ca.RenewBackoff), until ctx is done.
func renewLoop(ctx context.Context, log *slog.Logger, what string, leaf func() *x509.Certificate, renew func(context.Context) error) {
	renewLoopWith(ctx, log, what, leaf, renew, time.Now, ca.RenewIn, ca.RenewBackoff)
}

func renewLoopWith(ctx context.Context, log *slog.Logger, what string, leaf func() *x509.Certificate, renew func(context.Context) error,
	now func() time.Time, schedule func(*x509.Certificate, time.Time) time.Duration, backoff func(int) time.Duration) {
	failures := 0
	wait := time.Duration(0)
	if l := leaf(); l != nil {
		wait = schedule(l, now())
	}
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if err := renew(ctx); err != nil {
			failures++
			wait = backoff(failures)
			l := leaf()
			expires := ""
			if l != nil {
				expires = l.NotAfter.Format(time.RFC3339)
			}
			log.Error(what+" renewal failed; retrying", "err", err, "retry-in", wait, "failures", failures, "expires", expires)
			continue
		}
		failures = 0
		wait = schedule(leaf(), now())
	}
}
