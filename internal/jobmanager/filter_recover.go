package jobmanager

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// withRecover turns a panic in a handler into a 500 for that request only.
func withRecover(log *slog.Logger) filter {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("REST handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
					writeError(w, http.StatusInternalServerError, "internal error (request %s)", RequestID(r.Context()))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
