package jobmanager

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/authz"
	"github.com/sluice-dev/sluice/internal/security/authz/opa"
	"github.com/sluice-dev/sluice/internal/security/authz/webhook"
	"github.com/sluice-dev/sluice/internal/security/tokens"
)

// authorization is what newAuthorization builds: the decider, the
// watchers that keep its policies fresh and their reloaders.
type authorization struct {
	decider   *decider
	runners   []func(ctx context.Context)
	reloaders []Reloader
}

// newAuthorization builds the union of authorizers that
// security.authorization.mode lists, after the job-ownership rule (owners
// and the view/modify lists of a job decide about that job first).
func newAuthorization(cfg *config.Config, set Settings, log *slog.Logger) (authorization, error) {
	listeners := set.Listeners
	var out authorization
	modes, err := authz.ParseModes(set.AuthorizationModes)
	if err != nil {
		return out, config.KeyError(authz.ModeKey, err)
	}
	if len(modes) == 0 {
		modes = []string{"allow-all"}
	}
	// A job's token for the REST API is decided first and definitively: it views its own
	// job, nothing else, whatever the policies grant others.
	union := authz.Union{authz.Named("job-token", tokens.JobTokenAuthorizer()), authz.Named("job-owner", authz.JobOwnership())}
	for _, m := range modes {
		switch m = strings.TrimSpace(m); m {
		case "allow-all":
			union = append(union, authz.Named("allow-all", authz.AllowAll()))
		case "acl":
			path := set.ACLPolicyFile
			if path == "" {
				return out, fmt.Errorf("security.authorization.mode lists acl: set security.authorization.acl.policy-file")
			}
			acl, err := authz.NewACL(path, set.SuperUsers, log)
			if err != nil {
				return out, err
			}
			out.runners = append(out.runners, acl.Run)
			out.reloaders = append(out.reloaders, Reloader{Name: "acl-policy", Kind: ReloadPolicy, Reload: acl.Reload})
			union = append(union, authz.Named("acl", acl))
		case "webhook":
			// Asked per request: nothing on disk to reload.
			a, err := webhook.FromConfig(cfg, log)
			if err != nil {
				return out, err
			}
			union = append(union, authz.Named(m, a))
		case "opa":
			a, err := opa.FromConfig(cfg, log)
			if err != nil {
				return out, err
			}
			union = append(union, authz.Named(m, a))
		default:
			return out, fmt.Errorf("security.authorization.mode %q: want allow-all, acl, webhook or opa", m)
		}
	}
	out.decider = &decider{union: union, log: log}
	if slices.Contains(modes, "allow-all") {
		for _, l := range listeners {
			host, _, _ := net.SplitHostPort(l.Address)
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				log.Warn("authorization is allow-all: every client that authenticates on a non-loopback listener may submit, cancel and read everything (set security.authorization.mode)", "listener", l.Name, "address", l.Address)
				break
			}
		}
	}
	return out, nil
}
