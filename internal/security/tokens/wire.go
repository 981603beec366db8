package tokens

import (
	"maps"
	"time"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// ToProto is a set as the control plane carries it; nil for an empty set.
func ToProto(s Set) *controlpb.TokenSet {
	if len(s.Tokens) == 0 {
		return nil
	}
	out := &controlpb.TokenSet{JobId: s.Job, Version: s.Version}
	for _, t := range s.Tokens {
		out.Tokens = append(out.Tokens, &controlpb.DelegationToken{Service: t.Service, Id: t.ID, Secret: t.Secret,
			Mechanism: t.Mechanism, ExpiresUnixMs: t.Expires.UnixMilli(), Attributes: maps.Clone(t.Attributes)})
	}
	return out
}

// FromProto is the inverse of ToProto.
func FromProto(p *controlpb.TokenSet) Set {
	if p == nil {
		return Set{}
	}
	s := Set{Job: p.JobId, Version: p.Version}
	for _, t := range p.Tokens {
		tk := credentials.Token{Service: t.Service, ID: t.Id, Secret: t.Secret, Mechanism: t.Mechanism, Attributes: maps.Clone(t.Attributes)}
		if t.ExpiresUnixMs > 0 {
			tk.Expires = time.UnixMilli(t.ExpiresUnixMs)
		}
		s.Tokens = append(s.Tokens, tk)
	}
	return s
}

// Shipped is a delegation token as a client sends it with a job (sluice run --kerberos):
// the multipart part or JSON field "delegation-tokens" of POST /jobs, a list of these.
type Shipped struct {
	Service    string            `json:"service"`
	ID         string            `json:"id"`
	Secret     string            `json:"secret"`
	Mechanism  string            `json:"mechanism,omitempty"`
	Expires    time.Time         `json:"expires"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// ToShipped and FromShipped convert between a token and its wire form.
func ToShipped(ts []credentials.Token) []Shipped {
	out := make([]Shipped, 0, len(ts))
	for _, t := range ts {
		out = append(out, Shipped{Service: t.Service, ID: t.ID, Secret: t.Secret, Mechanism: t.Mechanism, Expires: t.Expires, Attributes: t.Attributes})
	}
	return out
}

// FromShipped is the inverse of ToShipped.
func FromShipped(ss []Shipped) []credentials.Token {
	out := make([]credentials.Token, 0, len(ss))
	for _, s := range ss {
		out = append(out, credentials.Token{Service: s.Service, ID: s.ID, Secret: s.Secret, Mechanism: s.Mechanism, Expires: s.Expires, Attributes: s.Attributes})
	}
	return out
}
