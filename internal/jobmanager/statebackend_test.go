package jobmanager_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestStateBackendType: every state.backend.type runs a keyed job to the end: hashmap,
// pebble and rocksdb (pebble's alias).
func TestStateBackendType(t *testing.T) {
	c, base := startCluster(t, nil)
	for _, typ := range []string{"hashmap", "pebble", "rocksdb"} {
		code, out := submitKeyedCount(t, base, 2, map[string]string{"state.backend.type": typ})
		if code != http.StatusAccepted {
			t.Fatalf("submit with %s: %d %s", typ, code, out)
		}
		var sub struct{ JobID string }
		json.Unmarshal([]byte(out), &sub)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if state, cause, err := c.JM.Wait(ctx, sub.JobID); err != nil || state != "FINISHED" {
			t.Fatalf("%s: job ended %s (%s) %v", typ, state, cause, err)
		}
	}
}
