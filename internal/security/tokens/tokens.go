// Package tokens is sluice's delegation-token framework (Flink's DelegationTokenManager,
// without the keytab on the workers): a Manager in the JobManager obtains short-lived,
// job-scoped tokens from providers (Kafka delegation tokens, PostgreSQL role passwords from an
// operator's command, tokens for the cluster's own REST API), renews them at a fraction of
// their lifetime, and hands each job's set to the TaskManagers running the job over the
// mutually authenticated control plane. A Receiver in each TaskManager keeps the sets in memory
// only and answers connectors' requests for credentials (package credentials).
package tokens

import (
	"context"
	"time"

	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// Job is what a provider obtains tokens for: one job, and what it reaches of the provider's
// service.
type Job struct {
	ID    string
	Name  string
	Owner string // the submitter, as authenticated
	// Uses are the options of the job's operators of the provider's service (a Kafka
	// connector's properties.*), one map per operator, for providers that obtain a token from
	// the system the job reaches.
	Uses []map[string]string
	// ExpiryActions are the job's own security.delegation.token.provider.<service>.expiry-action
	// (fail or continue), by service; the manager's settings otherwise.
	ExpiryActions map[string]string
}

// Provider obtains the tokens of one service for a job. Obtain is called at submit and again
// at security.delegation.tokens.renewal.time-ratio of the tokens' lifetime; it returns the
// tokens and when the earliest of them expires. It must not log a token's secret.
type Provider interface {
	// Service is the service name: kafka, postgres, sluice.
	Service() string
	// Obtain returns fresh (or renewed) tokens for job. prev are the tokens the job holds
	// now (nil at the first call), so that a provider may renew instead of creating.
	Obtain(ctx context.Context, job Job, prev []credentials.Token) ([]credentials.Token, time.Time, error)
}

// Releaser is a Provider whose tokens should be given up when the job ends (Kafka's
// ExpireDelegationToken): the tokens stop working at once instead of at their expiry.
type Releaser interface {
	Release(ctx context.Context, job Job, tokens []credentials.Token) error
}

// Set is the tokens of one job, at a version that grows with every change, as the JobManager
// sends them to TaskManagers.
type Set struct {
	Job     string
	Version int64
	Tokens  []credentials.Token
}

// Earliest returns when the first token of the set expires (zero without tokens).
func (s Set) Earliest() time.Time {
	var t time.Time
	for _, tk := range s.Tokens {
		if t.IsZero() || (!tk.Expires.IsZero() && tk.Expires.Before(t)) {
			t = tk.Expires
		}
	}
	return t
}

// Services lists the services of a set's tokens, for logs (never the secrets).
func (s Set) Services() []string {
	var out []string
	for _, tk := range s.Tokens {
		out = append(out, tk.Service)
	}
	return out
}

// Endpoint is implemented by the options of an operator whose service's provider needs to
// know where the job connects (a Kafka connector's bootstrap servers and security settings):
// TokenOptions returns them under the connector's own option names, secrets included only
// where the provider needs them.
type Endpoint interface {
	TokenOptions() map[string]string
}
