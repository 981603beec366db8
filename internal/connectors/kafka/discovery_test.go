package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// TestKafkaDiscovery runs an unbounded topic-pattern source in-process against kfake with
// scan.topic-partition-discovery.interval 1 s: partitions added to a matching topic and a
// matching topic created while the job runs are read (their records written before the
// discovery too), and a topic outside the pattern never is.
func TestKafkaDiscovery(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "logs-a"), kfake.SeedTopics(1, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce := func(topic string, partition int32, values ...string) {
		t.Helper()
		// A new client per call: it sees partitions added since.
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for _, v := range values {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce to %s/%d: %v", topic, partition, err)
			}
		}
	}
	produce("logs-a", 0, "a0")

	spec := fmt.Sprintf(`name: discover
operators:
  - {name: src, type: kafka, topic-pattern: 'logs-.*', format: raw, metadata: [topic, partition], scan.startup.mode: earliest-offset, scan.topic-partition-discovery.interval: 1s, properties.bootstrap.servers: '%[1]s', parallelism: 2}
  - {name: dst, type: kafka, input: src, topic: out, format: json, properties.bootstrap.servers: '%[1]s', parallelism: 1}
`, addr)
	jctx, jcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dataflow.RunLocal(jctx, mustPlan(t, spec, nil, 2), nil) }()
	defer func() {
		jcancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("RunLocal: %v", err)
		}
	}()

	rd, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	seen := map[string]bool{}
	waitFor := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			missing := 0
			for _, w := range want {
				if !seen[w] {
					missing++
				}
			}
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("out lacks records after 45s: want %v, have %v", want, seen)
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
				v := string(r.Value)
				if seen[v] {
					t.Errorf("%s twice", v)
				}
				seen[v] = true
			})
			pcancel()
		}
	}
	waitFor(`{"value":"a0","topic":"logs-a","partition":0}`)

	adm := kadm.NewClient(func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}())
	defer adm.Close()
	if _, err := adm.CreatePartitions(ctx, 2, "logs-a"); err != nil { // 3 partitions now
		t.Fatal(err)
	}
	for _, topic := range []string{"logs-b", "other"} {
		if r, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
	}
	produce("logs-a", 1, "a1")
	produce("logs-a", 2, "a2")
	produce("logs-b", 0, "b0")
	produce("logs-b", 1, "b1")
	produce("other", 0, "x0")
	waitFor(`{"value":"a1","topic":"logs-a","partition":1}`, `{"value":"a2","topic":"logs-a","partition":2}`,
		`{"value":"b0","topic":"logs-b","partition":0}`, `{"value":"b1","topic":"logs-b","partition":1}`)
	// Records written to a discovered partition later come too.
	produce("logs-b", 1, "b1-later")
	waitFor(`{"value":"b1-later","topic":"logs-b","partition":1}`)
	for v := range seen {
		if strings.Contains(v, `"other"`) {
			t.Errorf("a topic outside topic-pattern was read: %s", v)
		}
	}
}
