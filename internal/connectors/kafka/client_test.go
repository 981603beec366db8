package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	krbclient "github.com/jcmturner/gokrb5/v8/client"

	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// TestMechanismFromCredentials: without a credential in the properties, the runtime's
// credentials decide: a delegation token logs in with SCRAM (tokenauth), a login context
// with GSSAPI; none at all is an error naming what to configure.
func TestMechanismFromCredentials(t *testing.T) {
	token := &credentials.Token{Service: "kafka", ID: "tok-1", Secret: "hmac", Mechanism: "SCRAM-SHA-256"}
	krb := &credentials.Kerberos{Context: "KafkaClient", Client: func() (*krbclient.Client, error) { return nil, errors.New("unused") }}
	none := credentials.Func(func(context.Context, string) (any, error) { return nil, fmt.Errorf("%w: kafka", credentials.ErrNone) })
	answer := func(c any) credentials.Source {
		return credentials.Func(func(_ context.Context, service string) (any, error) {
			if service != credentials.Kafka {
				t.Errorf("asked for %q, want kafka", service)
			}
			return c, nil
		})
	}
	for _, tc := range []struct {
		name  string
		props Properties
		creds credentials.Source
		mech  string // the SASL mechanism's name, or an error substring after "error:"
	}{
		{"scram token", Properties{BootstrapServers: "a:1", SecurityProtocol: SASLSSL, SASLMechanism: MechSCRAM512}, answer(token), "SCRAM-SHA-256"},
		{"gssapi token", Properties{BootstrapServers: "a:1", SecurityProtocol: SASLSSL}, answer(token), "SCRAM-SHA-256"},
		{"gssapi login context", Properties{BootstrapServers: "a:1", SecurityProtocol: SASLSSL}, answer(krb), "GSSAPI"},
		{"gssapi nothing held", Properties{BootstrapServers: "a:1", SecurityProtocol: SASLSSL}, none, "error:list KafkaClient in security.kerberos.login.contexts"},
		{"gssapi no runtime credentials", Properties{BootstrapServers: "a:1", SecurityProtocol: SASLSSL}, nil, "error:KafkaClient login context"},
		{"scram nothing held", Properties{BootstrapServers: "a:1", SecurityProtocol: SASLSSL, SASLMechanism: MechSCRAM512}, none, "error:properties.sasl.jaas.config"},
		{"jaas wins", Properties{BootstrapServers: "a:1", SecurityProtocol: SASLSSL, SASLMechanism: MechSCRAM512, SASLJAASConfig: scramJAAS}, answer(token), "SCRAM-SHA-512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.props.Check()
			if err != nil {
				t.Fatal(err)
			}
			m, err := s.mechanism(context.Background(), Env{Credentials: tc.creds})
			if want, ok := strings.CutPrefix(tc.mech, "error:"); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want one containing %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Name() != tc.mech {
				t.Fatalf("mechanism %s, want %s", m.Name(), tc.mech)
			}
		})
	}
}
