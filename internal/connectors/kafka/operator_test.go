package kafka

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

const kafkaSpecHead = "name: k\noperators:\n"

func kafkaSpec(src, sink string) string {
	return kafkaSpecHead + "  - {name: src, type: kafka, format: raw, properties.bootstrap.servers: 'b:9092'" + src + "}\n" +
		"  - {name: dst, type: kafka, input: src, format: json, topic: out, properties.bootstrap.servers: 'b:9092'" + sink + "}\n"
}

func TestKafkaSpecAccess(t *testing.T) {
	s, err := dataflow.ParseSpec([]byte(kafkaSpec(", topic: [a, b], properties.security.protocol: SSL, properties.ssl.truststore.location: /tls/ca.pem, properties.ssl.truststore.password: 'file:/tls/pw'", "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	reads, writes := s.Resources()
	if got := fmt.Sprint(reads); got != "[kafka:topic/a kafka:topic/b file:/tls/ca.pem file:/tls/pw]" {
		t.Errorf("reads %s", got)
	}
	if got := fmt.Sprint(writes); got != "[kafka:topic/out]" {
		t.Errorf("writes %s", got)
	}
	s, err = dataflow.ParseSpec([]byte(kafkaSpec(", topic-pattern: 'logs-.*'", "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if reads, _ := s.Resources(); fmt.Sprint(reads) != "[kafka:topic/logs-*]" {
		t.Errorf("a pattern source reads %v, want the prefix it matches", reads)
	}
	// Flink's semicolon-separated list of topics in one string.
	s, err = dataflow.ParseSpec([]byte(kafkaSpec(", topic: 'a;b'", "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if reads, _ := s.Resources(); fmt.Sprint(reads) != "[kafka:topic/a kafka:topic/b]" {
		t.Errorf("topic: 'a;b' reads %v, want both topics", reads)
	}
}

func TestKafkaSpecErrors(t *testing.T) {
	for _, tc := range []struct{ src, sink, want string }{
		{"", "", `operator "src" (line 3) topic: missing required option`},
		{", topic: a, topic-pattern: b", "", "topic-pattern: give topic or topic-pattern, not both"},
		{", topic: 'a b'", "", `"a b" is not a Kafka topic name`},
		{", topic: a, scan.startup.mode: group-offsets", "", "group-offsets needs properties.group.id"},
		{", topic: a, scan.startup.mode: timestamp", "", "scan.startup.timestamp-millis: missing required option"},
		{", topic: a, scan.bounded.mode: forever", "", "scan.bounded.mode: unknown mode"},
		{", topic: a, fields: [x]", "", "a raw source has the single field value"},
		{", topic: a, sink.delivery-guarantee: none", "", "only for kafka sinks"},
		{", topic: a", ", sink.delivery-guarantee: exactly-once", "sink.transactional-id-prefix: missing required option for exactly-once"},
		{", topic: a", ", sink.delivery-guarantee: twice", "unknown guarantee"},
		{", topic: a", ", scan.startup.mode: latest-offset", "only for kafka sources"},
		{", topic: a", ", key: value, key.fields: [value]", "give key (an expression) or key.fields"},
		{", topic: a", ", key: nosuch", "key:"},
		{", topic: a, properties.security.protocol: SASL_SSL, properties.sasl.mechanism: PLAIN", "", "properties: properties.sasl.jaas.config"},
		{", topic: a, scan.topic-partition-discovery.interval: often", "", `scan.topic-partition-discovery.interval: "often": want a duration`},
		{", topic: a, scan.topic-partition-discovery.interval: 10ms", "", "below the minimum 1s"},
		{", topic: a, scan.bounded.mode: latest-offset, scan.topic-partition-discovery.interval: 1 min", "", "scan.topic-partition-discovery.interval: only for unbounded sources"},
		{", topic: a", ", scan.topic-partition-discovery.interval: 1 min", "scan.topic-partition-discovery.interval: only for kafka sources"},
		{", topic: a, propertie.x: 1", "", "unknown option for type kafka: want name, type, input, parallelism, topic,"},
	} {
		_, err := dataflow.ParseSpec([]byte(kafkaSpec(tc.src, tc.sink)), nil)
		if err == nil {
			var s *dataflow.Spec
			if s, err = dataflow.ParseSpec([]byte(kafkaSpec(tc.src, tc.sink)), nil); err == nil {
				_, err = s.Plan(1)
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s | %s: error %v, want %q", tc.src, tc.sink, err, tc.want)
		}
	}
}

func TestKafkaSpecWarningsAndMasking(t *testing.T) {
	const pw = "Pa55-w0rd-77"
	s, err := dataflow.ParseSpec([]byte(kafkaSpec(", topic: a, properties.fetch.min.bytes: '1', properties.security.protocol: SASL_SSL, properties.sasl.mechanism: SCRAM-SHA-256, "+
		`properties.sasl.jaas.config: 'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="`+pw+`";'`, "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := s.OptionWarnings(); len(w) != 1 || !strings.Contains(w[0], "properties.fetch.min.bytes") || !strings.Contains(w[0], `"src"`) {
		t.Errorf("warnings %q, want one naming properties.fetch.min.bytes and the operator", w)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), pw) || strings.Contains(fmt.Sprintf("%v %+v", s.Operators[0].Options, s.Operators[0].Options), pw) {
		t.Errorf("the spec shows the SASL password: %s", b)
	}
	if !strings.Contains(string(b), `"sasl.jaas.config":"******"`) {
		t.Errorf("the spec's JSON does not show the masked JAAS string: %s", b)
	}
}

func TestKafkaOwnerSpreads(t *testing.T) {
	for _, p := range []int{1, 2, 3, 4} {
		count := make([]int, p)
		for part := int32(0); part < 12; part++ {
			count[kafkaOwner("orders", part, p)]++
		}
		for i, c := range count {
			if c != 12/p {
				t.Errorf("parallelism %d: subtask %d owns %d of 12 partitions", p, i, c)
			}
		}
	}
}

func TestKafkaOffsetCodec(t *testing.T) {
	b := appendKafkaOffset(nil, topicPartition{"t.x", 7}, 123, -1)
	tp, next, end, err := decodeKafkaOffset(b)
	if err != nil || tp.topic != "t.x" || tp.partition != 7 || next != 123 || end != -1 {
		t.Fatalf("decoded %v %d %d %v", tp, next, end, err)
	}
	if _, _, _, err := decodeKafkaOffset(b[:len(b)-1]); err == nil {
		t.Fatal("a truncated entry decoded")
	}
	txn := &kafkaTxn{id: "p-0-3", n: 3, producerID: 99, epoch: 2, records: 10}
	got, err := kafkaTxnCodec{}.Decode(kafkaTxnCodec{}.Append(nil, txn))
	if err != nil || *got != *txn {
		t.Fatalf("transaction round trip: %+v %v", got, err)
	}
}

// TestKafkaDiscoveryInterval: Flink's default (5 minutes) for an unbounded source, none for a
// bounded one, 0 and negative turn it off, Flink's duration syntax.
func TestKafkaDiscoveryInterval(t *testing.T) {
	for _, tc := range []struct {
		opts string
		want time.Duration
	}{
		{"", DefaultDiscoveryInterval},
		{", scan.topic-partition-discovery.interval: 30 s", 30 * time.Second},
		{", scan.topic-partition-discovery.interval: 10000", 10 * time.Second},
		{", scan.topic-partition-discovery.interval: 0", 0},
		{", scan.topic-partition-discovery.interval: -1 min", 0},
		{", scan.bounded.mode: latest-offset", 0},
		{", scan.bounded.mode: latest-offset, scan.topic-partition-discovery.interval: 0", 0},
	} {
		s, err := dataflow.ParseSpec([]byte(kafkaSpec(", topic: a"+tc.opts, "")), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.opts, err)
		}
		var k *Options
		for _, op := range s.Operators {
			if o, ok := op.Options.(*Options); ok && !o.sink {
				k = o
			}
		}
		if k == nil {
			t.Fatalf("%q: no kafka source in the spec", tc.opts)
		}
		if k.discovery != tc.want {
			t.Errorf("%q: discovery every %s, want %s", tc.opts, k.discovery, tc.want)
		}
	}
}
