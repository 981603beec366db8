package config

// Keys shared by several packages, with Flink's names and defaults.
// Security keys follow FLINK-SECURITY-KEYS.md. Packages register
// their own keys from their own init functions.

var (
	portRange   = [2]*int64{new(int64(0)), new(int64(65535))}
	atLeastOne  = new(int64(1))
	atLeastZero = new(int64(0))
	jvmDefault  = new(int64(-1)) // Flink's -1: leave it to the TLS library
)

var tlsStoreTypes = []string{"PKCS12", "JKS", "PEM"}

func init() {
	for _, k := range []Key{
		// Cluster addresses and ports.
		{Name: "jobmanager.rpc.address", Type: String, Default: "localhost", Doc: "Address the job manager is reached at."},
		{Name: "jobmanager.rpc.port", Type: Int, Default: "6123", Min: portRange[0], Max: portRange[1], Doc: "Job manager RPC port."},
		{Name: "jobmanager.bind-host", Type: String, Default: "localhost", Doc: "Local address the job manager binds to."},
		{Name: "rest.address", Type: String, Default: "localhost", Doc: "Address clients reach the REST API at."},
		{Name: "rest.bind-address", Type: String, Default: "localhost", Deprecated: []string{"web.address", "jobmanager.web.address"}, Doc: "Local address the REST server binds to."},
		{Name: "rest.port", Type: Int, Default: "8081", Deprecated: []string{"web.port", "jobmanager.web.port"}, Min: portRange[0], Max: portRange[1], Doc: "REST API port."},
		{Name: "rest.retry.max-attempts", Type: Int, Default: "20", Min: atLeastZero, Doc: "Times a client retries a request whose connection the JobManager refused (it was never sent)."},
		{Name: "rest.retry.delay", Type: Duration, Default: "1 s", Doc: "Time between a client's retries of a refused connection."},
		{Name: "rest.max-upload-size", Type: Bytes, Default: "64mb", Doc: "Largest request body the REST server accepts."},
		{Name: "rest.base-path", Type: String, Doc: "Path prefix the REST API and dashboard are served under (behind a reverse proxy), e.g. /sluice."},
		{Name: "rest.trusted-proxies", Type: List, Doc: "Addresses or CIDR ranges of reverse proxies whose X-Forwarded-For and X-Forwarded-Prefix headers are believed."},
		{Name: "rest.listeners", Type: Object, Doc: "Extra REST listeners: a list of maps."},
		{Name: "taskmanager.numberOfTaskSlots", Type: Int, Default: "1", Min: atLeastOne, Doc: "Task slots per task manager."},
		{Name: "taskmanager.host", Type: String, Doc: "Address the task manager advertises; empty means detect."},
		{Name: "taskmanager.bind-host", Type: String, Default: "localhost", Doc: "Local address the task manager binds to."},
		{Name: "taskmanager.data.port", Type: Int, Default: "0", Deprecated: []string{"taskmanager.net.port"}, Min: portRange[0], Max: portRange[1], Doc: "Data exchange port; 0 picks a free port."},
		{Name: "taskmanager.metrics.port", Type: Int, Default: "0", Min: portRange[0], Max: portRange[1], Doc: "Metrics port; 0 picks a free port."},
		{Name: "taskmanager.rpc.port", Type: Int, Default: "0", Min: portRange[0], Max: portRange[1], Doc: "Control-plane (RPC) port of the task manager; 0 picks a free port."},
		{Name: "taskmanager.resource-id", Type: String, Doc: "Task manager ID; empty means the id in the TaskManager's certificate, else generate one."},
		{Name: "taskmanager.registration.timeout", Type: Duration, Default: "5 min", Min: new(int64(1)), Doc: "A TaskManager that is not registered with the JobManager within this time (at start, or after losing it) exits with an error."},
		{Name: "blob.server.port", Type: Int, Default: "0", Min: portRange[0], Max: portRange[1], Doc: "Blob server port; 0 picks a free port."},

		// Execution.
		{Name: "parallelism.default", Job: true, Type: Int, Default: "1", Min: atLeastOne, Doc: "Default operator parallelism."},
		{Name: "heartbeat.interval", Type: Duration, Default: "10 s", Doc: "Time between heartbeats."},
		{Name: "heartbeat.timeout", Type: Duration, Default: "50 s", Doc: "Time without heartbeat after which a peer is lost."},
		{Name: "slot.request.timeout", Type: Duration, Default: "5 min", Doc: "How long a job waits for enough free task slots before it fails."},
		// The default applies only to a job without checkpointing: a job with
		// execution.checkpointing.interval and no restart-strategy.type set
		// restarts with exponential-delay (Flink's rule; see Config.IsSet).
		{Name: "restart-strategy.type", Job: true, Type: String, Default: "none", Deprecated: []string{"restart-strategy"},
			Enum: []string{"none", "disable", "off", "no-restart", "fixed-delay", "fixeddelay", "exponential-delay", "exponentialdelay"},
			Doc:  "Job restart strategy: none (or disable, off, no-restart), fixed-delay (fixeddelay) or exponential-delay (exponentialdelay). Unset: none, or exponential-delay for a job with execution.checkpointing.interval (as Flink)."},
		{Name: "restart-strategy.fixed-delay.attempts", Job: true, Type: Int, Default: "1", Min: atLeastZero, Doc: "Restarts before the job fails."},
		{Name: "restart-strategy.fixed-delay.delay", Job: true, Type: Duration, Default: "1 s", Doc: "Delay between restarts."},
		{Name: "execution.buffer-timeout", Type: Duration, Default: "100 ms", Doc: "Longest time a network buffer waits before it is flushed."},
		{Name: "taskmanager.network.memory.buffer-size", Type: Bytes, Default: "64kb", Aliases: []string{"taskmanager.memory.segment-size"}, Doc: "Size of a network buffer (Flink: 32kb; sluice sends fewer, larger buffers: half the system calls per byte)."},
		{Name: "taskmanager.network.memory.buffers-per-channel", Type: Int, Default: "2", Min: atLeastZero, Doc: "Exclusive buffers per channel."},
		{Name: "taskmanager.network.memory.floating-buffers-per-gate", Type: Int, Default: "8", Min: atLeastZero, Doc: "Floating buffers per input gate."},

		// Internal TLS.
		{Name: "security.ssl.internal.enabled", Type: Bool, Default: "false", Deprecated: []string{"security.ssl.enabled"}, Doc: "TLS for internal connections (RPC, data, blob)."},
		{Name: "rpc.ssl.enabled", Type: Bool, Default: "true", Aliases: []string{"pekko.ssl.enabled", "akka.ssl.enabled"}, Doc: "TLS for RPC when internal TLS is on."},
		{Name: "taskmanager.data.ssl.enabled", Type: Bool, Default: "true", Deprecated: []string{"taskmanager.net.ssl.enabled"}, Doc: "TLS for data exchange when internal TLS is on."},
		{Name: "blob.service.ssl.enabled", Type: Bool, Default: "true", Doc: "TLS for the blob service when internal TLS is on."},
		{Name: "security.ssl.internal.keystore", Type: String, Fallbacks: []string{"security.ssl.keystore"}, Doc: "Internal key store (PKCS12, JKS or PEM)."},
		{Name: "security.ssl.internal.keystore-password", Type: String, Fallbacks: []string{"security.ssl.keystore-password"}, Doc: "Internal key store password."},
		{Name: "security.ssl.internal.key-password", Type: String, Fallbacks: []string{"security.ssl.key-password"}, Doc: "Internal private key password."},
		{Name: "security.ssl.internal.keystore-type", Type: String, Enum: tlsStoreTypes, Doc: "Internal key store type; detected when unset."},
		{Name: "security.ssl.internal.truststore", Type: String, Fallbacks: []string{"security.ssl.truststore"}, Doc: "Internal trust store."},
		{Name: "security.ssl.internal.truststore-password", Type: String, Fallbacks: []string{"security.ssl.truststore-password"}, Doc: "Internal trust store password."},
		{Name: "security.ssl.internal.truststore-type", Type: String, Enum: tlsStoreTypes, Doc: "Internal trust store type; detected when unset."},
		{Name: "security.ssl.internal.cert.fingerprint", Type: List, Doc: "Accepted peer certificate fingerprints (SHA-1 or SHA-256)."},
		{Name: "security.ssl.internal.session-cache-size", Type: Int, Default: "-1", Min: jvmDefault, Doc: "TLS session cache size; -1 is the library default."},
		{Name: "security.ssl.internal.session-timeout", Type: Duration, Default: "-1 ms", Min: jvmDefault, Doc: "TLS session timeout; -1 ms is the library default."},
		{Name: "security.ssl.internal.handshake-timeout", Type: Duration, Default: "-1 ms", Min: jvmDefault, Doc: "TLS handshake timeout; -1 ms is the library default."},
		{Name: "security.ssl.internal.close-notify-flush-timeout", Type: Duration, Default: "-1 ms", Min: jvmDefault, Doc: "close_notify flush timeout; -1 ms is the library default."},
		{Name: "security.ssl.internal.auto", Type: Bool, Default: "false", Doc: "Generate internal TLS material automatically."},
		{Name: "security.ssl.internal.auto.dir", Type: String, Doc: "Directory for generated internal TLS material."},
		{Name: "security.cluster.join-token", Type: String, Doc: "Token a process presents to join the cluster."},
		{Name: "security.cluster.join-token-file", Type: String, Doc: "File holding the cluster join token."},
		{Name: "security.ssl.internal.auto.cert-ttl", Type: Duration, Default: "24 h", Min: new(int64(300000)), Doc: "Lifetime of the certificates the automatic cluster CA issues (at least 5 min); each holder renews at two thirds of the validity left when it got the certificate, at most every 10 s, backing off on failure."},
		{Name: "security.ssl.internal.auto.join-token.max-uses", Type: Int, Default: "1", Min: atLeastZero, Doc: "Joins one join token admits (each issues one TaskManager certificate); 1 is single-use, 0 is unbounded until the token expires."},
		{Name: "security.cluster.join-token.ttl", Type: Duration, Default: "24 h", Min: new(int64(1000)), Doc: "Lifetime of the join token the JobManager creates in automatic mode."},

		// Legacy shared TLS keys, read as fallbacks for internal and REST.
		{Name: "security.ssl.keystore", Type: String, Doc: "Legacy key store for internal and REST TLS."},
		{Name: "security.ssl.keystore-password", Type: String, Doc: "Legacy key store password."},
		{Name: "security.ssl.key-password", Type: String, Doc: "Legacy private key password."},
		{Name: "security.ssl.truststore", Type: String, Doc: "Legacy trust store for internal and REST TLS."},
		{Name: "security.ssl.truststore-password", Type: String, Doc: "Legacy trust store password."},

		// REST TLS.
		{Name: "security.ssl.rest.enabled", Type: Bool, Default: "false", Doc: "TLS for the REST API."},
		{Name: "security.ssl.rest.authentication-enabled", Type: Bool, Default: "false", Doc: "Require client certificates on the REST API."},
		{Name: "security.ssl.rest.keystore", Type: String, Fallbacks: []string{"security.ssl.keystore"}, Doc: "REST key store."},
		{Name: "security.ssl.rest.keystore-password", Type: String, Fallbacks: []string{"security.ssl.keystore-password"}, Doc: "REST key store password."},
		{Name: "security.ssl.rest.key-password", Type: String, Fallbacks: []string{"security.ssl.key-password"}, Doc: "REST private key password."},
		{Name: "security.ssl.rest.keystore-type", Type: String, Enum: tlsStoreTypes, Doc: "REST key store type; detected when unset."},
		{Name: "security.ssl.rest.truststore", Type: String, Fallbacks: []string{"security.ssl.truststore"}, Doc: "REST trust store; system trust when unset."},
		{Name: "security.ssl.rest.truststore-password", Type: String, Fallbacks: []string{"security.ssl.truststore-password"}, Doc: "REST trust store password."},
		{Name: "security.ssl.rest.truststore-type", Type: String, Enum: tlsStoreTypes, Doc: "REST trust store type; detected when unset."},
		{Name: "security.ssl.rest.cert.fingerprint", Type: List, Doc: "Accepted REST peer certificate fingerprints."},

		// Shared TLS parameters.
		{Name: "security.ssl.protocol", Type: List, Default: "TLSv1.3", Doc: "Accepted TLS versions (comma list)."},
		{Name: "security.ssl.algorithms", Type: List, Doc: "TLS 1.2 cipher suites (IANA names); Go's modern AEAD suites when unset."},
		{Name: "security.ssl.verify-hostname", Type: Bool, Default: "true", Doc: "Clients verify that the server's certificate names the host they dialed: REST clients, and internal connections (rpc, data, blob) verified with a trust store (not fingerprint pinning alone). false turns the check off (one warning at start)."},
		{Name: "security.ssl.provider", Type: String, Default: "JDK", Doc: "Accepted and ignored: Go's TLS needs no provider."},
		{Name: "security.ssl.reload", Type: Bool, Default: "false", Doc: "Reload key and trust material when the files change."},

		// Kerberos.
		{Name: "security.kerberos.login.principal", Type: String, Deprecated: []string{"security.principal"}, Doc: "Kerberos principal."},
		{Name: "security.kerberos.login.keytab", Type: String, Deprecated: []string{"security.keytab"}, Doc: "Kerberos keytab file."},
		{Name: "security.kerberos.login.use-ticket-cache", Type: Bool, Default: "true", Doc: "Use the Kerberos ticket cache."},
		{Name: "security.kerberos.login.contexts", Type: List, Doc: "Consumers that get the Kerberos credential (KafkaClient, Client, PostgresClient, RestServer)."},
		{Name: "security.kerberos.relogin.period", Type: Duration, Default: "1 min", Doc: "Time between Kerberos re-logins."},
		{Name: "security.kerberos.krb5-conf.path", Type: String, Doc: "krb5.conf file."},
		{Name: "security.kerberos.access.hadoopFileSystems", Type: List, Doc: "Reserved."},
		// Flink keys accepted so that a Flink configuration loads unchanged;
		// sluice has nothing for them to select.
		{Name: "security.context.factory.classes", Type: List, Doc: "Flink's security context factories; accepted and ignored (sluice's security contexts are built in)."},
		{Name: "security.module.factory.classes", Type: List, Doc: "Flink's security module factories; accepted and ignored (sluice's security modules are built in)."},
		{Name: "security.kerberos.principal-to-local", Type: List, Doc: "Rules mapping principals to local user names."},
		{Name: "security.kerberos.login.allow-insecure-keytab", Type: Bool, Default: "false", Doc: "Accept a keytab readable by other users."},
	} {
		Register(k)
	}
}

