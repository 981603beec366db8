package kafka

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestExplain(t *testing.T) {
	s, err := Properties{BootstrapServers: "a:1", SecurityProtocol: SASLSSL, SASLMechanism: MechSCRAM512, SASLJAASConfig: scramJAAS}.Check()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err       error
		permanent bool
		want      []string
	}{
		{fmt.Errorf("wrapped: %w", kerr.SaslAuthenticationFailed), true, []string{"SASL login of user alice with SCRAM-SHA-512", "properties.sasl.jaas.config"}},
		{kerr.TopicAuthorizationFailed, true, []string{"topic t", "TOPIC_AUTHORIZATION_FAILED"}},
		{kerr.GroupAuthorizationFailed, true, []string{"properties.group.id"}},
		{kerr.TransactionalIDAuthorizationFailed, true, []string{"sink.transactional-id-prefix"}},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, true, []string{"properties.ssl.keystore.location"}},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, false, []string{"properties.bootstrap.servers"}},
		{io.EOF, false, []string{"topic t"}},
	} {
		got := Explain(tc.err, s, "topic t")
		var pe *PermanentError
		if errors.As(got, &pe) != tc.permanent {
			t.Errorf("%v: permanent %v, want %v", tc.err, !tc.permanent, tc.permanent)
		}
		for _, w := range tc.want {
			if !strings.Contains(got.Error(), w) {
				t.Errorf("%v: %q lacks %q", tc.err, got, w)
			}
		}
		if strings.Contains(got.Error(), "S3cret-pw") {
			t.Errorf("%v: the explanation quotes the password", tc.err)
		}
	}
}
