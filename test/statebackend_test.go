package test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestStateBackendSetting: sluice run -D state.backend.type=... runs the keyed wordcount with
// its counts in each backend (rocksdb is pebble's alias), with the same output; the
// TaskManager says once that rocksdb runs as pebble.
func TestStateBackendSetting(t *testing.T) {
	c := startCluster(t, 1, 2)
	input := writeSample(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, typ := range []string{"hashmap", "pebble", "rocksdb"} {
		wordcountWithSetting(ctx, t, c, "state.backend.type="+typ, "2", input)
	}
	c.waitFor(10*time.Second, "the TaskManager to say rocksdb runs as pebble", func() bool {
		return strings.Count(c.tms[0].Log(), "rocksdb runs as pebble") == 1
	})
}
