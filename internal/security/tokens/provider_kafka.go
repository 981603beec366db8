package tokens

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/connectors/kafka"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// Keys of the Kafka provider's own credential, when it is SCRAM rather than the process's
// Kerberos login (its KafkaClient login context).
const (
	KafkaMechanismKey = "security.delegation.token.provider.kafka.sasl.mechanism"
	KafkaJAASKey      = "security.delegation.token.provider.kafka.sasl.jaas.config"
)

// ErrNotNeeded is returned by a provider whose service the job reaches without tokens (a
// Kafka connector with its own credential): the manager obtains nothing for it.
var ErrNotNeeded = errors.New("the job needs no delegation token for this service")

// KafkaProvider obtains Kafka delegation tokens (KIP-48) through the admin API
// (CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken) on the cluster the
// job's Kafka connectors name, authenticated as the process: with its Kerberos login
// (GSSAPI, the KafkaClient login context) or with the SCRAM credential of Mechanism and JAAS.
// Connectors then log in with SCRAM and tokenauth=true, the token id as user name and the
// base64 of its HMAC as password.
type KafkaProvider struct {
	// Credentials answers for "kafka" with the process's Kerberos login (GSSAPI); may be nil
	// when JAAS is set.
	Credentials credentials.Source
	// Mechanism and JAAS are a SCRAM credential (KafkaMechanismKey, KafkaJAASKey); empty: GSSAPI.
	Mechanism, JAAS string
	// MaxLifetime is asked for at creation (the broker caps it).
	MaxLifetime time.Duration
	// ReadFile reads the files the connection settings name (trust store, password files);
	// os.ReadFile when nil.
	ReadFile func(string) ([]byte, error)
	Log      *slog.Logger
	// Client, for tests, replaces the admin client's construction.
	Client func(ctx context.Context, opts []kgo.Opt) (*kgo.Client, error)
}

var (
	_ Provider = (*KafkaProvider)(nil)
	_ Releaser = (*KafkaProvider)(nil)
)

// Service implements Provider.
func (p *KafkaProvider) Service() string { return credentials.Kafka }

// wantsToken reports whether a Kafka connector's properties leave its login to a delegation
// token: SASL with SCRAM and no credential of its own.
func wantsToken(props map[string]string) bool {
	s, err := kafka.Properties(props).Check()
	return err == nil && s.JAAS == nil && (s.Mechanism == kafka.MechSCRAM256 || s.Mechanism == kafka.MechSCRAM512)
}

// cluster returns the connection properties of the one Kafka cluster the job's connectors
// reach with tokens.
func (p *KafkaProvider) cluster(job Job) (kafka.Properties, error) {
	var found kafka.Properties
	for _, u := range job.Uses {
		if !wantsToken(u) {
			continue
		}
		if found != nil && found[kafka.BootstrapServers] != u[kafka.BootstrapServers] {
			return nil, fmt.Errorf("the job's Kafka connectors reach two clusters (%s and %s) with delegation tokens: one cluster per job", found[kafka.BootstrapServers], u[kafka.BootstrapServers])
		}
		if found == nil {
			found = kafka.Properties(maps.Clone(u))
		}
	}
	if found == nil {
		return nil, ErrNotNeeded
	}
	// The connection is the job's, the credential the process's own.
	delete(found, kafka.SASLJAASConfig)
	if p.JAAS != "" {
		found[kafka.SASLMechanism], found[kafka.SASLJAASConfig] = p.Mechanism, p.JAAS
	} else {
		found[kafka.SASLMechanism] = kafka.MechGSSAPI
	}
	return found, nil
}

func (p *KafkaProvider) admin(ctx context.Context, props kafka.Properties) (*kadm.Client, func(), error) {
	s, err := props.Check()
	if err != nil {
		return nil, nil, err
	}
	read := p.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	opts, err := s.ClientOptions(ctx, props, kafka.Env{ReadFile: read, Credentials: p.Credentials, Logger: p.Log})
	if err != nil {
		return nil, nil, err
	}
	newClient := p.Client
	if newClient == nil {
		newClient = func(_ context.Context, o []kgo.Opt) (*kgo.Client, error) { return kgo.NewClient(o...) }
	}
	cl, err := newClient(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// Obtain renews the job's token while the broker extends it, else creates one (and expires
// the old).
func (p *KafkaProvider) Obtain(ctx context.Context, job Job, prev []credentials.Token) ([]credentials.Token, time.Time, error) {
	props, err := p.cluster(job)
	if err != nil {
		return nil, time.Time{}, err
	}
	adm, closeFn, err := p.admin(ctx, props)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer closeFn()
	brokers := props[kafka.BootstrapServers]
	if len(prev) == 1 && prev[0].Attributes["bootstrap.servers"] == brokers {
		old := prev[0]
		hmac, _ := base64.StdEncoding.DecodeString(old.Secret)
		// -1 ms: the broker's delegation.token.expiry.time.ms.
		exp, err := adm.RenewDelegationToken(ctx, hmac, -time.Millisecond)
		switch {
		case err == nil && exp.After(old.Expires):
			old.Expires = exp
			return []credentials.Token{old}, exp, nil
		case err == nil, errors.Is(err, kerr.DelegationTokenExpired), errors.Is(err, kerr.DelegationTokenNotFound):
			// At its max lifetime, or gone: a new token replaces it. The old one is left to
			// lapse: connections re-authenticating before the new one reached their
			// TaskManager still log in.
		default:
			return nil, time.Time{}, fmt.Errorf("renew Kafka delegation token %s at %s: %w", old.ID, brokers, kafkaTokenError(err))
		}
	}
	dt, err := adm.CreateDelegationToken(ctx, kadm.CreateDelegationToken{MaxLifetime: p.MaxLifetime})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("create a Kafka delegation token at %s: %w", brokers, kafkaTokenError(err))
	}
	t := credentials.Token{Service: credentials.Kafka, ID: dt.TokenID, Secret: base64.StdEncoding.EncodeToString(dt.HMAC), Expires: dt.ExpiryTimestamp,
		Attributes: map[string]string{"owner": dt.Owner.Name, "bootstrap.servers": brokers, "max": dt.MaxTimestamp.UTC().Format(time.RFC3339)}}
	return []credentials.Token{t}, dt.ExpiryTimestamp, nil
}

// kafkaTokenError says what a broker's refusal means for the operator.
func kafkaTokenError(err error) error {
	switch {
	case errors.Is(err, kerr.DelegationTokenAuthDisabled):
		return fmt.Errorf("%w (the broker has delegation tokens off or refuses them now: delegation.token.secret.key on the brokers)", err)
	case errors.Is(err, kerr.DelegationTokenAuthorizationFailed), errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("%w (the JobManager's Kafka credential: its KafkaClient login context, or %s)", err, KafkaJAASKey)
	}
	return err
}

// Release expires the job's tokens at the broker.
func (p *KafkaProvider) Release(ctx context.Context, job Job, ts []credentials.Token) error {
	props, err := p.cluster(job)
	if err != nil {
		return err
	}
	adm, closeFn, err := p.admin(ctx, props)
	if err != nil {
		return err
	}
	defer closeFn()
	var errs []string
	for _, t := range ts {
		hmac, _ := base64.StdEncoding.DecodeString(t.Secret)
		if _, err := adm.ExpireDelegationToken(ctx, hmac, -time.Millisecond); err != nil && !errors.Is(err, kerr.DelegationTokenNotFound) {
			errs = append(errs, fmt.Sprintf("%s: %v", t.ID, err))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
