package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchNexmarkJSON runs `sluice bench nexmark` with tiny settings on the
// test copy of a query and checks its one JSON object has every field the
// issue names, with values that agree. It asserts no speed.
func TestBenchNexmarkJSON(t *testing.T) {
	out, stderr, err := runCLI(t, "--log-level", "error", "bench", "nexmark", "--dir", "../../internal/nexmarkbench/testdata",
		"--query", "q0", "--events", "20000", "--parallelism", "2", "--checkpoint-interval", "100ms")
	if err != nil {
		t.Fatalf("bench nexmark: %v\nstderr:\n%s", err, stderr)
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Fatalf("want one JSON object on one line, got %d lines:\n%s", n+1, out)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, out)
	}
	if res["query"] != "q0" {
		t.Errorf("query = %#v, want q0", res["query"])
	}
	num := func(key string) float64 {
		t.Helper()
		v, ok := res[key].(float64)
		if !ok {
			t.Fatalf("field %s: want a number, got %#v in\n%s", key, res[key], out)
		}
		return v
	}
	for _, key := range []string{"seconds", "events_per_sec", "cpu_seconds", "events_per_core_sec", "ratio_to_flink"} {
		if v := num(key); v <= 0 {
			t.Errorf("%s = %v, want > 0", key, v)
		}
	}
	if v := num("events"); v != 20000 {
		t.Errorf("events = %v, want the --events given", v)
	}
	if v := num("flink_per_core"); v != 155000 {
		t.Errorf("flink_per_core = %v, want Flink's published q0 figure 155000", v)
	}
	if got, want := num("events_per_core_sec"), num("events")/num("cpu_seconds"); got < want*0.999 || got > want*1.001 {
		t.Errorf("events_per_core_sec = %v, want events / cpu_seconds = %v", got, want)
	}
	if v := num("checkpoint_interval_ms"); v != 100 {
		t.Errorf("checkpoint_interval_ms = %v, want 100", v)
	}
}

func TestBenchNexmarkFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--query: name a query"},
		{[]string{"--query", "q0", "--all"}, "give one of them"},
		{[]string{"--query", "q0", "--parallelism", "0"}, "--parallelism at least 1"},
		{[]string{"--query", "q0", "--dir", "/nonexistent"}, "--query names a spec qN.yaml in --dir"},
	} {
		_, _, err := runCLI(t, append([]string{"--log-level", "error", "bench", "nexmark"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench nexmark %v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
