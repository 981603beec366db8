package test

import (
	"fmt"
	"strings"
	"testing"
)

// TestJobNamedSizesRefusedAtSubmit: sizes and timeouts a job names (Kafka fetch sizes,
// transaction and linger timeouts, the PostgreSQL sink's buffered rows) have upper bounds,
// and a spec past one is refused at submit with the option and its range; a url or JAAS
// string broken around a password is refused without showing any piece of the password. The
// JobManager keeps serving: a good job runs after the refusals.
func TestJobNamedSizesRefusedAtSubmit(t *testing.T) {
	c := startCluster(t, 1, 1)
	kafkaSpec := func(extra string) string {
		return fmt.Sprintf(`name: k
operators:
  - name: src
    type: kafka
    topic: in
    format: raw
    properties.bootstrap.servers: 127.0.0.1:1
%s  - {name: out, type: blackhole, input: src}
`, extra)
	}
	pgSpec := func(url, extra string) string {
		return fmt.Sprintf(`name: p
operators:
  - {name: gen, type: generator, count: 1}
  - name: out
    type: postgres
    input: gen
    table: t
    url: %q
%s`, url, extra)
	}
	for _, tc := range []struct {
		name, spec string
		want       []string
		hidden     string
	}{
		{"fetch.max.bytes", kafkaSpec("    properties.fetch.max.bytes: 2147483647\n"), []string{"properties.fetch.max.bytes", "104857600"}, ""},
		{"max.partition.fetch.bytes", kafkaSpec("    properties.max.partition.fetch.bytes: 0\n"), []string{"properties.max.partition.fetch.bytes", "from 1 to"}, ""},
		{"linger.ms", kafkaSpec("    properties.linger.ms: 9223372036854775807\n"), []string{"properties.linger.ms", "60000"}, ""},
		{"transaction.timeout.ms", kafkaSpec("    properties.transaction.timeout.ms: 3600000\n"), []string{"properties.transaction.timeout.ms", "900000"}, ""},
		{"jaas password with a space", kafkaSpec("    properties.security.protocol: SASL_PLAINTEXT\n    properties.sasl.mechanism: PLAIN\n    properties.sasl.jaas.config: 'org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=Zq9 Wx7secret;'\n"),
			[]string{"properties.sasl.jaas.config", "double quotes"}, "Wx7secret"},
		{"max-rows", pgSpec("postgresql://h/db", "    sink.buffer-flush.max-rows: 10000000\n"), []string{"sink.buffer-flush.max-rows", "100000"}, ""},
		{"url password with a space", pgSpec("host=h dbname=db password=Zq9 Wx7secret", ""), []string{"url", "after the value of password"}, "Wx7secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runJob(t, c, tc.spec, "--detached")
			if code == 0 {
				t.Fatalf("accepted: %s", tc.spec)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
			if tc.hidden != "" && strings.Contains(stderr, tc.hidden) {
				t.Errorf("stderr shows a piece of the password: %s", stderr)
			}
		})
	}
	stdout, stderr, code := runJob(t, c, "name: ok\noperators:\n  - {name: gen, type: generator, count: 3}\n  - {name: out, type: blackhole, input: gen}\n")
	if code != 0 {
		t.Fatalf("a good job after the refusals: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestConnectorsRefuseMetadataAddresses: a job whose connector names the cloud metadata
// address (or a name resolving to it) fails with the reason, without the TaskManager
// connecting there; the TaskManager keeps serving other jobs.
func TestConnectorsRefuseMetadataAddresses(t *testing.T) {
	c := startCluster(t, 1, 1)
	for name, spec := range map[string]string{
		"kafka": `name: k
config:
  restart-strategy.type: none
operators:
  - name: src
    type: kafka
    topic: in
    format: raw
    properties.bootstrap.servers: 169.254.169.254:9092
  - {name: out, type: blackhole, input: src}
`,
		"postgres": `name: p
config:
  restart-strategy.type: none
operators:
  - {name: gen, type: generator, count: 1}
  - name: out
    type: postgres
    input: gen
    table: t
    url: "postgresql://u:pw@169.254.169.254:5432/db?connect_timeout=5"
`,
	} {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runJob(t, c, spec)
			if code == 0 {
				t.Fatalf("the job ran: %s", stdout)
			}
			if !strings.Contains(stdout+stderr, "169.254.169.254") || !strings.Contains(stdout+stderr, "link-local") {
				t.Errorf("exit %d: the output does not say the metadata address was refused:\n%s\n%s", code, stdout, stderr)
			}
		})
	}
	stdout, stderr, code := runJob(t, c, "name: ok\noperators:\n  - {name: gen, type: generator, count: 3}\n  - {name: out, type: blackhole, input: gen}\n")
	if code != 0 {
		t.Fatalf("a good job after the refusals: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
