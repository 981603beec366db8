package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/sluice-dev/sluice/test/kdc"
)

// runKafkaJob submits spec detached and returns the job id.
func runKafkaJob(t *testing.T, c *cluster, spec string, args ...string) string {
	t.Helper()
	return runDetached(t, c, append([]string{writeJobFile(t, spec)}, args...)...)
}

// TestKafkaTLSClientCertificates: the broker takes TLS only, with client certificates from
// its CA. A job reads and writes over it with a PKCS12 trust store whose password comes
// from a file (file:PATH), and a PEM key store; the password shows in no log or answer. A
// job without a trust store fails with an error naming properties.ssl.truststore.location.
func TestKafkaTLSClientCertificates(t *testing.T) {
	pki := newKafkaPKI(t)
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"in": 2, "out": 2}, TLS: pki.brokerTLS()})
	kb.pki = pki
	const n = 300
	kb.produce(t, "in", kafkaInput(n))

	const storePass = "Trust-Store-Pass-93c1"
	b, _ := os.ReadFile(pki.ca)
	caCert := parsePEMCert(t, b)
	p12, err := pkcs12.Modern.EncodeTrustStore([]*x509Certificate{caCert}, storePass)
	if err != nil {
		t.Fatal(err)
	}
	trust := filepath.Join(pki.dir, "truststore.p12")
	os.WriteFile(trust, p12, 0o600)
	passFile := filepath.Join(pki.dir, "truststore.pass")
	os.WriteFile(passFile, []byte(storePass+"\n"), 0o600)

	c := startCluster(t, 1, 2)
	props := map[string]string{
		"bootstrap.servers":       kb.addr,
		"security.protocol":       "SSL",
		"ssl.truststore.location": trust,
		"ssl.truststore.type":     "PKCS12",
		"ssl.truststore.password": "file:" + passFile,
		"ssl.keystore.location":   pki.clientPEM,
		"ssl.keystore.type":       "PEM",
	}
	id := runKafkaJob(t, c, kafkaCopyJob("tls-copy", "in", "out", props, ""), "-p", "2")
	waitJobState(t, c, id, "FINISHED", 2*time.Minute)
	if got := kb.readCommitted(t, "out", n, 30*time.Second); len(got) != n {
		t.Fatalf("out has %d records, want %d", len(got), n)
	}

	// Without a client certificate the broker refuses the handshake: the job fails at once,
	// naming the key store setting.
	noCert := map[string]string{}
	for k, v := range props {
		if !strings.HasPrefix(k, "ssl.keystore.") {
			noCert[k] = v
		}
	}
	id = runKafkaJob(t, c, kafkaCopyJob("tls-no-cert", "in", "out", noCert, ""), "-p", "1")
	waitJobState(t, c, id, "FAILED", time.Minute)
	if cause := fmt.Sprint(c.job(id)["failure-cause"]); !strings.Contains(cause, "properties.ssl.keystore.location") {
		t.Errorf("failure cause %q does not name properties.ssl.keystore.location", cause)
	}

	// The password inline this time: it must not show anywhere.
	props["ssl.truststore.password"] = storePass
	props["ssl.truststore.location"] = filepath.Join(pki.dir, "missing.p12")
	id = runKafkaJob(t, c, kafkaCopyJob("tls-missing", "in", "out", props, ""), "-p", "1")
	waitJobState(t, c, id, "FAILED", time.Minute)
	cause := fmt.Sprint(c.job(id)["failure-cause"])
	if !strings.Contains(cause, "properties.ssl.truststore.location") || !strings.Contains(cause, "missing.p12") {
		t.Errorf("failure cause %q does not name the trust store setting and path", cause)
	}
	var body map[string]any
	_ = c.get("/jobs/"+id, &body)
	for what, text := range map[string]string{"JobManager log": c.jm.Log(), "TaskManager log": c.tms[0].Log(), "job details": fmt.Sprint(body)} {
		if strings.Contains(text, storePass) {
			t.Errorf("the trust store password shows in the %s", what)
		}
	}
}

