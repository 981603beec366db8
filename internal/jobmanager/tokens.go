package jobmanager

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/dataflow"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/credentials"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
	"github.com/sluice-dev/sluice/internal/security/tokens"
)

// newTokenManager builds the delegation-token manager and its providers from cfg. The
// callbacks are wired by Run.
func newTokenManager(cfg *config.Config, jm *JobManager) *tokens.Manager {
	set := tokens.SettingsFrom(cfg)
	jm.restTokens = tokens.NewRESTTokens(cfg.Duration("security.delegation.token.provider.sluice.lifetime"))
	providers := []tokens.Provider{jm.restTokens}
	if argv := cfg.StringList(tokens.PostgresCommandKey); len(argv) > 0 {
		providers = append(providers, &tokens.PostgresCommand{Argv: argv, User: cfg.String("security.delegation.token.provider.postgres.user")})
	}
	if p := jm.kafkaTokenProvider(cfg); p != nil {
		providers = append(providers, p)
	}
	// The sluice provider is on for the jobs that ask (their config block); the manager
	// keeps it whatever the cluster's default says.
	set.ProviderEnabled[credentials.Sluice] = true
	return tokens.NewManager(set, providers, jm.log)
}

// kafkaTokenProvider is the Kafka provider, when the JobManager has a credential for Kafka:
// its own SCRAM credential (security.delegation.token.provider.kafka.sasl.jaas.config) or a
// Kerberos login (whose KafkaClient login context it uses, read when a token is obtained:
// Run logs in after New).
func (jm *JobManager) kafkaTokenProvider(cfg *config.Config) tokens.Provider {
	jaas := cfg.String(tokens.KafkaJAASKey)
	kc, err := kerberos.ConfigFrom(cfg)
	if jaas == "" && (err != nil || !kc.Enabled()) {
		return nil
	}
	return &tokens.KafkaProvider{
		Credentials: credentials.Func(func(ctx context.Context, service string) (any, error) {
			return credentials.FromLogin(jm.krb).Credentials(ctx, service)
		}),
		Mechanism: cfg.String(tokens.KafkaMechanismKey), JAAS: jaas,
		MaxLifetime: cfg.Duration("security.delegation.token.provider.kafka.max-lifetime"),
		Log:         jm.log,
	}
}

// tokenUses lists, by service, what a job reaches that a provider obtains tokens for: the
// data it declares (kafka:topic/..., postgres:table/...), with the options of each operator
// (tokens.Endpoint), and the REST API when the job's configuration turns the sluice provider on.
func tokenUses(spec *dataflow.Spec, cfg *config.Config) map[string][]map[string]string {
	uses := map[string][]map[string]string{}
	for _, o := range spec.Operators {
		seen := map[string]bool{}
		for _, a := range o.Options.Access(o) {
			svc, _, _ := strings.Cut(a.Resource(), ":")
			if svc != credentials.Kafka && svc != credentials.Postgres || seen[svc] {
				continue
			}
			seen[svc] = true
			opts := map[string]string{}
			if e, ok := o.Options.(tokens.Endpoint); ok {
				opts = e.TokenOptions()
			}
			uses[svc] = append(uses[svc], opts)
		}
	}
	if cfg.Bool("security.delegation.token.provider.sluice.enabled") {
		uses[credentials.Sluice] = []map[string]string{{}}
	}
	return uses
}

// tmTokenIdentity checks that TaskManager id proved its id with a certificate of its own
// (an identity naming it, of this cluster): delegation tokens go to no one else. The error
// says what to configure.
func (jm *JobManager) tmTokenIdentity(cert *x509.Certificate, id string) error {
	const fix = "delegation tokens travel only over internal mutual TLS to TaskManagers with a certificate of their own: run security.ssl.internal.auto, or give each TaskManager its own certificate (sluice security create-certs --taskmanager-ids)"
	if cert == nil {
		return fmt.Errorf("taskmanager %s has no client certificate (internal TLS is off): %s", id, fix)
	}
	ident, ok, err := tlsconf.IdentityOf(cert)
	if err != nil {
		return fmt.Errorf("taskmanager %s: %w", id, err)
	}
	if !ok || ident.SharedTaskManager() {
		return fmt.Errorf("taskmanager %s authenticates with a certificate that does not name it: %s", id, fix)
	}
	if ident.Role != tlsconf.RoleTaskManager || ident.ClusterID != jm.clusterID || ident.ID != id {
		return fmt.Errorf("%s is not taskmanager %s of cluster %s", ident, id, jm.clusterID)
	}
	return nil
}

// liveTasksOnLocked reports whether a task of the job's current attempt is placed on
// TaskManager tm and has not ended: the only case in which tm may hold the job's tokens.
func liveTasksOnLocked(j *job, tm string) bool {
	if j.state.Terminal() {
		return false
	}
	for _, t := range j.tasks {
		if t.tm == tm && !taskTerminal(t.state) {
			return true
		}
	}
	return false
}

