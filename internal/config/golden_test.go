package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.bad.yaml.err from the current errors")

// TestBadConfigs loads each testdata/*.bad.yaml and compares the error with
// the text in the matching .err file.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("found %d bad configs, want at least 8", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, nil)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if *update {
				if err := os.WriteFile(f+".err", []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(f + ".err")
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got := err.Error(); got != strings.TrimSpace(string(want)) {
				t.Errorf("error:\n got: %s\nwant: %s", got, strings.TrimSpace(string(want)))
			}
		})
	}
}

// TestGoodConfig checks that a full example file loads without warnings.
func TestGoodConfig(t *testing.T) {
	c, err := Load("testdata/good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	if got := c.Int("jobmanager.rpc.port"); got != 6124 {
		t.Errorf("jobmanager.rpc.port = %d", got)
	}
	if got := c.StringList("security.kerberos.login.contexts"); strings.Join(got, "|") != "KafkaClient|Client" {
		t.Errorf("contexts = %q", got)
	}
	raw, ok := c.Raw("rest.listeners")
	list, _ := raw.([]any)
	if !ok || len(list) != 2 {
		t.Fatalf("rest.listeners = %#v, %v", raw, ok)
	}
	if m, _ := list[1].(map[string]any); m["name"] != "admin" || m["port"] != 9443 {
		t.Errorf("rest.listeners[1] = %#v", list[1])
	}
}