// REST authentication chain (internal/security/authn). Kept in its own
// block so the authn keys stay together and apart from the TLS keys above.
func init() {
	for _, k := range []Key{
		{Name: "security.rest.authentication.x509.principal-mapping-rules", Type: String,
			Doc: "Kafka-style rules (RULE:pattern/replacement/[LU], DEFAULT) mapping a client certificate subject to a user; empty means the subject's CN."},
		{Name: "security.rest.authentication.token.file", Type: String,
			Doc: "File of bearer token hashes (sha256:<hex>,user,\"groups\"), one per line; reloaded when it changes."},
		{Name: "security.rest.authentication.failures.max", Type: Int, Default: "10", Min: atLeastOne,
			Doc: "Failed authentications from one client address prefix on one listener within the window before further failures get 429 (a valid credential is never refused)."},
		{Name: "security.rest.authentication.failures.window", Type: Duration, Default: "1 min", Min: new(int64(1)),
			Doc: "Window over which failed authentications per listener and client address prefix are counted."},
		{Name: "security.rest.authentication.failures.ipv4-prefix", Type: Int, Default: "32",
			Doc: "IPv4 client addresses in one prefix of this length share a failure counter (8-32; 32: each address alone)."},
		{Name: "security.rest.authentication.failures.ipv6-prefix", Type: Int, Default: "64",
			Doc: "IPv6 client addresses in one prefix of this length share a failure counter (32-128; 64: one subnet)."},
	} {
		Register(k)
	}
}

