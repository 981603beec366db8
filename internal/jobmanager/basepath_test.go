package jobmanager_test

import (
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
