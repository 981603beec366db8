package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKafkaDataLevelRefusal: a kafka source declares `read kafka:topic/NAME` (a pattern
// declares every topic it can match: the names and prefixes it spells out, else every topic), a sink `write kafka:topic/NAME`, and the files its properties name
// are file reads: the ACL authorizer refuses at submit, naming the resource, what alice's
// grants do not cover; what they cover runs.
func TestKafkaDataLevelRefusal(t *testing.T) {
	needTool(t, "curl")
	e := startDataEnv(t, func(e *dataEnv) []string {
		p := filepath.Join(e.jmDir, "policy.yaml")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rules := "  developer:\n    - verbs: [read]\n      resources: [\"kafka:topic/in-*\"]\n    - verbs: [write]\n      resources: [\"kafka:topic/${user}-*\"]\n"
		s := strings.Replace(string(b), "  developer:\n", rules, 1)
		if s == string(b) {
			t.Fatal("policy.yaml has no developer role to extend")
		}
		os.WriteFile(p, []byte(s), 0o600)
		return nil
	})
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"in-orders": 1, "alice-out": 1, "secret": 1}})
	kb.produce(t, "in-orders", kafkaInput(5))
	props := map[string]string{"bootstrap.servers": kb.addr}

	out, stderr, code := e.run(t, kafkaCopyJob("granted", "in-orders", "alice-out", props, ""))
	if code != 0 {
		t.Fatalf("a job within alice's grants: exit %d\n%s\n%s", code, out, stderr)
	}
	if got := kb.readCommitted(t, "alice-out", 5, 20*time.Second); len(got) != 5 {
		t.Fatalf("alice-out has %d records, want 5", len(got))
	}

	granted := strings.Replace(kafkaCopyJob("granted-pattern", "in-orders", "alice-out", props, ""), "    topic: in-orders\n", "    topic-pattern: 'in-(orders|clicks)'\n", 1)
	if out, stderr, code := e.run(t, granted); code != 0 {
		t.Fatalf("a pattern within alice's grants: exit %d\n%s\n%s", code, out, stderr)
	}

	secretTrust := filepath.Join(e.secret, "data.txt")
	for _, tc := range []struct{ what, spec, named string }{
		{"sink topic", kafkaCopyJob("w-secret", "in-orders", "secret", props, ""), "kafka:topic/secret"},
		{"source topic", kafkaCopyJob("r-secret", "secret", "alice-out", props, ""), "kafka:topic/secret"},
		{"source pattern", strings.Replace(kafkaCopyJob("r-pattern", "in-orders", "alice-out", props, ""), "    topic: in-orders\n", "    topic-pattern: '.*'\n", 1), "kafka:topic/*"},
		// A pattern is authorized as every topic it can match, not as written: the grant
		// kafka:topic/in-* is a prefix of the text "in-.*|secret" but does not cover secret.
		{"source pattern widening a granted prefix", strings.Replace(kafkaCopyJob("r-pattern2", "in-orders", "alice-out", props, ""), "    topic: in-orders\n", "    topic-pattern: 'in-.*|secret'\n", 1), "kafka:topic/secret"},
		{"source pattern with a wildcard first", strings.Replace(kafkaCopyJob("r-pattern3", "in-orders", "alice-out", props, ""), "    topic: in-orders\n", "    topic-pattern: '.*orders'\n", 1), "kafka:topic/*"},
		{"trust store file", kafkaCopyJob("r-trust", "in-orders", "alice-out", map[string]string{"bootstrap.servers": kb.addr,
			"security.protocol": "SSL", "ssl.truststore.location": secretTrust}, ""), "file:" + secretTrust},
	} {
		out, stderr, code := e.run(t, tc.spec)
		if code == 0 || !strings.Contains(stderr, "forbidden") || !strings.Contains(stderr, tc.named) {
			t.Errorf("%s: exit %d, %s %q (want 403 naming %s)", tc.what, code, out, stderr, tc.named)
		}
		e.leaked(t, tc.what, out, stderr)
	}
	if n := len(kb.readCommitted(t, "secret", 1, 2*time.Second)); n != 0 {
		t.Errorf("%d records reached topic secret", n)
	}
}
