// Package credentials is how a connector running in a task obtains the credentials of the
// service it reaches (Kafka, PostgreSQL, the cluster's own REST API) without caring where they
// come from: the TaskManager's Kerberos login (a login context such as KafkaClient) or a
// delegation token the JobManager pushed for the job.
//
// A connector asks its RuntimeContext's Credentials for a service by name and type-switches on
// the answer: *Token or *Kerberos. A connector whose own options carry a complete credential (a
// SCRAM password, a keytab in a JAAS string) does not ask. ErrNone says the TaskManager holds
// nothing for that service; the connector's error then names what to configure.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krb5config "github.com/jcmturner/gokrb5/v8/config"
)

// Service names, as connectors ask for them and delegation-token providers are keyed
// (security.delegation.token.provider.<service>.enabled).
const (
	Kafka    = "kafka"
	Postgres = "postgres"
	Sluice   = "sluice"
)

// LoginContexts maps a service to the JAAS login context whose Kerberos client it uses
// (security.kerberos.login.contexts must name the context).
var LoginContexts = map[string]string{
	Kafka:    "KafkaClient",
	Postgres: "PostgresClient",
}

// ErrNone is returned (wrapped) when no credential for the service is held.
var ErrNone = errors.New("no credentials held for this service")

// Source answers a connector's request for the credentials of a service. The answer is a
// *Token or a *Kerberos; an error wrapping ErrNone when there is none.
type Source interface {
	Credentials(ctx context.Context, service string) (any, error)
}

// Token is a short-lived credential issued for one job: a Kafka delegation token (used as a
// SCRAM login with tokenauth=true: ID is the SCRAM user name, Secret its password), a
// PostgreSQL role password (ID the role), or a token for the cluster's REST API (Secret the
// bearer token). Never log Secret.
type Token struct {
	Service   string
	ID        string
	Secret    string
	Mechanism string // Kafka: SCRAM-SHA-256 or SCRAM-SHA-512
	Expires   time.Time
	// Attributes carries provider-specific fields (e.g. the token's owner).
	Attributes map[string]string
}

// String never shows the secret; nor do %v, %+v and %#v of a Token or *Token, nor slog.
func (t Token) String() string {
	return fmt.Sprintf("%s token %s (expires %s)", t.Service, t.ID, t.Expires.UTC().Format(time.RFC3339))
}

// GoString is String, for %#v.
func (t Token) GoString() string { return t.String() }

// Format prints String for every verb, so %+v does not walk the fields.
func (t Token) Format(f fmt.State, _ rune) { fmt.Fprint(f, t.String()) }

// LogValue keeps the secret out of slog output.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Kerberos is the Kerberos client of a login context. Client is replaced at each relogin: call
// it per connection, do not keep the result, and do not Destroy it.
type Kerberos struct {
	Context   string // the login context, e.g. KafkaClient
	Principal string // name@REALM
	Client    func() (*client.Client, error)
	Config    *krb5config.Config // krb5.conf in use
}

// Func adapts a function to a Source.
type Func func(ctx context.Context, service string) (any, error)

// Credentials calls f.
func (f Func) Credentials(ctx context.Context, service string) (any, error) { return f(ctx, service) }

// Chain asks each source in order and returns the first credential; the sources' ErrNone
// answers are skipped, any other error is returned. Nil sources are ignored.
func Chain(sources ...Source) Source {
	return Func(func(ctx context.Context, service string) (any, error) {
		for _, s := range sources {
			if s == nil {
				continue
			}
			c, err := s.Credentials(ctx, service)
			if err == nil && c != nil {
				return c, nil
			}
			if err != nil && !errors.Is(err, ErrNone) {
				return nil, err
			}
		}
		return nil, fmt.Errorf("%w: %s", ErrNone, service)
	})
}
