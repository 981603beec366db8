package jobmanager

import (
	"bytes"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/web"
)

// dashboardFiles is the built dashboard (web/dist), embedded in the binary.
var dashboardFiles = web.Dist()

// withDashboard serves the dashboard's static files on GET and HEAD: its
// page at / (and /index.html) and its assets under /assets/. They are
// served to everyone, before authentication, as Flink serves its web UI:
// they are the same public code in every sluice binary and hold no data;
// everything the page shows it asks the API for with the caller's own
// credentials. Every other request goes on to the API.
func (rs *restServer) withDashboard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		p := r.URL.Path
		switch {
		case p == "/" || p == "/index.html":
			info := infoFrom(r.Context())
			if p == "/" && !strings.HasSuffix(info.OriginalPath, "/") {
				// /sluice must become /sluice/: the page's relative links
				// resolve against its directory.
				http.Redirect(w, r, info.Prefix+"/", http.StatusMovedPermanently)
				return
			}
			serveDashboardFile(w, r, "index.html", false)
		case strings.HasPrefix(p, "/assets/"):
			serveDashboardFile(w, r, strings.TrimPrefix(p, "/"), true)
		case p == "/favicon.svg" || p == "/favicon.ico":
			// Browsers ask for /favicon.ico on pages without an icon of
			// their own (an API answer opened as a page).
			serveDashboardFile(w, r, "favicon.svg", false)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func serveDashboardFile(w http.ResponseWriter, r *http.Request, name string, immutable bool) {
	data, err := fs.ReadFile(dashboardFiles, name)
	if err != nil || !fs.ValidPath(name) {
		writeError(w, http.StatusNotFound, "no such dashboard file: %s", r.URL.Path)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	if immutable {
		// Asset names carry a hash of their content.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}
