package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchCheckpointJSON runs `sluice bench checkpoint` with tiny settings
// (an in-process cluster, seconds of work, 10k keys in state) and checks
// that its one JSON object has every field with a sane value. It asserts no
// speed: only that each figure was measured.
func TestBenchCheckpointJSON(t *testing.T) {
	out, stderr, err := runCLI(t, "--log-level", "error", "bench", "checkpoint",
		"--duration", "1s", "--rounds", "1", "--keys", "1000", "--state-keys", "10000")
	if err != nil {
		t.Fatalf("bench checkpoint: %v\nstderr:\n%s", err, stderr)
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Fatalf("want one JSON object on one line, got %d lines:\n%s", n+1, out)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, out)
	}
	num := func(key string) float64 {
		t.Helper()
		v, ok := res[key].(float64)
		if !ok {
			t.Fatalf("field %s: want a number, got %#v in\n%s", key, res[key], out)
		}
		return v
	}
	for _, key := range []string{"records_per_sec_baseline", "records_per_sec_checkpointing", "ratio", "ratio_median_of_rounds", "checkpoints_completed",
		"pebble_incremental_first_size_bytes", "pebble_incremental_second_size_bytes", "pebble_incremental_third_size_bytes", "recovery_ms", "recovery_restored_checkpoint"} {
		if v := num(key); v <= 0 {
			t.Errorf("%s = %v, want > 0", key, v)
		}
	}
	if r := num("ratio"); r > 10 {
		t.Errorf("ratio = %v: not a ratio of two measured rates", r)
	}
	for _, key := range []string{"alignment_p99_ms", "recovery_detection_ms"} {
		if v := num(key); v < 0 || v > 60_000 {
			t.Errorf("%s = %v, want 0..60000", key, v)
		}
	}
	if v := num("state_keys"); v != 10000 {
		t.Errorf("state_keys = %v, want the --state-keys given, 10000", v)
	}
	if m, _ := res["recovery_method"].(string); m == "" {
		t.Errorf("recovery_method is empty: the result must say how recovery_ms was measured")
	}
	for _, field := range []string{"checkpoint_duration_ms", "checkpoint_size_bytes"} {
		m, ok := res[field].(map[string]any)
		if !ok {
			t.Fatalf("%s: want an object by backend, got %#v", field, res[field])
		}
		for _, backend := range []string{"hashmap", "pebble_full", "pebble_incremental"} {
			v, ok := m[backend].(float64)
			switch {
			case !ok:
				t.Errorf("%s.%s missing in\n%s", field, backend, out)
			case field == "checkpoint_size_bytes" && v <= 0:
				t.Errorf("%s.%s = %v, want > 0", field, backend, v)
			case v < 0 || v > 600_000:
				t.Errorf("%s.%s = %v, want 0..600000", field, backend, v)
			}
		}
	}
	states, _ := res["state_checkpoints"].(map[string]any)
	for _, backend := range []string{"hashmap", "pebble_full", "pebble_incremental"} {
		run, _ := states[backend].(map[string]any)
		var cps []map[string]any
		for _, which := range []string{"first", "second", "third"} {
			c, _ := run[which].(map[string]any)
			if c == nil {
				t.Fatalf("state_checkpoints.%s.%s missing in\n%s", backend, which, out)
			}
			cps = append(cps, c)
		}
		for i, c := range cps {
			id, written, size := c["id"].(float64), c["checkpointed_size_bytes"].(float64), c["state_size_bytes"].(float64)
			if i > 0 && id <= cps[i-1]["id"].(float64) || id < 1 {
				t.Errorf("state_checkpoints.%s: checkpoint ids %v, %v, %v: want increasing ids >= 1", backend, cps[0]["id"], cps[1]["id"], cps[2]["id"])
			}
			switch {
			case size <= 0 || written <= 0:
				t.Errorf("state_checkpoints.%s: checkpoint %v wrote %v of %v bytes, want > 0", backend, id, written, size)
			case backend != "pebble_incremental" && written != size:
				t.Errorf("state_checkpoints.%s: checkpoint %v wrote %v bytes but references %v: a full checkpoint writes all it references", backend, id, written, size)
			case backend == "pebble_incremental" && i == 0 && written != size:
				t.Errorf("state_checkpoints.%s: the first checkpoint wrote %v of %v bytes: it has no earlier one to share files with", backend, written, size)
			case written > size:
				t.Errorf("state_checkpoints.%s: checkpoint %v wrote %v bytes, more than the %v it references", backend, id, written, size)
			}
		}
		if backend == "pebble_incremental" {
			// checkpointed_size is what a checkpoint wrote, not the files it
			// shares with the one before. A compaction between two
			// checkpoints rewrites files, so one of the two after the first
			// may upload everything, but not both.
			shared := false
			for _, c := range cps[1:] {
				shared = shared || c["checkpointed_size_bytes"].(float64) < c["state_size_bytes"].(float64)
			}
			if !shared {
				t.Errorf("state_checkpoints.%s: neither the second nor the third checkpoint wrote fewer bytes than it references: %v, %v", backend, cps[1], cps[2])
			}
		}
	}
}

// TestBenchCheckpointFlags: a setting the bench cannot run with is refused
// with the flag to fix.
func TestBenchCheckpointFlags(t *testing.T) {
	for _, args := range [][]string{{"--duration", "0s"}, {"--rounds", "0"}, {"--state-keys", "10"}, {"--parallelism", "0"}} {
		_, _, err := runCLI(t, append([]string{"bench", "checkpoint"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: want an error naming the flag, got %v", args, err)
		}
	}
}
