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
