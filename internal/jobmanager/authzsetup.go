package jobmanager

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/security/audit"
	"github.com/sluice-dev/sluice/internal/security/authz"
)

// setupAuthorization builds the union of authorizers that
// security.authorization.mode lists, after the job-ownership rule (owners
// and the view/modify lists of a job decide about that job first).
func (jm *JobManager) setupAuthorization(ctx context.Context) error {
	cfg := jm.cfg
	modes, err := authz.ParseModes(cfg.StringList("security.authorization.mode"))
	if err != nil {
		return fmt.Errorf("security.authorization.mode: %w", err)
	}
	if len(modes) == 0 {
		modes = []string{"allow-all"}
	}
	union := authz.Union{authz.Named("job-owner", authz.JobOwnership())}
	jm.reloaders = map[string]func() error{}
	for _, m := range modes {
		switch strings.TrimSpace(m) {
		case "allow-all":
			union = append(union, authz.Named("allow-all", authz.AllowAll()))
		case "acl":
			path := cfg.String("security.authorization.acl.policy-file")
			if path == "" {
				return fmt.Errorf("security.authorization.mode lists acl: set security.authorization.acl.policy-file")
			}
			acl, err := authz.NewACL(path, cfg.StringList("security.authorization.super-users"), jm.log)
			if err != nil {
				return err
			}
			go acl.Run(ctx)
			if r, ok := any(acl).(interface{ Reload() error }); ok {
				jm.reloaders["acl policy"] = r.Reload
			}
			union = append(union, authz.Named("acl", acl))
		default:
			a, err := jm.externalAuthorizer(strings.TrimSpace(m))
			if err != nil {
				return err
			}
			union = append(union, authz.Named(strings.TrimSpace(m), a))
		}
	}
	al, err := audit.FromConfig(cfg)
	if err != nil {
		return err
	}
	jm.audit = al
	go func() { <-ctx.Done(); al.Close() }()
	jm.authz = &decider{union: union, log: jm.log, audit: jm.auditDecision}
	if slices.Contains(modes, "allow-all") {
		for _, l := range jm.listeners {
			host, _, _ := net.SplitHostPort(l.Address)
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				jm.log.Warn("authorization is allow-all: every client that authenticates on a non-loopback listener may submit, cancel and read everything (set security.authorization.mode)", "listener", l.Name, "address", l.Address)
				break
			}
		}
	}
	return nil
}
