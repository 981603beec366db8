package test

import (
	"context"
	"strings"
	"testing"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/kerberos"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluice-dev/sluice/test/kdc"
)

// TestKafkaBrokerSecurity checks the test broker itself with a bare franz-go client, so that
// a connector test failing is the connector's fault: SCRAM users and ACLs, and the GSSAPI
// acceptor with a real ticket from the MIT KDC (and a principal it does not know refused).
func TestKafkaBrokerSecurity(t *testing.T) {
	t.Parallel()
	k := kdc.Start(t, kdc.Options{})
	k.AddPrincipal(t, "kafka/127.0.0.1")
	keytab := k.Keytab(t, "kafka/127.0.0.1")
	alicePW := k.AddPrincipal(t, "alice")
	malloryPW := k.AddPrincipal(t, "mallory")
	kb := startKafkaBroker(t, kafkaBrokerConfig{
		Topics: map[string]int32{"in": 2, "secret": 1},
		SASL: &kafkaSASL{Superusers: []kafkaUser{kafkaAdmin}, Users: []kafkaUser{
			{Mechanism: "GSSAPI", Name: "alice", ACLs: []kafkaACL{{Resource: "topic", Name: "in", Operation: "all"}}},
			{Mechanism: "SCRAM-SHA-256", Name: "bob", Password: "bob-pw", ACLs: []kafkaACL{{Resource: "topic", Name: "in", Operation: "all"}}},
			{Mechanism: "PLAIN", Name: "carol", Password: "carol-pw", ACLs: []kafkaACL{{Resource: "topic", Name: "in", Operation: "all"}}},
		}},
		ACLs:   true,
		GSSAPI: &kafkaGSSAPI{Keytab: keytab},
	})
	kb.produce(t, "in", []string{"a", "b", "c"})

	krbConf, err := krbconfig.Load(k.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	produce := func(t *testing.T, mech kgo.Opt, topic string) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(kb.addr), mech, kgo.RequestRetries(0), kgo.RecordRetries(1))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
	}
	krb := func(user, pw string) kgo.Opt {
		cl := krbclient.NewWithPassword(user, k.Realm, pw, krbConf, krbclient.DisablePAFXFAST(true))
		if err := cl.Login(); err != nil {
			t.Fatalf("kerberos login %s: %v", user, err)
		}
		return kgo.SASL(kerberos.Auth{Client: cl, Service: "kafka"}.AsMechanism())
	}
	t.Run("gssapi", func(t *testing.T) {
		if err := produce(t, krb("alice", alicePW), "in"); err != nil {
			t.Fatalf("alice over GSSAPI: %v", err)
		}
		if err := produce(t, krb("alice", alicePW), "secret"); err == nil || !strings.Contains(err.Error(), "TOPIC_AUTHORIZATION_FAILED") {
			t.Fatalf("alice writing secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		if err := produce(t, krb("mallory", malloryPW), "in"); err == nil || !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
			t.Fatalf("mallory (no broker user): %v, want SASL_AUTHENTICATION_FAILED", err)
		}
	})
	t.Run("scram", func(t *testing.T) {
		if err := produce(t, kgo.SASL(scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha256Mechanism()), "in"); err != nil {
			t.Fatalf("bob: %v", err)
		}
		if err := produce(t, kgo.SASL(scram.Auth{User: "bob", Pass: "wrong"}.AsSha256Mechanism()), "in"); err == nil || !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
			t.Fatalf("bob with a wrong password: %v, want SASL_AUTHENTICATION_FAILED (as Kafka answers)", err)
		}
	})
	t.Run("plain", func(t *testing.T) {
		if err := produce(t, kgo.SASL(plain.Auth{User: "carol", Pass: "carol-pw"}.AsMechanism()), "in"); err != nil {
			t.Fatalf("carol: %v", err)
		}
		if err := produce(t, kgo.SASL(plain.Auth{User: "carol", Pass: "wrong"}.AsMechanism()), "in"); err == nil || !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
			t.Fatalf("carol with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
		// A GSSAPI user's internal PLAIN identity is not a way in.
		if err := produce(t, kgo.SASL(plain.Auth{User: "alice", Pass: "alice"}.AsMechanism()), "in"); err == nil {
			t.Fatal("alice admitted over PLAIN")
		}
	})
	if got := kb.readCommitted(t, "in", 6, 20*time.Second); len(got) != 6 {
		t.Fatalf("read %d records of in, want 6", len(got))
	}
}
