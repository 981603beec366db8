package test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaEOSJob copies topic in to topic out, unbounded, with exactly-once delivery.
func kafkaEOSJob(addr, delivery string) string {
	extra := "    sink.delivery-guarantee: " + delivery + "\n"
	if delivery == "exactly-once" {
		extra += "    sink.transactional-id-prefix: eos-copy\n"
	}
	return fmt.Sprintf(`name: eos-copy
config:
  execution.checkpointing.interval: 1 s
operators:
  - name: src
    type: kafka
    topic: in
    format: raw
    properties.bootstrap.servers: %[1]s
    properties.group.id: eos-copy
    scan.startup.mode: earliest-offset
  - name: dst
    type: kafka
    input: src
    topic: out
    format: raw
    properties.bootstrap.servers: %[1]s
%[2]s`, addr, extra)
}

// TestKafkaExactlyOnceAfterKill: a Kafka-to-Kafka job with 1 s checkpoints and an
// exactly-once sink runs while the test produces its input; a TaskManager running part of
// it is killed with SIGKILL mid-run and the job recovers from its latest checkpoint on the
// others. Read with read_committed, the output holds every input record exactly once.
func TestKafkaExactlyOnceAfterKill(t *testing.T) {
	t.Parallel()
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"in": 4, "out": 4}})
	c, _ := checkpointCluster(t, 2, false)
	id := runKafkaJob(t, c, kafkaEOSJob(kb.addr, "exactly-once"), "-p", "2")
	waitJobState(t, c, id, "RUNNING", time.Minute)

	// Produce 12000 records over about 12 s, in the background.
	const n = 12000
	cl := kb.client(t)
	var wg sync.WaitGroup
	produced := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for i := 0; i < n; i += 100 {
			recs := make([]*kgo.Record, 100)
			for j := range recs {
				recs[j] = &kgo.Record{Topic: "in", Value: []byte(fmt.Sprintf("r%05d", i+j))}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		produced <- nil
	}()
	t.Cleanup(wg.Wait)

	waitCheckpoints(t, c, id, 2)
	// Kill a TaskManager that runs a subtask, mid-run.
	victim := c.tms[0]
	if !strings.Contains(victim.Log(), "kafka source assigned") {
		victim = c.tms[1]
	}
	victim.Kill()
	c.addTM()
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}

	got := kb.readCommitted(t, "out", n, 3*time.Minute)
	count := map[string]int{}
	for _, r := range got {
		count[string(r.Value)]++
	}
	var dup, missing []string
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("r%05d", i)
		switch count[v] {
		case 0:
			missing = append(missing, v)
		case 1:
		default:
			dup = append(dup, v)
		}
	}
	if len(dup) > 0 || len(missing) > 0 || len(got) != n {
		t.Fatalf("read_committed output: %d records for %d inputs; %d duplicated (e.g. %v), %d missing (e.g. %v)",
			len(got), n, len(dup), head(dup), len(missing), head(missing))
	}
	j := c.job(id)
	if r, _ := j["restarts"].(float64); r < 1 {
		t.Errorf("the job did not restart after the kill (restarts %v)", j["restarts"])
	}
	if _, _, restored, _ := checkpointCounts(c, id); restored < 1 {
		t.Errorf("the job did not restore a checkpoint after the kill")
	}
	// Nothing beyond the n records arrives later either (a leftover transaction committed
	// twice would).
	if more := kb.readCommitted(t, "out", n+1, 3*time.Second); len(more) != n {
		t.Fatalf("out holds %d records after the run, want %d", len(more), n)
	}
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

// TestKafkaRescale: an exactly-once Kafka-to-Kafka job is stopped with a savepoint and
// resumed from it at -p 2, then 4, then 1, with new input each round. The source's offsets
// move with their partitions to whichever subtask now reads them: read with read_committed,
// the output holds every input record exactly once.
func TestKafkaRescale(t *testing.T) {
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"in": 6, "out": 3}})
	c, _ := checkpointCluster(t, 2, false)
	spDir := t.TempDir()
	from := ""
	total := 0
	for round, p := range []string{"2", "4", "1"} {
		const batch = 600
		values := make([]string, batch)
		for i := range values {
			values[i] = fmt.Sprintf("r%05d", total+i)
		}
		kb.produce(t, "in", values)
		total += batch
		args := []string{writeJobFile(t, kafkaEOSJob(kb.addr, "exactly-once")), "-p", p}
		if from != "" {
			args = append(args, "--fromSavepoint", from)
		}
		id := runDetached(t, c, args...)
		waitJobState(t, c, id, "RUNNING", 30*time.Second)
		c.waitFor(time.Minute, fmt.Sprintf("round %d: %d records committed to out", round, total), func() bool {
			return len(kb.readCommitted(t, "out", total, time.Second)) >= total
		})
		from = stopWithSavepoint(t, c, id, spDir)
		waitJobState(t, c, id, "FINISHED", 30*time.Second)
	}
	got := kb.readCommitted(t, "out", total+1, 3*time.Second)
	count := map[string]int{}
	for _, r := range got {
		count[string(r.Value)]++
	}
	if len(got) != total || len(count) != total {
		var dup []string
		for v, n := range count {
			if n > 1 {
				dup = append(dup, v)
			}
		}
		t.Fatalf("out holds %d records (%d distinct) for %d inputs; duplicated: %v", len(got), len(count), total, head(dup))
	}
	// The offsets went to the group as a courtesy when checkpoints completed: all of in.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	offsets, err := kadm.NewClient(kb.client(t)).FetchOffsets(ctx, "eos-copy")
	if err != nil {
		t.Fatalf("fetch the group's offsets: %v", err)
	}
	var committed int64
	offsets.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != int64(total) {
		t.Errorf("group eos-copy committed offsets summing to %d, want %d (every record of in)", committed, total)
	}
}