// tokenVersionsLocked are the versions of the tokens of the jobs with live tasks on tm, for
// its heartbeat answer.
func (jm *JobManager) tokenVersionsLocked(tm string) map[string]int64 {
	var out map[string]int64
	for id, j := range jm.jobs {
		if !liveTasksOnLocked(j, tm) {
			continue
		}
		if v := jm.tokens.Version(id); v > 0 {
			if out == nil {
				out = map[string]int64{}
			}
			out[id] = v
		}
	}
	return out
}

// FetchTokens answers a TaskManager that missed an update: the current tokens of the asked
// jobs, each only if a live task of it is placed on the caller, the caller being whom its
// certificate names (Kubernetes' Node authorizer). Anything else is refused, naming why.
func (s *rpcServer) FetchTokens(ctx context.Context, req *controlpb.FetchTokensRequest) (*controlpb.FetchTokensResponse, error) {
	jm := s.jm
	if err := jm.tmTokenIdentity(peerCertificate(ctx), req.TaskmanagerId); err != nil {
		jm.log.Warn("delegation tokens refused", "taskmanager", req.TaskmanagerId, "jobs", req.JobIds, "reason", err)
		return nil, status.Error(codes.PermissionDenied, "delegation tokens refused: "+err.Error())
	}
	resp := &controlpb.FetchTokensResponse{}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if _, ok := jm.tms[req.TaskmanagerId]; !ok {
		return nil, status.Errorf(codes.PermissionDenied, "delegation tokens refused: taskmanager %s is not registered", req.TaskmanagerId)
	}
	for _, id := range req.JobIds {
		j, ok := jm.jobs[id]
		if !ok || !liveTasksOnLocked(j, req.TaskmanagerId) {
			jm.log.Warn("delegation tokens refused: no task of the job runs on the asking taskmanager", "taskmanager", req.TaskmanagerId, "job", id)
			return nil, status.Errorf(codes.PermissionDenied, "delegation tokens refused: no task of job %s runs on taskmanager %s", id, req.TaskmanagerId)
		}
		if set, ok := jm.tokens.Current(id); ok {
			resp.Sets = append(resp.Sets, tokens.ToProto(set))
		}
	}
	return resp, nil
}

// pushTokens sends a job's renewed tokens to the TaskManagers running its tasks. A
// TaskManager the push misses learns of the new version from its next heartbeat answer and
// fetches it.
func (jm *JobManager) pushTokens(set tokens.Set) {
	p := tokens.ToProto(set)
	jm.mu.Lock()
	j, ok := jm.jobs[set.Job]
	var targets []*taskManager
	if ok {
		for _, tm := range jm.sortedTMs() {
			if liveTasksOnLocked(j, tm.id) && jm.tmTokenIdentity(tm.cert, tm.id) == nil {
				targets = append(targets, tm)
			}
		}
	}
	jm.mu.Unlock()
	for _, tm := range targets {
		jm.spawn(func() {
			ctx, cancel := context.WithTimeout(jm.ctx, 10*time.Second)
			defer cancel()
			if _, err := tm.client.UpdateTokens(ctx, p); err != nil {
				jm.log.Warn("push delegation tokens; the taskmanager fetches them at its next heartbeat", "job", set.Job, "taskmanager", tm.id, "version", set.Version, "err", err)
			}
		})
	}
}

// tokenExpiring fails a job whose tokens are about to lapse without renewal (when its
// provider's expiry-action is fail), with the reason naming the service. The failure is
// unrecoverable: a restart would run on the same tokens.
func (jm *JobManager) tokenExpiring(jobID, service, reason string, fail bool) {
	if !fail {
		return
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, ok := jm.jobs[jobID]
	if !ok || j.state.Terminal() {
		return
	}
	now := time.Now()
	f := &failure{time: now, attempt: j.attempt, message: reason, unrecoverable: true}
	switch j.state {
	case Running, Created:
		jm.failLocked(j, f)
	case Restarting:
		jm.recordFailureLocked(j, f)
		j.setState(Failed, now)
		jm.log.Error("job failed", "job", j.id, "err", j.cause)
	default: // Failing or Cancelling: its end is decided already; the cause joins the history.
		jm.recordFailureLocked(j, f)
		j.unrecoverable = true
	}
}

// deploymentTokens are the tokens a deployment of j to tm carries, or an error when the job
// has tokens and tm may not receive them.
func (jm *JobManager) deploymentTokens(j *job, tm *taskManager) (*controlpb.TokenSet, error) {
	set, ok := jm.tokens.Current(j.id)
	if !ok {
		return nil, nil
	}
	if err := jm.tmTokenIdentity(tm.cert, tm.id); err != nil {
		return nil, fmt.Errorf("job %s holds delegation tokens (%s) and cannot run on taskmanager %s: %w", j.id, strings.Join(slices.Compact(set.Services()), ", "), tm.id, err)
	}
	return tokens.ToProto(set), nil
}

// tokensOverview is the /overview field about delegation tokens.
func (jm *JobManager) tokensOverview() []tokens.ServiceStatus {
	st := jm.tokens.Status()
	if st == nil {
		st = []tokens.ServiceStatus{}
	}
	return st
}
