package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	krbclient "github.com/jcmturner/gokrb5/v8/client"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/security/credentials"
	"github.com/sluice-dev/sluice/internal/security/tokens"
)

// ObtainDelegationTokens obtains, as the user of the Kerberos ticket cache kinit wrote, the
// delegation tokens of the services the job's connectors leave to tokens (Kafka connectors
// with SCRAM and no credential of their own): the kinit-only mode, where no process of the
// cluster holds a Kerberos credential. The tokens travel with the job (Submission.Tokens,
// over TLS only) and are not renewed. None when the job needs none.
func ObtainDelegationTokens(ctx context.Context, spec []byte, params map[string]string, getenv func(string) string, log *slog.Logger) ([]credentials.Token, error) {
	parsed, err := dataflow.ParseSpec(spec, params)
	if err != nil {
		return nil, err
	}
	uses := map[string][]map[string]string{}
	for _, o := range parsed.Operators {
		e, ok := o.Options.(tokens.Endpoint)
		if !ok {
			continue
		}
		for _, a := range o.Options.Access(o) {
			if svc, _, _ := strings.Cut(a.Resource(), ":"); svc == credentials.Kafka {
				uses[svc] = append(uses[svc], e.TokenOptions())
				break
			}
		}
	}
	if len(uses) == 0 {
		return nil, nil
	}
	krb, err := ticketCacheCredentials(getenv)
	if err != nil {
		return nil, err
	}
	p := &tokens.KafkaProvider{Credentials: krb, Log: log}
	ts, _, err := p.Obtain(ctx, tokens.Job{Name: parsed.Name, Uses: uses[credentials.Kafka]}, nil)
	if errors.Is(err, tokens.ErrNotNeeded) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--kerberos: obtain the job's Kafka delegation token with the ticket cache: %w", err)
	}
	return ts, nil
}

// ticketCacheCredentials serves the Kerberos client of the user's ticket cache to the Kafka
// provider (as the KafkaClient login context would on a cluster).
func ticketCacheCredentials(getenv func(string) string) (credentials.Source, error) {
	cc, conf, ccPath, _, err := loadUserTicketCache(getenv)
	if err != nil {
		return nil, err
	}
	cl, err := krbclient.NewFromCCache(cc, conf, krbclient.DisablePAFXFAST(true))
	if err != nil {
		return nil, fmt.Errorf("--kerberos: ticket cache %s: %w (run kinit again)", ccPath, err)
	}
	principal := cc.DefaultPrincipal.PrincipalName.PrincipalNameString() + "@" + cc.DefaultPrincipal.Realm
	return credentials.Func(func(_ context.Context, service string) (any, error) {
		if service != credentials.Kafka {
			return nil, fmt.Errorf("%w: %s", credentials.ErrNone, service)
		}
		return &credentials.Kerberos{Context: credentials.LoginContexts[service], Principal: principal, Config: conf,
			Client: func() (*krbclient.Client, error) { return cl, nil }}, nil
	}), nil
}
