package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaLocalCopy runs a bounded kafka source into a kafka sink in-process (RunLocal),
// against an in-process kfake cluster, for each delivery guarantee: every record arrives
// once, read_committed (exactly-once without checkpointing commits at the end). Run it
// with -race: the source's fetch and commit goroutines and the producer's callbacks meet
// the task goroutine here. (The integration tests in test/ run the broker as a process.)
func TestKafkaLocalCopy(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "in"), kfake.SeedTopics(2, "out-none", "out-at-least-once", "out-exactly-once"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 3000
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf(`{"id":%d}`, i))}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, delivery := range []string{deliveryNone, deliveryAtLeastOnce, deliveryExactlyOnce} {
		t.Run(delivery, func(t *testing.T) {
			out := "out-" + delivery
			extra := ""
			if delivery == deliveryExactlyOnce {
				extra = ", sink.transactional-id-prefix: local-" + delivery
			}
			spec := fmt.Sprintf(`name: copy
operators:
  - {name: src, type: kafka, topic: in, format: json, fields: [id], key.fields: [k], metadata: [partition], scan.bounded.mode: latest-offset, properties.bootstrap.servers: '%[1]s', properties.max.partition.fetch.bytes: '65536', parallelism: 2}
  - {name: dst, type: kafka, input: src, topic: %[2]s, format: json, key.fields: [k], sink.delivery-guarantee: %[3]s, properties.bootstrap.servers: '%[1]s', properties.compression.type: lz4%[4]s, parallelism: 2}
`, addr, out, delivery, extra)
			if err := dataflow.RunLocal(ctx, mustPlan(t, spec, nil, 2), nil); err != nil {
				t.Fatal(err)
			}
			rd, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			seen := map[string]bool{}
			for len(seen) < n && ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				fs := rd.PollFetches(rctx)
				rcancel()
				if fs.NumRecords() == 0 {
					break
				}
				fs.EachRecord(func(r *kgo.Record) {
					v := string(r.Value)
					if seen[v] {
						t.Errorf("%s twice", v)
					}
					seen[v] = true
					var id, part int
					if _, err := fmt.Sscanf(v, `{"id":%d,"k":"%d","partition":%d}`, &id, new(int), &part); err != nil {
						t.Errorf("record %q: %v", v, err)
					} else if string(r.Key) != fmt.Sprint(id%7) {
						t.Errorf("record %q has key %q, want %d", v, r.Key, id%7)
					}
				})
			}
			if len(seen) != n {
				t.Fatalf("%s holds %d distinct records, want %d", out, len(seen), n)
			}
		})
	}
}

func mustPlan(t testing.TB, spec string, params map[string]string, par int) *dataflow.Plan {
	t.Helper()
	s, err := dataflow.ParseSpec([]byte(spec), params)
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	p, err := s.Plan(par)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}