// TestKafkaSCRAMWrongPassword: a SCRAM-SHA-512 login with a wrong password fails the job
// at once (no restarts), with an error that names the user and the property to fix; the
// right password, read from a file, works.
func TestKafkaSCRAMWrongPassword(t *testing.T) {
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"in": 1, "out": 1},
		SASL: &kafkaSASL{Superusers: []kafkaUser{kafkaAdmin}, Users: []kafkaUser{{Mechanism: "SCRAM-SHA-512", Name: "alice", Password: "alice-right"}}}})
	kb.produce(t, "in", kafkaInput(10))
	c := startCluster(t, 1, 2, "restart-strategy.type=fixed-delay", "restart-strategy.fixed-delay.attempts=5", "restart-strategy.fixed-delay.delay=200 ms")
	jaas := func(pw string) map[string]string {
		return map[string]string{"bootstrap.servers": kb.addr, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
			"sasl.jaas.config": `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="` + pw + `";`}
	}
	id := runKafkaJob(t, c, kafkaCopyJob("scram-wrong", "in", "out", jaas("Wrong-Pass-5d2e"), ""), "-p", "1")
	waitJobState(t, c, id, "FAILED", time.Minute)
	j := c.job(id)
	cause := fmt.Sprint(j["failure-cause"])
	for _, want := range []string{"SASL login", "alice", "SCRAM-SHA-512", "properties.sasl.jaas.config"} {
		if !strings.Contains(cause, want) {
			t.Errorf("failure cause %q lacks %q", cause, want)
		}
	}
	if r, _ := j["restarts"].(float64); r != 0 {
		t.Errorf("a refused login restarted the job %v times", r)
	}
	if strings.Contains(c.jm.Log()+c.tms[0].Log()+cause, "Wrong-Pass-5d2e") {
		t.Error("the password shows in a log or the failure cause")
	}

	pw := filepath.Join(t.TempDir(), "alice.pass")
	os.WriteFile(pw, []byte("alice-right\n"), 0o600)
	id = runKafkaJob(t, c, kafkaCopyJob("scram-file", "in", "out", jaas("file:"+pw), ""), "-p", "1")
	waitJobState(t, c, id, "FINISHED", time.Minute)
	if got := kb.readCommitted(t, "out", 10, 20*time.Second); len(got) != 10 {
		t.Fatalf("out has %d records, want 10", len(got))
	}
}

// TestKafkaTopicACLRefused: the broker's ACLs let bob read topic in and write topic out,
// nothing on topic secret: a job writing secret, and one reading it, fail at once with
// TOPIC_AUTHORIZATION_FAILED naming the topic, without restarts.
func TestKafkaTopicACLRefused(t *testing.T) {
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"in": 1, "out": 1, "secret": 1}, ACLs: true,
		SASL: &kafkaSASL{Superusers: []kafkaUser{kafkaAdmin}, Users: []kafkaUser{{Mechanism: "SCRAM-SHA-256", Name: "bob", Password: "bob-pw",
			ACLs: []kafkaACL{{Resource: "topic", Name: "in", Operation: "read"}, {Resource: "topic", Name: "in", Operation: "describe"},
				{Resource: "topic", Name: "out", Operation: "write"}, {Resource: "topic", Name: "out", Operation: "describe"}}}}}})
	kb.produce(t, "in", kafkaInput(10))
	c := startCluster(t, 1, 2, "restart-strategy.type=fixed-delay", "restart-strategy.fixed-delay.attempts=5", "restart-strategy.fixed-delay.delay=200 ms")
	props := map[string]string{"bootstrap.servers": kb.addr, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
		"sasl.jaas.config": `org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="bob-pw";`}
	id := runKafkaJob(t, c, kafkaCopyJob("acl", "in", "secret", props, ""), "-p", "1")
	waitJobState(t, c, id, "FAILED", time.Minute)
	j := c.job(id)
	cause := fmt.Sprint(j["failure-cause"])
	if !strings.Contains(cause, "TOPIC_AUTHORIZATION_FAILED") || !strings.Contains(cause, "topic secret") {
		t.Errorf("failure cause %q: want TOPIC_AUTHORIZATION_FAILED naming topic secret", cause)
	}
	if r, _ := j["restarts"].(float64); r != 0 {
		t.Errorf("a refused topic restarted the job %v times", r)
	}
	id = runKafkaJob(t, c, kafkaCopyJob("acl-read", "secret", "out", props, ""), "-p", "1")
	waitJobState(t, c, id, "FAILED", time.Minute)
	j = c.job(id)
	cause = fmt.Sprint(j["failure-cause"])
	if !strings.Contains(cause, "TOPIC_AUTHORIZATION_FAILED") || !strings.Contains(cause, "topic secret") || !strings.Contains(cause, `operator "src"`) {
		t.Errorf("failure cause %q: want TOPIC_AUTHORIZATION_FAILED naming topic secret and the source", cause)
	}
	if r, _ := j["restarts"].(float64); r != 0 {
		t.Errorf("a refused source topic restarted the job %v times", r)
	}
	// What bob may do works: in -> out.
	id = runKafkaJob(t, c, kafkaCopyJob("acl-ok", "in", "out", props, ""), "-p", "1")
	waitJobState(t, c, id, "FINISHED", time.Minute)
	// Exactly-once needs WRITE on the transactional ids too, which bob lacks.
	id = runKafkaJob(t, c, kafkaCopyJob("acl-txn", "in", "out", props, "    sink.delivery-guarantee: exactly-once\n    sink.transactional-id-prefix: bob-copy\n"), "-p", "1")
	waitJobState(t, c, id, "FAILED", time.Minute)
	j = c.job(id)
	if cause := fmt.Sprint(j["failure-cause"]); !strings.Contains(cause, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED") || !strings.Contains(cause, "sink.transactional-id-prefix") {
		t.Errorf("failure cause %q: want TRANSACTIONAL_ID_AUTHORIZATION_FAILED naming sink.transactional-id-prefix", cause)
	}
	if r, _ := j["restarts"].(float64); r != 0 {
		t.Errorf("a refused transactional id restarted the job %v times", r)
	}
}

