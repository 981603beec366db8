package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/security/authn"
	"github.com/sluice-dev/sluice/internal/security/authz"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// RESTTokenPrefix starts every job token for the cluster's REST API, so the authenticator
// knows its tokens from a token file's without a lookup.
const RESTTokenPrefix = "sluice-job."

// MethodJobToken is the authentication method of a job token (authn.User.Method): the
// job-token authorizer recognises its users by it.
const MethodJobToken = "job-token"

// JobUserPrefix starts the user name of a job token: system:job:<job id>.
const JobUserPrefix = "system:job:"

// JobsGroup is the group of every job token's user.
const JobsGroup = "system:jobs"

// RESTTokens is the `sluice` provider: it issues a job tokens for the cluster's own REST API
// (bearer tokens, kept as SHA-256 hashes in the JobManager's memory) and authenticates them.
// A job token may view its own job and nothing else (JobTokenAuthorizer).
type RESTTokens struct {
	lifetime time.Duration
	now      func() time.Time

	mu     sync.Mutex
	byHash map[[32]byte]restToken
}

type restToken struct {
	job     string
	expires time.Time
}

var (
	_ Provider            = (*RESTTokens)(nil)
	_ Releaser            = (*RESTTokens)(nil)
	_ authn.Authenticator = (*RESTTokens)(nil)
)

// NewRESTTokens returns the sluice provider issuing tokens valid for lifetime.
func NewRESTTokens(lifetime time.Duration) *RESTTokens {
	return &RESTTokens{lifetime: lifetime, now: time.Now, byHash: map[[32]byte]restToken{}}
}

// Service implements Provider.
func (p *RESTTokens) Service() string { return credentials.Sluice }

// Obtain issues a new token for the job. The previous ones stay valid until they expire, so a
// task using one while the new one travels is not refused.
func (p *RESTTokens) Obtain(_ context.Context, job Job, _ []credentials.Token) ([]credentials.Token, time.Time, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, time.Time{}, err
	}
	secret := RESTTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	now := p.now()
	exp := now.Add(p.lifetime)
	p.mu.Lock()
	for h, t := range p.byHash {
		if !now.Before(t.expires) {
			delete(p.byHash, h)
		}
	}
	p.byHash[sha256.Sum256([]byte(secret))] = restToken{job: job.ID, expires: exp}
	p.mu.Unlock()
	id := fmt.Sprintf("%x", sha256.Sum256([]byte(secret)))[:12]
	return []credentials.Token{{Service: credentials.Sluice, ID: id, Secret: secret, Expires: exp,
		Attributes: map[string]string{"user": JobUserPrefix + job.ID}}}, exp, nil
}

// Release revokes every token of the job.
func (p *RESTTokens) Release(_ context.Context, job Job, _ []credentials.Token) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for h, t := range p.byHash {
		if t.job == job.ID {
			delete(p.byHash, h)
		}
	}
	return nil
}

// Valid returns the job a token was issued for, if it is live.
func (p *RESTTokens) Valid(secret string) (string, bool) {
	h := sha256.Sum256([]byte(secret))
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.byHash[h]
	if !ok || !p.now().Before(t.expires) {
		return "", false
	}
	return t.job, true
}

// AuthenticateRequest implements authn.Authenticator: a bearer token with the job-token
// prefix is this method's; any other credential is left to the rest of the chain.
func (p *RESTTokens) AuthenticateRequest(r *http.Request) (authn.User, bool, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(strings.TrimSpace(tok), RESTTokenPrefix) {
		return authn.User{}, false, nil
	}
	job, ok := p.Valid(strings.TrimSpace(tok))
	if !ok {
		return authn.User{}, false, errors.New("invalid or expired job token")
	}
	return authn.User{Name: JobUserPrefix + job, Groups: []string{JobsGroup}, Method: MethodJobToken}, true, nil
}

// Method implements authn.Authenticator.
func (p *RESTTokens) Method() string { return MethodJobToken }

// Challenge implements authn.Authenticator.
func (p *RESTTokens) Challenge() string { return authn.BearerChallenge }

// JobTokenAuthorizer decides every request made with a job token: viewing the token's own
// job is allowed, everything else denied (definitively: no later authorizer may widen a job
// token). Requests authenticated otherwise are NoOpinion.
func JobTokenAuthorizer() authz.Authorizer {
	return authz.AuthorizerFunc(func(_ context.Context, a authz.Attributes) (authz.Decision, string, error) {
		if a.Method != MethodJobToken {
			return authz.NoOpinion, "", nil
		}
		job, ok := strings.CutPrefix(a.User, JobUserPrefix)
		if !ok || job == "" {
			return authz.Deny, "a job token names no job", nil
		}
		if a.Verb == authz.VerbView && a.Resource == "job/"+job {
			return authz.Allow, fmt.Sprintf("the token of job %s may view the job", job), nil
		}
		return authz.Deny, fmt.Sprintf("the token of job %s may only view job %s, not %s %s", job, job, a.Verb, a.Resource), nil
	})
}
