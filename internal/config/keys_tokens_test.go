package config

import (
	"os"
	"strings"
	"testing"
)

// TestDelegationTokenKeysDocumented: every delegation-token key is in docs/configuration.md
// (the per-provider enabled and expiry-action keys by their <service> row).
func TestDelegationTokenKeysDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ki := range allKeys() {
		if !strings.HasPrefix(ki.Name, "security.delegation.") {
			continue
		}
		n++
		name := ki.Name
		for _, svc := range DelegationTokenServices {
			for _, suffix := range []string{".enabled", ".expiry-action"} {
				if name == "security.delegation.token.provider."+svc+suffix {
					name = "security.delegation.token.provider.<service>" + suffix
				}
			}
		}
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("docs/configuration.md has no row for %s", name)
		}
	}
	if n < 10 {
		t.Errorf("found %d delegation-token keys, want at least 10", n)
	}
}

func TestDelegationTokenKeys(t *testing.T) {
	c, err := Load("", []string{"security.delegation.tokens.renewal.time-ratio=0.5", "security.kerberos.fetch.delegation-token=false"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Float("security.delegation.tokens.renewal.time-ratio") != 0.5 || c.Bool("security.delegation.tokens.enabled") {
		t.Fatalf("ratio %v enabled %v", c.Float("security.delegation.tokens.renewal.time-ratio"), c.Bool("security.delegation.tokens.enabled"))
	}
	for _, bad := range []string{"security.delegation.tokens.renewal.time-ratio=1", "security.delegation.token.provider.kafka.expiry-action=ignore"} {
		if _, err := Load("", []string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
