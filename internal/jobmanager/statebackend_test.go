package jobmanager_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStateBackendType: state.backend.type hashmap runs a keyed job; pebble and rocksdb (its
// alias) are refused at submit, naming the key and saying pebble is not built yet, rather than
// running on hashmap.
func TestStateBackendType(t *testing.T) {
	c, base := startCluster(t, nil)
	for _, typ := range []string{"pebble", "rocksdb"} {
		code, out := submitKeyedCount(t, base, 2, map[string]string{"state.backend.type": typ})
		if code != http.StatusBadRequest || !strings.Contains(out, `state.backend.type \"`+typ+`\"`) ||
			!strings.Contains(out, "pebble state backend is not built yet") || !strings.Contains(out, "state.backend.type=hashmap") {
			t.Errorf("state.backend.type=%s: %d %s", typ, code, out)
		}
	}
	code, out := submitKeyedCount(t, base, 2, map[string]string{"state.backend.type": "hashmap"})
	if code != http.StatusAccepted {
		t.Fatalf("submit with hashmap: %d %s", code, out)
	}
	var sub struct{ JobID string }
	json.Unmarshal([]byte(out), &sub)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if state, cause, err := c.JM.Wait(ctx, sub.JobID); err != nil || state != "FINISHED" {
		t.Fatalf("job ended %s (%s) %v", state, cause, err)
	}
}
