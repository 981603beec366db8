package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Layers apply in order after the file and before -D; a password kept in a
// layer (a Kubernetes Secret) is read as if it were in the file.
func TestLoadLayers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := write("config.yaml", "rest.port: 8081\nsecurity.ssl.internal.keystore: /opt/ks.p12\n")
	layer := write("secrets.yaml", "security.ssl.internal.keystore-password: s3cret\nrest.port: 9000\n")
	c, err := LoadLayers(base, []string{layer}, []string{"rest.port=9100"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.String("security.ssl.internal.keystore-password"); got != "s3cret" {
		t.Errorf("password from the layer: %q", got)
	}
	if got := c.Int("rest.port"); got != 9100 {
		t.Errorf("rest.port %d: -D must win over the layer", got)
	}
	c, _ = LoadLayers(base, []string{layer}, nil)
	if got := c.Int("rest.port"); got != 9000 {
		t.Errorf("rest.port %d: the layer must win over the file", got)
	}
	if _, err := LoadLayers(base, []string{filepath.Join(dir, "missing.yaml")}, nil); err == nil {
		t.Error("a missing layer is not an error")
	}
	bad := write("bad.yaml", "security.ssl.internal.keystore-pasword: x\n")
	if _, err := LoadLayers(base, []string{bad}, nil); err == nil {
		t.Error("a misspelt security key in a layer is not an error")
	}
}

func TestSetKeysUnset(t *testing.T) {
	c := New()
	if err := c.Set("security.ssl.keystore", "/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("rest.port", "1"); err != nil {
		t.Fatal(err)
	}
	if got := c.SetKeys(); !slices.Equal(got, []string{"rest.port", "security.ssl.keystore"}) {
		t.Errorf("SetKeys %v", got)
	}
	if c.String("security.ssl.internal.keystore") != "/a" {
		t.Fatal("fallback not applied")
	}
	c.Unset("security.ssl.keystore")
	if c.String("security.ssl.internal.keystore") != "" || c.IsSet("security.ssl.keystore") {
		t.Error("Unset left the value")
	}
	if !slices.Contains(KeyNames(), "kubernetes.cluster-id") {
		t.Error("KeyNames lacks kubernetes.cluster-id")
	}
}
