package jobmanager

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// logRing keeps the last lines the JobManager logged, for GET
// /jobmanager/log (the `view logs` permission). Log lines never carry
// credentials, so they may be shown to whoever may view logs.
type logRing struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func newLogRing(n int) *logRing { return &logRing{lines: make([]string, n)} }

func (l *logRing) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines[l.next] = strings.TrimRight(string(p), "\n")
	l.next = (l.next + 1) % len(l.lines)
	if l.next == 0 {
		l.full = true
	}
	return len(p), nil
}

// Last returns up to n of the newest lines, oldest first.
func (l *logRing) Last(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all []string
	if l.full {
		all = append(all, l.lines[l.next:]...)
	}
	all = append(all, l.lines[:l.next]...)
	if n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}

// teeHandler sends each record to the process's handler and to the ring.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if t.a.Enabled(ctx, r.Level) {
		_ = t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		_ = t.b.Handle(ctx, r)
	}
	return nil
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t.a.WithGroup(name), t.b.WithGroup(name)}
}

func (rs *restServer) jmLog(w http.ResponseWriter, r *http.Request) {
	n := 200
	if s := r.URL.Query().Get("lines"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 1000 {
			writeError(w, http.StatusBadRequest, "lines=%q: want 1..1000", s)
			return
		}
		n = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": rs.jm.logs.Last(n)})
}
