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

// Server serves a Store over HTTP: GET /blobs/{key}. It is read-only: blobs
// enter the store through the JobManager's job submission.
type Server struct {
	store *Store
	log   *slog.Logger
	srv   *http.Server
}

// NewServer returns a server for store.
func NewServer(store *Store, log *slog.Logger) *Server {
	s := &Server{store: store, log: log}
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
	f, err := s.store.Open(r.PathValue("key"))
	if errors.Is(err, ErrNotFound) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := io.Copy(w, f); err != nil {
		s.log.Debug("blob transfer interrupted", "peer", r.RemoteAddr, "err", err)
	}
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
