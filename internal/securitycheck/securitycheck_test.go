package securitycheck

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/security/diag"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
)

// TestStartupFindingIsStartupError: what the JobManager's start-up refuses
// is a Fail finding whose message is start-up's own error, and the TLS
// check does not report the refused store as merely "not configured".
func TestStartupFindingIsStartupError(t *testing.T) {
	tests := map[string]map[string]string{
		"truststore without keystore": {"security.ssl.internal.enabled": "true", "security.ssl.internal.truststore": "/nonexistent/ca.crt"},
		"keystore that does not load": {"security.ssl.internal.enabled": "true", "security.ssl.internal.keystore": "/nonexistent/ks.pem", "security.ssl.internal.truststore": "/nonexistent/ca.crt"},
		"bad authorization mode":      {"security.authorization.mode": "nosuchmode"},
		"keytab without principal":    {"security.kerberos.login.keytab": "/nonexistent/sluice.keytab"},
	}
	for name, settings := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := config.New()
			for k, v := range settings {
				if err := cfg.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			// What start-up says: the internal TLS set-up, then the rest.
			startErr := func() error {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if _, err := internaltls.SetupJobManager(ctx, cfg, slog.New(slog.DiscardHandler), t.TempDir()); err != nil {
					return err
				}
				return jobmanager.Validate(ctx, cfg, nil)
			}()
			if startErr == nil {
				t.Fatal("start-up accepts the configuration")
			}
			f := Run(context.Background(), Options{Config: cfg, Role: RoleJobManager, Now: time.Now(), Getenv: func(string) string { return "" }})
			if f.Failed() == 0 {
				t.Fatalf("no failure:\n%s", render(f))
			}
			found := false
			for _, x := range f {
				if x.Level == diag.Fail && x.Subject == "JobManager start-up" && x.Message == startErr.Error() {
					found = true
				}
				if x.Level == diag.Skip && strings.Contains(x.Message, "internal") && settings["security.ssl.internal.enabled"] == "true" {
					t.Errorf("refused internal TLS reported as skipped: %s", x)
				}
			}
			if !found {
				t.Errorf("no JobManager start-up failure with %q:\n%s", startErr, render(f))
			}
		})
	}
}

func render(f diag.Findings) string {
	var b strings.Builder
	_ = f.Print(&b)
	return b.String()
}
