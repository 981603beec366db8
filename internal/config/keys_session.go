package config

// Dashboard sessions (internal/security/authn/session.go): a browser
// exchanges a bearer token for a session cookie on a TLS listener that
// accepts tokens. Flink has no login, so these keys are sluice's own.
func init() {
	for _, k := range []Key{
		{Name: "security.rest.session.idle-timeout", Type: Duration, Default: "30 min", Min: new(int64(1000)),
			Doc: "A dashboard session not used for this long ends; the user logs in again."},
		{Name: "security.rest.session.absolute-timeout", Type: Duration, Default: "8 h", Min: new(int64(1000)),
			Doc: "A dashboard session ends this long after login, however much it is used."},
		{Name: "security.rest.session.max-sessions", Type: Int, Default: "10000", Min: atLeastOne,
			Doc: "Most dashboard sessions the JobManager holds at once; a login beyond it is refused (429)."},
	} {
		Register(k)
	}
}
