package jobmanager

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// TestBadSecuritySettingFailsBeforeBinding: every REST security setting is
// validated before any port is bound. The RPC port is taken on purpose: a
// JobManager that bound first would fail on it instead of naming the
// setting.
func TestBadSecuritySettingFailsBeforeBinding(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		settings map[string]string
		wantKey  string
	}{
		{map[string]string{"security.authorization.mode": "acl"}, "security.authorization.acl.policy-file"},
		{map[string]string{"security.authorization.mode": "acl", "security.authorization.acl.policy-file": missing}, "security.authorization.acl.policy-file"},
		{map[string]string{"security.rest.authentication.token.file": missing}, "security.rest.authentication.token.file"},
		{map[string]string{"security.audit.log.path": filepath.Join(missing, "dir", "audit.log")}, "security.audit.log.path"},
		{map[string]string{"rest.trusted-proxies": "not-an-address"}, "rest.trusted-proxies"},
		{map[string]string{"security.rest.authentication.failures.ipv4-prefix": "4"}, "security.rest.authentication.failures.ipv4-prefix"},
	} {
		t.Run(tc.wantKey, func(t *testing.T) {
			cfg := config.New()
			set := map[string]string{"jobmanager.bind-host": "127.0.0.1", "jobmanager.rpc.port": fmt.Sprint(port), "rest.bind-address": "127.0.0.1", "rest.port": "0"}
			for k, v := range tc.settings {
				set[k] = v
			}
			for k, v := range set {
				if err := cfg.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			// New refuses what it reads itself (the JobManager's own keys);
			// Run refuses the rest before binding.
			jm, err := New(Options{Config: cfg, WorkDir: t.TempDir()})
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err = jm.Run(ctx)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantKey) || strings.Contains(err.Error(), "rpc.port") {
				t.Fatalf("Run: %v, want an error naming %s before any port is bound", err, tc.wantKey)
			}
		})
	}
}

// TestReloadAll: every reloader runs even after one fails, and each is
// reported.
func TestReloadAll(t *testing.T) {
	var ran []string
	rl := func(name string, err error) Reloader {
		return Reloader{Name: name, Kind: ReloadPolicy, Reload: func() error { ran = append(ran, name); return err }}
	}
	results, ok := reloadAll([]Reloader{rl("a", nil), rl("b", fmt.Errorf("broken")), rl("c", nil)})
	if ok || len(ran) != 3 || len(results) != 3 {
		t.Fatalf("ok %v, ran %v, results %+v", ok, ran, results)
	}
	if !results[0].OK || results[1].OK || !strings.Contains(results[1].Error, "broken") || !results[2].OK {
		t.Errorf("results %+v", results)
	}
	if _, ok := reloadAll(nil); !ok {
		t.Error("nothing to reload is not a failure")
	}
}
