package kafka

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// PermanentError is a failure that retrying cannot cure: the broker refused the login or an
// ACL refused a topic, group or transactional id. A job failing with one should not spend
// its restarts.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Explain turns a client error into one that says what was refused and what to fix;
// what names the resource the request was about ("topic orders"). Errors of the broker's
// authentication and authorization come back as *PermanentError.
func Explain(err error, s *Settings, what string) error {
	if err == nil {
		return nil
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return err
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		is := func(targets ...*kerr.Error) bool {
			for _, t := range targets {
				if errors.Is(err, t) {
					return true
				}
			}
			return false
		}
		switch {
		case is(kerr.SaslAuthenticationFailed, kerr.IllegalSaslState, kerr.UnsupportedSaslMechanism):
			who := ""
			if s != nil && s.JAAS != nil && s.JAAS.Username != "" {
				who = " of user " + s.JAAS.Username
			}
			mech := ""
			if s != nil {
				mech = " with " + s.Mechanism
			}
			return &PermanentError{fmt.Errorf("the Kafka broker refused the SASL login%s%s (%s): check the credentials in properties.%s and properties.%s: %w", who, mech, ke.Message, SASLJAASConfig, SASLMechanism, err)}
		case is(kerr.TopicAuthorizationFailed):
			return &PermanentError{fmt.Errorf("the Kafka broker refused access to %s (%s): the job's Kafka principal lacks an ACL for it; ask the Kafka administrator to grant it or change the topic: %w", what, ke.Message, err)}
		case is(kerr.GroupAuthorizationFailed):
			return &PermanentError{fmt.Errorf("the Kafka broker refused access to the consumer group (%s, properties.%s) while working on %s: grant the principal READ on the group or change properties.%s: %w", ke.Message, GroupID, what, GroupID, err)}
		case is(kerr.TransactionalIDAuthorizationFailed):
			return &PermanentError{fmt.Errorf("the Kafka broker refused the transactional id (%s) of %s: grant the principal WRITE on TransactionalId resources with the prefix of sink.transactional-id-prefix: %w", ke.Message, what, err)}
		case is(kerr.ClusterAuthorizationFailed):
			return &PermanentError{fmt.Errorf("the Kafka broker refused a cluster operation (%s) for %s: grant the principal the ACL (IDEMPOTENT_WRITE for producers): %w", ke.Message, what, err)}
		}
	}
	// The broker's TLS alert comes back as a net.OpError "remote error" around crypto/tls's
	// unexported alert type: its text is all there is to go by.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" &&
		(strings.Contains(oe.Err.Error(), "certificate required") || strings.Contains(oe.Err.Error(), "bad certificate")) {
		return &PermanentError{fmt.Errorf("the Kafka broker refused the client's certificate (%v) for %s: set properties.%s (and its .type and .password) to a key store with a certificate the broker trusts", err, what, KeystoreLocation)}
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	switch {
	case errors.As(err, &ua):
		return &PermanentError{fmt.Errorf("the Kafka broker's certificate is not trusted: set properties.%s to the CA that signed it (%s): %w", TruststoreLocation, what, err)}
	case errors.As(err, &hn):
		return &PermanentError{fmt.Errorf("the Kafka broker's certificate is not valid for the address in properties.%s: %w (fix the address or the certificate; properties.%s= turns host name checks off)", BootstrapServers, err, EndpointIdentify)}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("%s: cannot reach the Kafka brokers in properties.%s: %w", what, BootstrapServers, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
