package postgres

// TokenOptions tell the JobManager's PostgreSQL delegation-token provider (tokens.Endpoint)
// whether this sink leaves its login to a token: it does unless its url carries a password
// (password=... or password=file:PATH). The password itself is never included.
func (o *Options) TokenOptions() map[string]string {
	out := map[string]string{"user": o.URL.cs.settings["user"], "host": o.URL.cs.settings["host"], "dbname": o.URL.cs.settings["dbname"]}
	if _, ok := o.URL.cs.settings["password"]; ok {
		out["password-set"] = "true"
	}
	return out
}