// TestKafkaGSSAPI: the TaskManagers log in to the MIT KDC from a keytab (KafkaClient login
// context); the kafka operators, with no JAAS string, authenticate to the broker with
// GSSAPI as alice, whose ACLs allow the two topics only.
func TestKafkaGSSAPI(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	k.AddPrincipal(t, "kafka/127.0.0.1")
	brokerKeytab := k.Keytab(t, "kafka/127.0.0.1")
	k.AddPrincipal(t, "alice")
	aliceKeytab := k.Keytab(t, "alice")
	k.AddPrincipal(t, "bob")
	bobKeytab := k.Keytab(t, "bob")
	all := func(topic string) []kafkaACL {
		return []kafkaACL{{Resource: "topic", Name: topic, Operation: "all"}}
	}
	kb := startKafkaBroker(t, kafkaBrokerConfig{Topics: map[string]int32{"in": 2, "out": 2, "secret": 1}, ACLs: true,
		GSSAPI: &kafkaGSSAPI{Keytab: brokerKeytab},
		SASL: &kafkaSASL{Superusers: []kafkaUser{kafkaAdmin},
			Users: []kafkaUser{{Mechanism: "GSSAPI", Name: "alice", ACLs: append(all("in"), all("out")...)},
				{Mechanism: "GSSAPI", Name: "bob", ACLs: append(all("in"), all("out")...)}}}})
	const n = 200
	kb.produce(t, "in", kafkaInput(n))
	c := startCluster(t, 1, 2, "security.kerberos.krb5-conf.path="+k.Krb5Conf, "security.kerberos.login.keytab="+aliceKeytab,
		"security.kerberos.login.principal=alice@"+k.Realm, "security.kerberos.login.contexts=KafkaClient")
	props := map[string]string{"bootstrap.servers": kb.addr, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI",
		"sasl.kerberos.service.name": "kafka"}
	id := runKafkaJob(t, c, kafkaCopyJob("gssapi", "in", "out", props, ""), "-p", "2")
	waitJobState(t, c, id, "FINISHED", 2*time.Minute)
	if got := kb.readCommitted(t, "out", n, 30*time.Second); len(got) != n {
		t.Fatalf("out has %d records, want %d", len(got), n)
	}
	// A keytab in the JAAS string: the task logs in as bob with it (read through the job's
	// file grants), not with the TaskManager's login.
	bobProps := map[string]string{"bootstrap.servers": kb.addr, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI",
		"sasl.jaas.config": `com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="` + bobKeytab + `" principal="bob@` + k.Realm + `";`}
	id = runKafkaJob(t, c, kafkaCopyJob("gssapi-keytab", "in", "out", bobProps, ""), "-p", "1")
	waitJobState(t, c, id, "FINISHED", 2*time.Minute)
	if got := kb.readCommitted(t, "out", 2*n, 30*time.Second); len(got) != 2*n {
		t.Fatalf("out has %d records after the keytab job, want %d", len(got), 2*n)
	}
	// The same login is refused the topic its ACLs do not grant: the broker knew alice.
	id = runKafkaJob(t, c, kafkaCopyJob("gssapi-secret", "in", "secret", props, ""), "-p", "1")
	waitJobState(t, c, id, "FAILED", time.Minute)
	if cause := fmt.Sprint(c.job(id)["failure-cause"]); !strings.Contains(cause, "TOPIC_AUTHORIZATION_FAILED") {
		t.Errorf("alice writing secret: %q, want TOPIC_AUTHORIZATION_FAILED", cause)
	}
}
