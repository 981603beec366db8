package taskmanager

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": true, "::1": true, "[::1]": true, "localhost": true, "LOCALHOST": true,
		"0.0.0.0": false, "*": false, "": false, "::": false, "10.0.0.1": false, "metrics.example": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// Off loopback, /metrics refuses to start without TLS, or with TLS but no
// authenticator, and the error names the keys to set.
func TestMetricsOffLoopbackNeedsSecurity(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]string
		want     []string
	}{
		{map[string]string{"taskmanager.metrics.bind-host": "0.0.0.0"},
			[]string{"taskmanager.metrics.bind-host", "security.ssl.rest.enabled", "security.ssl.rest.keystore", "security.rest.authentication.token.file"}},
		{map[string]string{"taskmanager.metrics.bind-host": "10.1.2.3", "security.ssl.rest.enabled": "true"},
			[]string{"security.ssl.rest.keystore"}},
	} {
		cfg := config.New()
		for k, v := range tc.settings {
			if err := cfg.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		tm, err := New(Options{Config: cfg, WorkDir: t.TempDir(), ID: "tm-1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tm.listenMetrics(context.Background())
		if err == nil {
			t.Fatalf("%v: /metrics started", tc.settings)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: the error does not name %s: %v", tc.settings, w, err)
			}
		}
	}
}

// On loopback /metrics is plain HTTP, also where the shared configuration
// file enables REST TLS without a key store on this host.
func TestMetricsLoopbackIgnoresRESTTLS(t *testing.T) {
	cfg := config.New()
	if err := cfg.Set("security.ssl.rest.enabled", "true"); err != nil {
		t.Fatal(err)
	}
	tm, err := New(Options{Config: cfg, WorkDir: t.TempDir(), ID: "tm-1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := tm.listenMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer m.listener.Close()
	if m.scheme != "http" || !strings.HasPrefix(m.listener.Addr().String(), "127.0.0.1:") {
		t.Errorf("loopback metrics: %s on %s", m.scheme, m.listener.Addr())
	}
}
