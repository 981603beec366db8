package jobmanager

import (
	"log/slog"
	"net/http"
	"time"
)

// withAccessLog logs each request at debug level (never its body or
// headers, which may carry credentials).
func withAccessLog(log *slog.Logger) filter {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w, status: 200}
			next.ServeHTTP(sw, r)
			log.Debug("REST request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
				"peer", r.RemoteAddr, "request-id", RequestID(r.Context()), "duration", time.Since(start))
		})
	}
}
