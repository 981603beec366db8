package config

import (
	"strings"
	"testing"
)

func TestStateBackendKeys(t *testing.T) {
	base := New()
	if got := base.String("state.backend.type"); got != "hashmap" {
		t.Errorf("state.backend.type default = %q, want hashmap", got)
	}
	if base.Bool("state.backend.incremental") {
		t.Error("state.backend.incremental defaults to true")
	}
	for _, v := range []string{"hashmap", "pebble", "rocksdb", "RocksDB"} {
		c, err := base.WithJobSettings(map[string]string{"state.backend.type": v, "state.backend.incremental": "true"})
		if err != nil {
			t.Fatalf("job setting state.backend.type=%s: %v", v, err)
		}
		if got := c.String("state.backend.type"); got != strings.ToLower(v) {
			t.Errorf("state.backend.type=%s read back as %q", v, got)
		}
		if !c.Bool("state.backend.incremental") {
			t.Errorf("state.backend.incremental not applied as a job setting")
		}
	}
	if _, err := base.WithJobSettings(map[string]string{"state.backend.type": "memory"}); err == nil || !strings.Contains(err.Error(), "state.backend.type") {
		t.Errorf("unknown backend: %v, want an error naming state.backend.type", err)
	}
}