// External authorizers (internal/security/authz/webhook, .../authz/opa) and
// the audit log (internal/security/audit). Kept in their own block so the
// authorization keys stay together and apart from the authn and TLS keys.
func init() {
	for _, k := range []Key{
		// Webhook authorizer: a SubjectAccessReview-like HTTPS service.
		{Name: "security.authorization.webhook.url", Type: String,
			Doc: "HTTPS URL the webhook authorizer POSTs AccessReview requests to."},
		{Name: "security.authorization.webhook.timeout", Type: Duration, Default: "3 s", Min: new(int64(1)),
			Doc: "Longest wait for a webhook answer; a late answer counts as a failure (see failure-policy)."},
		{Name: "security.authorization.webhook.cache-ttl.allowed", Type: Duration, Default: "5 min",
			Doc: "How long an allow from the webhook is reused for an identical request; 0 disables caching allows."},
		{Name: "security.authorization.webhook.cache-ttl.denied", Type: Duration, Default: "30 s",
			Doc: "How long a deny or no-opinion from the webhook is reused for an identical request; 0 disables caching them."},
		{Name: "security.authorization.webhook.failure-policy", Type: String, Default: "deny", Enum: []string{"deny", "no-opinion"},
			Doc: "Answer when the webhook cannot be asked: deny (fail closed) or no-opinion (let the next authorizer decide). Never allow."},
		{Name: "security.authorization.webhook.truststore", Type: String,
			Doc: "Trust store for the webhook's server certificate; system trust when unset."},
		{Name: "security.authorization.webhook.truststore-password", Type: String, Doc: "Webhook trust store password."},
		{Name: "security.authorization.webhook.truststore-type", Type: String, Enum: tlsStoreTypes, Doc: "Webhook trust store type; detected when unset."},
		{Name: "security.authorization.webhook.keystore", Type: String,
			Doc: "Key store with the client certificate presented to the webhook; none when unset."},
		{Name: "security.authorization.webhook.keystore-password", Type: String, Doc: "Webhook client key store password."},
		{Name: "security.authorization.webhook.key-password", Type: String, Doc: "Webhook client private key password."},
		{Name: "security.authorization.webhook.keystore-type", Type: String, Enum: tlsStoreTypes, Doc: "Webhook client key store type; detected when unset."},

		// OPA authorizer: Open Policy Agent's data API.
		{Name: "security.authorization.opa.url", Type: String,
			Doc: "Base URL of the OPA server, e.g. http://127.0.0.1:8181 (http only on loopback) or https://opa.example:8181."},
		{Name: "security.authorization.opa.path", Type: String, Default: "sluice/authz",
			Doc: "Policy document queried under /v1/data/, e.g. sluice/authz/decision for examples/policy.rego."},
		{Name: "security.authorization.opa.timeout", Type: Duration, Default: "2 s", Min: new(int64(1)),
			Doc: "Longest wait for an OPA answer; a late answer denies."},
		{Name: "security.authorization.opa.truststore", Type: String,
			Doc: "Trust store for an https OPA server's certificate; system trust when unset."},
		{Name: "security.authorization.opa.truststore-password", Type: String, Doc: "OPA trust store password."},
		{Name: "security.authorization.opa.truststore-type", Type: String, Enum: tlsStoreTypes, Doc: "OPA trust store type; detected when unset."},

		// Audit log of authorization decisions.
		{Name: "security.audit.log.path", Type: String,
			Doc: "File authorization decisions are appended to as JSON lines; no audit log when unset."},
		{Name: "security.audit.log.level", Type: String, Default: "denied", Enum: []string{"none", "denied", "all"},
			Doc: "Which decisions are audited: none, denied (everything but allows) or all."},
		{Name: "security.audit.log.max-size", Type: Bytes, Default: "100mb", Min: new(int64(1)),
			Doc: "Size at which the audit log is rotated to <path>.1."},
		{Name: "security.audit.log.max-backups", Type: Int, Default: "5", Min: atLeastOne,
			Doc: "Rotated audit logs kept (<path>.1 to <path>.N)."},
	} {
		Register(k)
	}
}

