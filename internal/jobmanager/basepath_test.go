package jobmanager_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

// TestBasePath: with rest.base-path the API is served under the prefix
// only, and the dashboard config reports it.
func TestBasePath(t *testing.T) {
	cfg := config.New()
	if err := cfg.Set("rest.base-path", "/sluice/"); err != nil {
		t.Fatal(err)
	}
	_, base := startCluster(t, cfg)
	if code, out := do(t, "GET", base+"/sluice/config", "", nil); code != 200 || !strings.Contains(out, `"base-path": "/sluice"`) {
		t.Fatalf("under the base path: %d %s", code, out)
	}
	if code, out := do(t, "GET", base+"/sluice/overview", "", nil); code != 200 || !strings.Contains(out, `"taskmanagers": 1`) {
		t.Fatalf("overview under the base path: %d %s", code, out)
	}
	if code, out := do(t, "GET", base+"/overview", "", nil); code != 404 || !strings.Contains(out, "rest.base-path") {
		t.Fatalf("outside the base path: %d %s", code, out)
	}
}

// TestCanonicalRedirectKeepsBasePath: a non-canonical path is redirected
// to its canonical form with rest.base-path kept in the Location.
func TestCanonicalRedirectKeepsBasePath(t *testing.T) {
	cfg := config.New()
	if err := cfg.Set("rest.base-path", "/sluice"); err != nil {
		t.Fatal(err)
	}
	_, base := startCluster(t, cfg)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/sluice//jobs", "/sluice/x/../jobs", "/sluice/./jobs", "/sluice/a//../jobs"} {
		// Opaque keeps Go's client from cleaning the path itself.
		req, _ := http.NewRequest("GET", base, nil)
		req.URL.Opaque = p
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(loc, "/sluice/jobs") {
			t.Errorf("GET %s: %d Location %q, want 301 to /sluice/jobs...", p, resp.StatusCode, loc)
		}
	}
}
