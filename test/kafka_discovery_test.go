package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaDiscoveryJob copies every topic matching logs-.* to topic out (raw, exactly-once),
// unbounded, discovering partitions and topics every second.
func kafkaDiscoveryJob(addr string) string {
	return fmt.Sprintf(`name: discover
config:
  execution.checkpointing.interval: 1 s
operators:
  - name: src
    type: kafka
    topic-pattern: 'logs-.*'
    format: raw
    scan.startup.mode: earliest-offset
    scan.topic-partition-discovery.interval: 1 s
    properties.bootstrap.servers: %[1]s
  - name: dst
    type: kafka
    input: src
    topic: out
    format: raw
    sink.delivery-guarantee: exactly-once
    sink.transactional-id-prefix: discover
    properties.bootstrap.servers: %[1]s
`, addr)
}

// produceTo writes values to one partition of topic, with a client made now (so it knows
// partitions added since).
func (kb *kafkaBroker) produceTo(t *testing.T, topic string, partition int32, values ...string) {
	t.Helper()
	cl := kb.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s partition %d: %v", topic, partition, err)
		}
	}
}

// TestKafkaPartitionDiscovery: a job reading topic-pattern logs-.* at -p 2 with
// scan.topic-partition-discovery.interval 1 s runs while the test adds partitions to
// logs-a and creates logs-b: their records (written before and after the discovery) arrive
// in out, once. A topic the pattern does not match whole (xlogs-c) is never read. The
// discovered partitions' offsets are in the checkpoints: after a stop with a savepoint and a
// restart from it, records written meanwhile arrive, none twice.
func TestKafkaPartitionDiscovery(t *testing.T) {
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"logs-a": 1, "out": 3}})
	c, _ := checkpointCluster(t, 2, false)
	kb.produceTo(t, "logs-a", 0, "a0-0")
	want := []string{"a0-0"}
	id := runDetached(t, c, writeJobFile(t, kafkaDiscoveryJob(kb.addr)), "-p", "2")
	waitJobState(t, c, id, "RUNNING", 30*time.Second)
	waitOut := func(what string) {
		t.Helper()
		c.waitFor(time.Minute, what, func() bool {
			return len(kb.readCommitted(t, "out", len(want), time.Second)) >= len(want)
		})
	}
	waitOut("the record of logs-a in out")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(kb.client(t))
	if resp, err := adm.CreatePartitions(ctx, 2, "logs-a"); err != nil || resp.Error() != nil {
		t.Fatalf("add 2 partitions to logs-a: %v %v", err, resp.Error())
	}
	for _, topic := range []string{"logs-b", "xlogs-c"} {
		if r, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("create topic %s: %v %v", topic, err, r.Err)
		}
	}
	// Written before the source can have discovered them: read from their start.
	kb.produceTo(t, "logs-a", 1, "a1-0")
	kb.produceTo(t, "logs-a", 2, "a2-0")
	kb.produceTo(t, "logs-b", 0, "b0-0")
	kb.produceTo(t, "logs-b", 1, "b1-0")
	kb.produceTo(t, "xlogs-c", 0, "c0-0")
	want = append(want, "a1-0", "a2-0", "b0-0", "b1-0")
	waitOut("the records of the added partitions and the new topic in out")
	c.waitFor(30*time.Second, "a TaskManager logs the discovery", func() bool {
		for _, tm := range c.tms {
			if strings.Contains(tm.Log(), "kafka source discovered partitions") {
				return true
			}
		}
		return false
	})
	// Then more, to the discovered partitions.
	kb.produceTo(t, "logs-a", 2, "a2-1")
	kb.produceTo(t, "logs-b", 1, "b1-1")
	want = append(want, "a2-1", "b1-1")
	waitOut("later records of the discovered partitions in out")

	sp := stopWithSavepoint(t, c, id, t.TempDir())
	waitJobState(t, c, id, "FINISHED", 30*time.Second)
	kb.produceTo(t, "logs-a", 1, "a1-2")
	kb.produceTo(t, "logs-b", 0, "b0-2")
	kb.produceTo(t, "xlogs-c", 1, "c1-2")
	want = append(want, "a1-2", "b0-2")
	id = runDetached(t, c, writeJobFile(t, kafkaDiscoveryJob(kb.addr)), "-p", "2", "--fromSavepoint", sp)
	waitJobState(t, c, id, "RUNNING", 30*time.Second)
	waitOut("the records written while the job was stopped in out")

	got := kb.readCommitted(t, "out", len(want)+1, 3*time.Second)
	count := map[string]int{}
	for _, r := range got {
		count[string(r.Value)]++
	}
	for _, w := range want {
		if count[w] != 1 {
			t.Errorf("out holds %q %d times, want once", w, count[w])
		}
	}
	for v := range count {
		if strings.HasPrefix(v, "c") {
			t.Errorf("out holds %q of xlogs-c, a topic topic-pattern logs-.* does not match", v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("out holds %d records, want %d: %v", len(got), len(want), count)
	}
}
