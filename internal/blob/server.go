package blob

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// RequesterHeader carries the resource id of the TaskManager that fetches
// a blob. Where certificates carry identities the certificate's id is the
// one that counts and the header must agree with it; without identities
// (plaintext, or Flink's shared certificate) it is only a claim.
const RequesterHeader = "Sluice-Taskmanager-Id"

// Authorizer decides whether the peer of a request may fetch a blob. A
// non-nil error refuses the fetch with 403 and is shown to the peer, so it
// must say why and what would be allowed.
type Authorizer interface {
	AuthorizeFetch(r *http.Request, key string) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(r *http.Request, key string) error

// AuthorizeFetch calls f.
func (f AuthorizerFunc) AuthorizeFetch(r *http.Request, key string) error { return f(r, key) }

// Server serves a Store over HTTP: GET /blobs/{key}. It is read-only: blobs
// enter the store through the JobManager's job submission.
type Server struct {
	store *Store
	log   *slog.Logger
	authz Authorizer
	srv   *http.Server
}

// NewServer returns a server for store. authz, when not nil, is asked
// before every blob is sent (the JobManager lets a TaskManager fetch only
// the blobs of jobs with tasks deployed on it).
func NewServer(store *Store, log *slog.Logger, authz Authorizer) *Server {
	s := &Server{store: store, log: log, authz: authz}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /blobs/{key}", s.get)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !ValidKey(key) {
		http.Error(w, "blob key "+quote(key)+": want 64 lowercase hex digits (SHA-256)", http.StatusBadRequest)
		return
	}
	if s.authz != nil {
		if err := s.authz.AuthorizeFetch(r, key); err != nil {
			s.log.Warn("blob fetch refused", "peer", r.RemoteAddr, "blob", key, "taskmanager", r.Header.Get(RequesterHeader), "reason", err.Error())
			http.Error(w, "blob fetch refused: "+err.Error(), http.StatusForbidden)
			return
		}
	}
	f, err := s.store.Open(key)
	if errors.Is(err, ErrNotFound) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := io.Copy(w, f); err != nil {
		s.log.Debug("blob transfer interrupted", "peer", r.RemoteAddr, "err", err)
	}
}

// quote bounds and quotes a client-supplied key for an error message.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return `"` + s + `"`
}

// Serve serves on l until ctx is done.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	}()
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
