package test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaDelegation is test/kafkabroker's delegation-token configuration.
type kafkaDelegation struct {
	ExpiryMS      int64  `json:"expiry_ms"`
	MaxLifetimeMS int64  `json:"max_lifetime_ms"`
	DenyFile      string `json:"deny_file,omitempty"`
}

// kafkaTokenUser is the user the tests' JobManager obtains Kafka delegation tokens as.
var kafkaTokenUser = kafkaUser{Mechanism: "SCRAM-SHA-512", Name: "jm", Password: "jm-secret", ACLs: []kafkaACL{
	{Resource: "topic", Name: "", Pattern: "prefixed", Operation: "all"},
	{Resource: "group", Name: "", Pattern: "prefixed", Operation: "all"},
}}

// tokenClient is a franz-go client logging in with a delegation token (SCRAM, tokenauth=true).
func tokenClient(t *testing.T, kb *kafkaBroker, id string, hmac []byte, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	auth := scram.Auth{User: id, Pass: base64.StdEncoding.EncodeToString(hmac), IsToken: true}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(kb.addr), kgo.SASL(auth.AsSha512Mechanism())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func userAdmin(t *testing.T, kb *kafkaBroker, u kafkaUser) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kb.addr), kgo.SASL(scram.Auth{User: u.Name, Pass: u.Password}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// TestKafkaBrokerDelegationTokens checks the test broker's delegation tokens against
// franz-go's admin client and a token SCRAM login: create, log in (and not with a wrong
// HMAC), a token connection may not create tokens, renew moves the expiry up to the max
// lifetime, an expired or expired-by-owner token no longer logs in, the deny file refuses
// creation and renewal.
func TestKafkaBrokerDelegationTokens(t *testing.T) {
	deny := filepath.Join(t.TempDir(), "deny")
	kb := startKafkaBroker(t, kafkaBrokerConfig{
		Topics:     map[string]int32{"t1": 1},
		SASL:       &kafkaSASL{Superusers: []kafkaUser{kafkaAdmin}, Users: []kafkaUser{kafkaTokenUser}},
		ACLs:       true,
		Delegation: &kafkaDelegation{ExpiryMS: 3000, MaxLifetimeMS: 8000, DenyFile: deny},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := userAdmin(t, kb, kafkaTokenUser)
	dt, err := adm.CreateDelegationToken(ctx, kadm.CreateDelegationToken{})
	if err != nil {
		t.Fatalf("create: %v\n%s", err, kb.proc.Log())
	}
	if dt.Owner.Name != "jm" || dt.TokenID == "" || len(dt.HMAC) == 0 || time.Until(dt.ExpiryTimestamp) > 3*time.Second {
		t.Fatalf("token %+v", dt)
	}
	// The token logs in as its owner (the owner's ACLs apply: it may produce to t1).
	cl := tokenClient(t, kb, dt.TokenID, dt.HMAC)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t1", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce with the token: %v\n%s", err, kb.proc.Log())
	}
	// A token connection may not create tokens.
	if _, err := kadm.NewClient(cl).CreateDelegationToken(ctx, kadm.CreateDelegationToken{}); !errors.Is(err, kerr.DelegationTokenRequestNotAllowed) {
		t.Errorf("create over a token connection: %v", err)
	}
	// A wrong HMAC does not log in.
	bad := tokenClient(t, kb, dt.TokenID, []byte("not the hmac"))
	if err := bad.Ping(ctx); err == nil {
		t.Error("a wrong HMAC logged in")
	}
	// Renewal moves the expiry, never beyond the max lifetime.
	exp, err := adm.RenewDelegationToken(ctx, dt.HMAC, 10*time.Second)
	if err != nil || !exp.After(dt.ExpiryTimestamp) || exp.After(dt.MaxTimestamp) {
		t.Fatalf("renew: %v %v (max %v)", exp, err, dt.MaxTimestamp)
	}
	// The deny file refuses creation and renewal (a broken provider).
	if err := os.WriteFile(deny, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.RenewDelegationToken(ctx, dt.HMAC, -1); !errors.Is(err, kerr.DelegationTokenAuthDisabled) {
		t.Errorf("renew while denied: %v", err)
	}
	if _, err := adm.CreateDelegationToken(ctx, kadm.CreateDelegationToken{}); !errors.Is(err, kerr.DelegationTokenAuthDisabled) {
		t.Errorf("create while denied: %v", err)
	}
	os.Remove(deny)
	// Expired at the max lifetime: no more logins, and not before.
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := tokenClient(t, kb, dt.TokenID, dt.HMAC).Ping(pctx)
		pcancel()
		if err != nil {
			if time.Now().Before(exp) {
				t.Fatalf("the token stopped logging in before its expiry %v: %v", exp, err)
			}
			break
		}
		if time.Now().After(dt.MaxTimestamp.Add(10 * time.Second)) {
			t.Fatal("the token still logs in 10 s after its max lifetime")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The broker's stderr reaches the test a little later than its answer.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(kb.proc.Log(), "expired at"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the broker does not say the token expired:\n%s", kb.proc.Log())
		}
	}
	// Expired by its owner: no more logins.
	dt2, err := adm.CreateDelegationToken(ctx, kadm.CreateDelegationToken{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.ExpireDelegationToken(ctx, dt2.HMAC, -time.Millisecond); err != nil {
		t.Fatalf("expire: %v", err)
	}
	if err := tokenClient(t, kb, dt2.TokenID, dt2.HMAC).Ping(ctx); err == nil {
		t.Error("a token expired by its owner logged in")
	}
}
