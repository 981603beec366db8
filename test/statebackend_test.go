package test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestStateBackendSetting: sluice run -D state.backend.type=hashmap runs the keyed wordcount
// with its counts in the hashmap backend; pebble and rocksdb are refused at submit, naming the
// key and saying pebble is not built yet, instead of running on hashmap.
func TestStateBackendSetting(t *testing.T) {
	c := startCluster(t, 1, 2)
	input := writeSample(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	wordcountWithSetting(ctx, t, c, "state.backend.type=hashmap", "2", input)

	for _, typ := range []string{"pebble", "rocksdb"} {
		_, stderr, code := c.sluice(ctx, "run", "-D", "state.backend.type="+typ, "examples/wordcount.yaml", "-p", "2",
			"--param", "input="+input)
		if code == 0 || !strings.Contains(stderr, `state.backend.type "`+typ+`"`) ||
			!strings.Contains(stderr, "pebble state backend is not built yet") || !strings.Contains(stderr, "state.backend.type=hashmap") {
			t.Errorf("run -D state.backend.type=%s: exit %d, want a refusal naming the key: %s", typ, code, stderr)
		}
	}
}
