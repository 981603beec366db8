package config

import (
	"errors"
)

// DelegationTokenServices are the services with a delegation-token provider; each has
// security.delegation.token.provider.<service>.enabled and .expiry-action.
var DelegationTokenServices = []string{"kafka", "postgres", "sluice"}

// Delegation tokens (internal/security/tokens): Flink's keys, and sluice's per-provider ones.
func init() {
	ratio := func(v any) error {
		if f := v.(float64); f <= 0 || f >= 1 {
			return errors.New("must be between 0 and 1 (exclusive): the fraction of a token's lifetime after which it is obtained again")
		}
		return nil
	}
	keys := []Key{
		{Name: "security.delegation.tokens.enabled", Type: Bool, Default: "true", Deprecated: []string{"security.kerberos.fetch.delegation-token"},
			Doc: "Obtain delegation tokens on the JobManager for the services a job reaches (Kafka, PostgreSQL) and push them to the TaskManagers running the job, so that TaskManagers need no keytab."},
		{Name: "security.delegation.tokens.renewal.retry.backoff", Type: Duration, Default: "1 h", Min: new(int64(1)),
			Doc: "Time between attempts to obtain a token after a provider failed; shortened so that a retry always happens before the token in use expires."},
		{Name: "security.delegation.tokens.renewal.time-ratio", Type: Float, Default: "0.75", Check: ratio,
			Doc: "Fraction of a token's lifetime after which the JobManager obtains it again."},
		{Name: "security.delegation.tokens.expiry-margin", Type: Duration, Default: "30 s",
			Doc: "A job whose token for a service could not be renewed fails this long before the token expires (unless the provider's expiry-action is continue); at most half the time between the planned renewal and the expiry."},
		{Name: "security.delegation.token.provider.postgres.command", Type: List,
			Doc: "Command (program and arguments) the JobManager runs to obtain a PostgreSQL role password for a job; it prints the password and its expiry (two lines: password, then RFC 3339 time or Unix seconds; or a JSON object with user, password and expires). SLUICE_JOB_ID and SLUICE_JOB_OWNER are set in its environment."},
		{Name: "security.delegation.token.provider.postgres.user", Type: String,
			Doc: "PostgreSQL role the command's passwords are for, when the command does not print it."},
		{Name: "security.delegation.token.provider.sluice.lifetime", Type: Duration, Default: "1 h", Min: new(int64(1000)),
			Doc: "Lifetime of a job's token for the cluster's own REST API (renewed at the time ratio while the job runs)."},
		{Name: "security.delegation.token.provider.kafka.sasl.mechanism", Type: String, Default: "SCRAM-SHA-512", Enum: []string{"SCRAM-SHA-256", "SCRAM-SHA-512"},
			Doc: "Mechanism of security.delegation.token.provider.kafka.sasl.jaas.config."},
		{Name: "security.delegation.token.provider.kafka.sasl.jaas.config", Type: String,
			Doc: "The JobManager's own SCRAM credential for obtaining Kafka delegation tokens (ScramLoginModule required username=\"...\" password=\"...\"; the password may be file:PATH); unset: its Kerberos login (KafkaClient login context, GSSAPI)."},
		{Name: "security.delegation.token.provider.kafka.max-lifetime", Type: Duration, Default: "7 d", Min: new(int64(1000)),
			Doc: "Longest lifetime the Kafka provider asks for a delegation token (the broker caps it by delegation.token.max.lifetime.ms)."},
	}
	for _, s := range DelegationTokenServices {
		def := "true"
		if s == "sluice" {
			// No built-in operator calls the REST API back: a token nobody uses is only
			// exposure, so a job gets one only where the operator asks for it.
			def = "false"
		}
		keys = append(keys,
			Key{Name: "security.delegation.token.provider." + s + ".enabled", Type: Bool, Default: def, Job: s == "sluice",
				Doc: "Obtain " + s + " delegation tokens for the jobs that use " + s + " (sluice: a token for the cluster's REST API, viewing the job's own state only; a job may set it in its config block)."},
			Key{Name: "security.delegation.token.provider." + s + ".expiry-action", Type: String, Default: "fail", Enum: []string{"fail", "continue"}, Job: true,
				Doc: "What happens to a job whose " + s + " token is about to expire and could not be renewed: fail (before it lapses, naming the service) or continue (the job keeps running; connections already authenticated may outlive the token)."},
		)
	}
	// Flink's providers for systems sluice has no connector for: a Flink configuration that
	// turns them off (or on) still loads, since no job here can reach those systems.
	for _, s := range flinkOnlyTokenProviders {
		keys = append(keys, Key{Name: "security.delegation.token.provider." + s + ".enabled", Type: Bool, Default: "false",
			Doc: "Flink's " + s + " delegation-token provider; sluice has no " + s + " connector, so it is accepted and ignored."})
	}
	for _, k := range keys {
		Register(k)
	}
}

// flinkOnlyTokenProviders are Flink's delegation-token providers for systems sluice does not
// reach (Hadoop file systems, HBase, S3 through Hadoop or Presto).
var flinkOnlyTokenProviders = []string{"hadoopfs", "hbase", "s3-hadoop", "s3-presto"}