// Authorization (internal/security/authz). Kept in its own block so the
// authz keys stay together; the mode values are checked by
// authz.ParseModes, which also rejects allow-all combined with others.
func init() {
	for _, k := range []Key{
		{Name: "security.authorization.mode", Type: List, Default: "allow-all",
			Doc: "Authorizers asked in order, the first definite answer wins: allow-all (insecure default), or one or more of acl, webhook, opa."},
		{Name: "security.authorization.super-users", Type: List,
			Doc: "Users who may do everything, in addition to the super-users of the ACL policy file."},
		{Name: "security.authorization.acl.policy-file", Type: String,
			Doc: "ACL policy file (roles and bindings, see examples/policy.yaml) for mode acl; reloaded when it changes."},
	} {
		Register(k)
	}
}

// SPNEGO on the REST API (internal/security/authn, method kerberos). Kept
// apart from the Kerberos login keys: the acceptor has its own service
// principal and keytab, usually HTTP/<host>, not the cluster's principal.
func init() {
	for _, k := range []Key{
		{Name: "security.rest.authentication.kerberos.principal", Type: String,
			Doc: "Service principal of the REST API for SPNEGO (authentication method kerberos), e.g. HTTP/jm.example.com@EXAMPLE.COM."},
		{Name: "security.rest.authentication.kerberos.keytab", Type: String,
			Doc: "Keytab holding the key of security.rest.authentication.kerberos.principal; must not be readable by group or others."},
	} {
		Register(k)
	}
}
