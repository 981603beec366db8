package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// kafkaProps renders `properties.*` options, one per line, indented for an operator.
func kafkaProps(props map[string]string) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "    properties.%s: '%s'\n", k, strings.ReplaceAll(props[k], "'", "''"))
	}
	return b.String()
}

// kafkaCopyJob reads topic in (bounded: up to the offsets at start) and writes every record
// to topic out, with its key field and a header.
func kafkaCopyJob(name, in, out string, props map[string]string, sinkExtra string) string {
	p := kafkaProps(props)
	return fmt.Sprintf(`name: %s
operators:
  - name: src
    type: kafka
    topic: %s
    format: json
    fields: [id, word]
    headers: [origin]
    metadata: [partition]
    scan.startup.mode: earliest-offset
    scan.bounded.mode: latest-offset
%s  - name: shape
    type: map
    input: src
    fields:
      id: id
      word: word
      origin: origin
  - name: dst
    type: kafka
    input: shape
    topic: %s
    format: json
    key: string(id)
    headers: [origin]
%s%s`, name, in, p, out, p, sinkExtra)
}

func writeJobFile(t *testing.T, spec string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(f, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// kafkaInput is n JSON records {"id":i,"word":"w<i>"} for topic in, each with header
// origin=test.
func kafkaInput(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"id":%d,"word":"w%d"}`, i, i)
	}
	return out
}

// TestKafkaTopicToTopicParallel: a bounded job reads topic in (8 partitions) and writes
// topic out at -p 4 across two TaskManagers; every record arrives once, intact: value, key
// from the expression, header, and the Kafka timestamp as the record's time.
func TestKafkaTopicToTopicParallel(t *testing.T) {
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"in": 8, "out": 3}})
	const n = 2000
	kb.produce(t, "in", kafkaInput(n))
	c := startCluster(t, 2, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// fetch.min.bytes means something to Kafka's Java client only: accepted, with a warning.
	job := writeJobFile(t, kafkaCopyJob("copy", "in", "out", map[string]string{"bootstrap.servers": kb.addr, "fetch.min.bytes": "1"}, ""))
	stdout, stderr, code := c.sluice(ctx, "run", job, "-p", "4")
	if code != 0 {
		t.Fatalf("sluice run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "warning: job ") || !strings.Contains(stderr, "properties.fetch.min.bytes") {
		t.Errorf("sluice run does not warn about the unknown property properties.fetch.min.bytes:\n%s", stderr)
	}
	got := kb.readCommitted(t, "out", n, 30*time.Second)
	if len(got) != n {
		t.Fatalf("out has %d records, want %d", len(got), n)
	}
	seen := map[string]bool{}
	for _, r := range got {
		v := string(r.Value)
		if seen[v] {
			t.Fatalf("record %s written twice", v)
		}
		seen[v] = true
		var id int
		if _, err := fmt.Sscanf(v, `{"id":%d,"word":`, &id); err != nil {
			t.Fatalf("record %q: %v", v, err)
		}
		if want := fmt.Sprintf(`{"id":%d,"word":"w%d","origin":"test"}`, id, id); v != want {
			t.Fatalf("record %q, want %q", v, want)
		}
		if string(r.Key) != fmt.Sprint(id) {
			t.Fatalf("record %d has key %q", id, r.Key)
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != "origin" || string(r.Headers[0].Value) != "test" {
			t.Fatalf("record %d has headers %v, want origin=test", id, r.Headers)
		}
		if ts := r.Timestamp.UnixMilli(); ts != kafkaEpochMillis+int64(id) {
			t.Fatalf("record %d has timestamp %d, want the input's %d", id, ts, kafkaEpochMillis+int64(id))
		}
	}
	// Both TaskManagers ran a share of the four subtasks.
	for i, tm := range c.tms {
		if !strings.Contains(tm.Log(), "kafka source assigned") {
			t.Errorf("taskmanager %d ran no kafka source subtask", i+1)
		}
	}
}

// TestKafkaWordcountExample runs examples/kafka-wordcount.yaml (bounded) at -p 2 and
// compares the counts in the output topic with the shell pipeline's.
func TestKafkaWordcountExample(t *testing.T) {
	input := writeSample(t)
	want := referenceCounts(t, input)
	b, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"lines": 3, "word-counts": 2}})
	kb.produce(t, "lines", lines)
	c := startCluster(t, 1, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", "examples/kafka-wordcount.yaml", "-p", "2", "--param", "bootstrap="+kb.addr)
	if code != 0 {
		t.Fatalf("sluice run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	recs := kb.readCommitted(t, "word-counts", len(want), 30*time.Second)
	var got []string
	for _, r := range recs {
		var v struct {
			Word  string `json:"word"`
			Count int    `json:"count"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		if string(r.Key) != v.Word {
			t.Fatalf("record %q has key %q, want the word", r.Value, r.Key)
		}
		got = append(got, fmt.Sprintf("%s %d", v.Word, v.Count))
	}
	slices.Sort(got)
	equalLines(t, got, want)
}
