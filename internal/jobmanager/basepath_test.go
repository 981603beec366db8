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

// TestDashboardUnderBasePath: the dashboard's page is served at the base
// path's directory (its links are relative), the bare base path is
// redirected there, and its assets load under the prefix with their type.
func TestDashboardUnderBasePath(t *testing.T) {
	cfg := config.New()
	if err := cfg.Set("rest.base-path", "/sluice"); err != nil {
		t.Fatal(err)
	}
	_, base := startCluster(t, cfg)
	code, page := do(t, "GET", base+"/sluice/", "", nil)
	if code != 200 || !strings.Contains(page, `src="./assets/`) {
		t.Fatalf("GET /sluice/: %d %s", code, page)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(base + "/sluice")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/sluice/" {
		t.Errorf("GET /sluice: %d Location %q, want 301 to /sluice/", resp.StatusCode, resp.Header.Get("Location"))
	}
	i := strings.Index(page, "./assets/")
	asset := page[i+2 : i+strings.Index(page[i:], `"`)]
	resp, err = http.Get(base + "/sluice/" + asset)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /sluice/%s: %d %s", asset, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if code, _ := do(t, "GET", base+"/", "", nil); code != 404 {
		t.Errorf("the dashboard outside the base path: %d", code)
	}
	if code, _ := do(t, "GET", base+"/sluice/assets/../../etc/passwd", "", nil); code == 200 {
		t.Error("a path outside the assets was served")
	}
}

// TestV1Prefix: every endpoint is also served under /v1/ (Flink's REST
// client prefixes it), under rest.base-path as without one; /v1 alone and
// other versions are not endpoints.
func TestV1Prefix(t *testing.T) {
	cfg := config.New()
	if err := cfg.Set("rest.base-path", "/sluice"); err != nil {
		t.Fatal(err)
	}
	_, base := startCluster(t, cfg)
	for _, p := range []string{"/sluice/v1/overview", "/sluice/v1/config", "/sluice/v1/jobs/overview", "/sluice/v1/taskmanagers"} {
		if code, out := do(t, "GET", base+p, "", nil); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, out)
		}
	}
	// The base path the dashboard links under is the API's, without the version.
	if _, out := do(t, "GET", base+"/sluice/v1/config", "", nil); !strings.Contains(out, `"base-path": "/sluice"`) {
		t.Errorf("/v1/config base-path: %s", out)
	}
	if code, out := do(t, "GET", base+"/sluice/v1/jobs/0123", "", nil); code != 404 || !strings.Contains(out, "job 0123 not found") {
		t.Errorf("an unknown job under /v1: %d %s, want the job endpoint's 404", code, out)
	}
	for _, p := range []string{"/sluice/v1", "/sluice/v2/overview", "/v1/overview"} {
		if code, _ := do(t, "GET", base+p, "", nil); code != 404 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
}
