package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNexmarkAcrossTaskManagers runs nexmark -> filter (bids) -> key_by a nested field ->
// json file sink at -p 2 on two TaskManagers of one slot each, so records with nested
// objects cross the network between them, and checks the output is exactly the bid lines
// of `sluice nexmark generate` with the same seed.
func TestNexmarkAcrossTaskManagers(t *testing.T) {
	const events = 20000
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ref, stderr, code := runSluice(ctx, t, "nexmark", "generate", "--events", fmt.Sprint(events), "--seed", "4")
	if code != 0 {
		t.Fatalf("sluice nexmark generate: exit %d\n%s", code, stderr)
	}
	var want []string
	all := strings.Split(strings.TrimSuffix(ref, "\n"), "\n")
	if len(all) != events {
		t.Fatalf("generate wrote %d lines, want %d", len(all), events)
	}
	for _, l := range all {
		if strings.HasPrefix(l, `{"event_type":2,`) {
			want = append(want, l)
		}
	}
	if len(want) != events*46/50 {
		t.Fatalf("%d bids among %d events, want 92 %%", len(want), events)
	}

	c := startCluster(t, 2, 1)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	spec := filepath.Join(dir, "nexmark.yaml")
	if err := os.WriteFile(spec, []byte(fmt.Sprintf(`name: nexmark-bids
operators:
  - {name: events, type: nexmark, events: %d, seed: 4}
  - {name: bids, type: filter, input: events, expr: 'event_type == 2'}
  - {name: by-auction, type: key_by, input: bids, key: bid.auction}
  - {name: out, type: file, input: by-auction, format: json, path: %s}
`, events, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := c.sluice(ctx, "run", spec, "-p", "2")
	if code != 0 {
		t.Fatalf("sluice run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	if len(entries) != 2 {
		t.Errorf("%d part files, want one per sink subtask (2): %v", len(entries), entries)
	}
	equalLines(t, sortedLines(strings.Join(got, "\n")), sortedLines(strings.Join(want, "\n")))
	// Two slots of two one-slot TaskManagers: the job was spread over both.
	if !regexpMatch(`msg="job scheduled" .* tasks=4 slots=2`, c.jm.Log()) {
		t.Errorf("the job did not take a slot on each TaskManager:\n%s", c.jm.Log())
	}
}

// TestNexmarkGenerateFlags: bad flags of sluice nexmark generate name the flag and what it
// wants; --output writes the same bytes as standard output.
func TestNexmarkGenerateFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for args, want := range map[string]string{
		"--events 0":                        "--events 0: want a positive number of events",
		"--events 5 --base-time yesterday":  `--base-time "yesterday": want an RFC 3339 time`,
		"--events 5 --rate -1":              "--rate -1: want events a second >= 0",
		"--events 5 --first-event-rate -10": "--first-event-rate -10: want events a second of event time >= 0",
	} {
		_, stderr, code := runSluice(ctx, t, append([]string{"nexmark", "generate"}, strings.Fields(args)...)...)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("generate %s: exit %d, stderr %q, want %q", args, code, stderr, want)
		}
	}
	file := filepath.Join(t.TempDir(), "events.json")
	stdout, stderr, code := runSluice(ctx, t, "nexmark", "generate", "--events", "300", "--seed", "9", "--rate", "500")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, stderr, code := runSluice(ctx, t, "nexmark", "generate", "--events", "300", "--seed", "9", "--rate", "500", "--output", file); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil || string(b) != stdout {
		t.Errorf("--output wrote %d bytes (%v), standard output had %d", len(b), err, len(stdout))
	}
	// --rate sets the event-time rate: 500 events a second, event 299 at 598 ms.
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if !strings.Contains(lines[299], `"dateTime":1735689600598,`) {
		t.Errorf("event 299 at 500 events/s: %s", lines[299])
	}
}

// TestNexmarkExactlyOnceAfterKill: a paced nexmark job with checkpoints at -p 2 loses a
// TaskManager mid-run; restored from a checkpoint, its committed output is still exactly the
// bids of `sluice nexmark generate` with the same seed and rate: the source resumes each
// split at its checkpointed event.
func TestNexmarkExactlyOnceAfterKill(t *testing.T) {
	t.Parallel()
	const events, rate = 40000, 4000
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ref, stderr, code := runSluice(ctx, t, "nexmark", "generate", "--events", fmt.Sprint(events), "--seed", "8", "--rate", fmt.Sprint(rate))
	if code != 0 {
		t.Fatalf("sluice nexmark generate: exit %d\n%s", code, stderr)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSuffix(ref, "\n"), "\n") {
		if strings.HasPrefix(l, `{"event_type":2,`) {
			want = append(want, l)
		}
	}

	c, _ := checkpointCluster(t, 2, false)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	spec := filepath.Join(dir, "nexmark.yaml")
	if err := os.WriteFile(spec, []byte(fmt.Sprintf(`name: nexmark-bids
config:
  execution.checkpointing.interval: 500 ms
operators:
  - {name: events, type: nexmark, events: %d, rate: %d, seed: 8}
  - {name: bids, type: filter, input: events, expr: 'event_type == 2'}
  - {name: by-auction, type: key_by, input: bids, key: bid.auction}
  - {name: out, type: file, input: by-auction, format: json, path: %s}
`, events, rate, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	id := runDetached(t, c, spec, "-p", "2")
	waitCheckpoints(t, c, id, 2)
	if s := c.jobState(id); s != "RUNNING" {
		t.Fatalf("job %s before the kill, want RUNNING: the test would restore nothing", s)
	}
	c.tms[0].Kill()
	c.addTM()
	waitJobState(t, c, id, "FINISHED", 2*time.Minute)
	if _, _, restored, _ := checkpointCounts(c, id); restored < 1 {
		t.Errorf("the job did not restore a checkpoint after the kill")
	}
	got := committedLines(t, out)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		seen := map[string]int{}
		for _, l := range got {
			seen[l]++
		}
		dup, missing := 0, 0
		for _, l := range want {
			switch seen[l] {
			case 0:
				missing++
			case 1:
			default:
				dup++
			}
		}
		t.Fatalf("committed output: %d lines, want %d (%d missing, %d duplicated)", len(got), len(want), missing, dup)
	}
}
