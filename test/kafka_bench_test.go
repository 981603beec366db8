package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/minicluster"
)

// The Kafka benchmarks run against the test broker's process (kfake), one run each:
//
//	go test -run '^$' -bench 'BenchmarkKafka' -benchtime 1x ./test/
//
// They report records/s as metrics, beside their limit measured in the same run: a bare
// franz-go consumer reading the same topic for the source, at-least-once beside
// exactly-once for the sink.

const kafkaBenchRecords = 2_000_000

// benchKafkaInput fills topic with n records of about 100 bytes.
func benchKafkaInput(b *testing.B, kb *kafkaBroker, topic string, n int) {
	b.Helper()
	cl := kb.client(b, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pad := strings.Repeat("x", 80)
	errs := make(chan error, 1)
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%09d %s", i, pad))}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// bareConsume reads n records of topic from the start with one franz-go client, as the
// source's consumer is configured, and returns records/s.
func bareConsume(b *testing.B, kb *kafkaBroker, topic string, n int) float64 {
	b.Helper()
	cl := kb.client(b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	got := 0
	for got < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		got += fs.NumRecords()
	}
	if got < n {
		b.Fatalf("bare consumer read %d of %d records", got, n)
	}
	return float64(n) / time.Since(start).Seconds()
}

// benchCluster is an in-process JobManager and two TaskManagers, as sluice bench nexmark
// uses, so the figures are the engine's and not process start-up.
func benchCluster(b *testing.B) *minicluster.Cluster {
	b.Helper()
	c, err := minicluster.Start(context.Background(), minicluster.Options{Config: config.New(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), TaskManagers: 2, Slots: 2, Stdout: io.Discard, DefaultCheckpointsDir: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Stop)
	return c
}

// runBenchJob runs spec to FINISHED and returns n / seconds from submission to the end.
// With verify, the first vertex must have sent n records downstream (its consumer is not
// chained to it): a bound read wrong would end the job early and measure nothing.
func runBenchJob(b *testing.B, c *minicluster.Cluster, spec string, p, n int, conf map[string]string, verify bool) float64 {
	b.Helper()
	if conf == nil {
		conf = map[string]string{}
	}
	conf["restart-strategy.type"] = "none"
	start := time.Now()
	id, err := c.JM.Submit(jobmanager.Submission{Spec: []byte(spec), Parallelism: p, Config: conf})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	state, cause, err := c.JM.Wait(ctx, id)
	if err != nil || state != jobmanager.Finished {
		b.Fatalf("job %s: %v %s %v", id, state, cause, err)
	}
	rate := float64(n) / time.Since(start).Seconds()
	if conf["execution.checkpointing.interval"] != "" {
		var st struct {
			Counts map[string]any `json:"counts"`
		}
		if resp, err := http.Get("http://" + c.JM.RESTAddress() + "/jobs/" + id + "/checkpoints"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		b.Logf("job %s: %v checkpoints completed in %.1f s", id, st.Counts["completed"], float64(n)/rate)
	}
	if !verify {
		return rate
	}
	var d struct {
		Vertices []struct {
			Metrics map[string]any `json:"metrics"`
		} `json:"vertices"`
	}
	resp, err := http.Get("http://" + c.JM.RESTAddress() + "/jobs/" + id)
	if err == nil {
		err = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
	}
	if err != nil || len(d.Vertices) == 0 {
		b.Fatalf("job %s details: %v", id, err)
	}
	if w, _ := d.Vertices[0].Metrics["write-records"].(float64); int(w) != n {
		b.Fatalf("job %s: the source wrote %v records, want %d (metrics %v)", id, w, n, d.Vertices[0].Metrics)
	}
	return rate
}

// kafkaBenchSource reads topic into a blackhole chained to the source, or, with exchange,
// one behind a network edge (parallelism 2), whose input the test counts.
func kafkaBenchSource(topic string, props map[string]string, exchange bool) string {
	par := ""
	if exchange {
		par = ", parallelism: 2"
	}
	return fmt.Sprintf(`name: kafka-bench-source
operators:
  - name: src
    type: kafka
    topic: %s
    format: raw
    scan.startup.mode: earliest-offset
    scan.bounded.mode: latest-offset
%s  - {name: sink, type: blackhole, input: src%s}
`, topic, kafkaProps(props), par)
}

// BenchmarkKafkaSource: Kafka source -> blackhole at -p 1, plaintext and TLS, each beside a
// bare franz-go consumer of the same topic in the same run (the limit).
func BenchmarkKafkaSource(b *testing.B) {
	pki := newKafkaPKI(b)
	c := benchCluster(b)
	for _, mode := range []string{"plaintext", "tls"} {
		cfg := kafkaBrokerConfig{Topics: map[string]int32{"bench": 4}}
		props := map[string]string{}
		if mode == "tls" {
			cfg.TLS = pki.brokerTLS()
			props = map[string]string{"security.protocol": "SSL", "ssl.truststore.location": pki.ca,
				"ssl.keystore.location": pki.clientPEM}
		}
		kb := startKafkaBroker(b, cfg)
		if mode == "tls" {
			kb.pki = pki
		}
		props["bootstrap.servers"] = kb.addr
		benchKafkaInput(b, kb, "bench", kafkaBenchRecords)
		// A first read, not measured: the broker process has just taken the records in.
		bareConsume(b, kb, "bench", kafkaBenchRecords)
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				// Three rounds, the bare consumer and the job alternating, best of each: the
				// machine is shared, and a round that another process slowed says nothing.
				var bare, job, exch float64
				for round := range 3 {
					br := bareConsume(b, kb, "bench", kafkaBenchRecords)
					jr := runBenchJob(b, c, kafkaBenchSource("bench", props, false), 1, kafkaBenchRecords, nil, false)
					b.Logf("round %d (%s): job %.0f records/s, bare consumer %.0f records/s", round+1, mode, jr, br)
					bare, job = max(bare, br), max(job, jr)
				}
				exch = runBenchJob(b, c, kafkaBenchSource("bench", props, true), 1, kafkaBenchRecords, nil, true)
				b.ReportMetric(job, "records/s")
				b.ReportMetric(bare, "bare-records/s")
				b.ReportMetric(job/bare, "ratio")
				b.ReportMetric(exch, "exchange-records/s")
				b.Logf("kafka source -> blackhole (%s): %.0f records/s; bare franz-go consumer: %.0f records/s; ratio %.2f; with the blackhole behind a network edge (records counted): %.0f records/s",
					mode, job, bare, job/bare, exch)
			}
		})
	}
}

// BenchmarkKafkaToKafka: a bounded Kafka -> Kafka copy at -p 2 with 1 s checkpoints,
// exactly-once beside at-least-once, in the same run.
func BenchmarkKafkaToKafka(b *testing.B) {
	const n = 3_000_000
	c := benchCluster(b)
	kb := startKafkaBroker(b, kafkaBrokerConfig{Topics: map[string]int32{"in": 4, "out-alo-0": 4, "out-eos-0": 4, "out-alo-1": 4, "out-eos-1": 4}})
	benchKafkaInput(b, kb, "in", n)
	props := kafkaProps(map[string]string{"bootstrap.servers": kb.addr})
	spec := func(delivery, out string) string {
		extra := "    sink.delivery-guarantee: " + delivery + "\n"
		if delivery == "exactly-once" {
			extra += "    sink.transactional-id-prefix: bench-" + out + "\n"
		}
		return fmt.Sprintf(`name: kafka-bench-copy
operators:
  - name: src
    type: kafka
    topic: in
    format: raw
    scan.startup.mode: earliest-offset
    scan.bounded.mode: latest-offset
%s  - name: dst
    type: kafka
    input: src
    topic: %s
    format: raw
%s%s`, props, out, props, extra)
	}
	conf := func() map[string]string { return map[string]string{"execution.checkpointing.interval": "1 s"} }
	for range b.N {
		// Two rounds each, alternating, best of each (a shared machine); each round writes
		// its own topic.
		var alo, eos float64
		for round := range 2 {
			a := runBenchJob(b, c, spec("at-least-once", fmt.Sprintf("out-alo-%d", round)), 2, n, conf(), false)
			e := runBenchJob(b, c, spec("exactly-once", fmt.Sprintf("out-eos-%d", round)), 2, n, conf(), false)
			b.Logf("round %d: exactly-once %.0f records/s, at-least-once %.0f records/s", round+1, e, a)
			alo, eos = max(alo, a), max(eos, e)
			if got := kb.readCommitted(b, fmt.Sprintf("out-eos-%d", round), n, time.Minute); len(got) != n {
				b.Fatalf("out-eos-%d holds %d records, want %d", round, len(got), n)
			}
		}
		b.ReportMetric(eos, "eos-records/s")
		b.ReportMetric(alo, "alo-records/s")
		b.ReportMetric(eos/alo, "ratio")
		b.Logf("kafka -> kafka: exactly-once %.0f records/s, at-least-once %.0f records/s, ratio %.2f", eos, alo, eos/alo)
	}
}
