package jobmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/sluice-dev/sluice/internal/restapi"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

// adminNewJoinToken creates a join token and, unless asked to keep them,
// retires the others: rotation without a restart.
func (rs *restServer) adminNewJoinToken(w http.ResponseWriter, r *http.Request) {
	in := rs.jm.internal
	if in == nil || in.Mode != internaltls.Auto {
		writeError(w, http.StatusConflict, "%v", internaltls.ErrNotAutomatic)
		return
	}
	var req restapi.NewJoinTokenRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "want {\"ttl\": \"1h\", \"max-uses\": N, \"keep-old\": false} (all optional): %v", err)
			return
		}
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "ttl %q: want a positive duration such as 1h or 30m", req.TTL)
			return
		}
		ttl = d
	}
	maxUses := -1
	if req.MaxUses != nil {
		if *req.MaxUses < 0 {
			writeError(w, http.StatusBadRequest, "max-uses %d: want 0 (unbounded) or more", *req.MaxUses)
			return
		}
		maxUses = *req.MaxUses
	}
	res, err := in.NewJoinTokenResult(ttl, maxUses, req.KeepOld)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "create join token: %v", err)
		return
	}
	// The response carries the secret token: never cache it.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, restapi.JoinToken{Token: res.Token, ID: res.ID, Expires: res.Expires, MaxUses: res.MaxUses, File: res.File, Retired: res.Retired})
}

// adminJoinTokens lists the join tokens and the TaskManager ids each
// issued a certificate to, without secrets.
func (rs *restServer) adminJoinTokens(w http.ResponseWriter, r *http.Request) {
	in := rs.jm.internal
	if in == nil || in.Mode != internaltls.Auto {
		writeError(w, http.StatusConflict, "%v", internaltls.ErrNotAutomatic)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"join-tokens": in.JoinTokens()})
}

// adminRevokeTaskManager revokes a TaskManager's certificates and drops its
// registration: its tasks fail over, and the JobManager refuses its
// handshakes and calls from then on.
func (rs *restServer) adminRevokeTaskManager(w http.ResponseWriter, r *http.Request) {
	jm, id := rs.jm, r.PathValue("id")
	if jm.internal == nil || jm.internal.Mode == internaltls.Off {
		writeError(w, http.StatusConflict, "internal TLS is off: there is no certificate to revoke (set security.ssl.internal.enabled or security.ssl.internal.auto)")
		return
	}
	var (
		serial   *big.Int
		notAfter time.Time
	)
	jm.mu.Lock()
	if tm, ok := jm.tms[id]; ok && tm.cert != nil {
		ident, hasID, _ := tlsconf.IdentityOf(tm.cert)
		if !hasID || ident.SharedTaskManager() {
			jm.mu.Unlock()
			writeError(w, http.StatusConflict, "taskmanager %s: %v", id, internaltls.ErrSharedCertificate)
			return
		}
		serial, notAfter = tm.cert.SerialNumber, tm.cert.NotAfter
	}
	jm.mu.Unlock()
	res, err := jm.internal.RevokeTaskManager(id, serial, notAfter)
	if err != nil {
		code := http.StatusInternalServerError
		if serial == nil {
			code = http.StatusNotFound
		}
		if errors.Is(err, internaltls.ErrNotAutomatic) {
			code = http.StatusConflict
		}
		writeError(w, code, "revoke taskmanager %s: %v", id, err)
		return
	}
	jm.mu.Lock()
	if tm, ok := jm.tms[id]; ok {
		reason := fmt.Sprintf("taskmanager %s (%s) was revoked by an administrator", tm.id, tm.rpcAddr)
		jm.log.Warn("taskmanager revoked: registration dropped", "taskmanager", id, "address", tm.rpcAddr)
		jm.removeTMLocked(tm, reason)
	}
	jm.mu.Unlock()
	writeJSON(w, http.StatusOK, restapi.Revocation{TaskManager: res.TaskManager, Serials: res.Serials, Tokens: res.Tokens})
}
