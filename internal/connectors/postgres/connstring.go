package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// connParams are the libpq connection parameters the sink accepts, under libpq's own names
// (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS).
var connParams = []string{
	"host", "port", "dbname", "user", "password", "connect_timeout", "client_encoding", "options",
	"application_name", "sslmode", "sslrootcert", "sslcert", "sslkey", "sslsni", "sslnegotiation",
	"sslcertmode", "krbsrvname", "gsslib", "gssencmode", "target_session_attrs", "channel_binding",
	"require_auth", "min_protocol_version", "max_protocol_version",
}

// refusedParams are libpq parameters the sink refuses, with what to do instead. The first
// group would make a TaskManager read its own files (its OS user's ~/.pgpass, service files)
// on behalf of a job, outside the job's authorized files.
var refusedParams = map[string]string{
	"passfile":      "a password file of the TaskManager's OS user is not the job's: give password=file:PATH (a file the job is authorized to read)",
	"service":       "service files are the TaskManager's, not the job's: write the parameters into url",
	"servicefile":   "service files are the TaskManager's, not the job's: write the parameters into url",
	"sslpassword":   "encrypted client keys are not supported: give an unencrypted sslkey the job is authorized to read",
	"hostaddr":      "not supported: give host (a name or an address)",
	"sslcrl":        "not supported",
	"sslcrldir":     "not supported",
	"requirepeer":   "not supported (Unix sockets only)",
	"replication":   "a sink writes rows, not replication",
	"gssdelegation": "credentials are never delegated to the server",
}

// sslModes are libpq's sslmode values.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// connString is a parsed libpq connection string: the `url` option.
type connString struct {
	settings map[string]string
}

// parseConnString parses a libpq connection URL (postgresql://user@host:port/db?param=value)
// or key=value string. Its errors never quote the string: it may hold a password.
func parseConnString(s string) (connString, error) {
	var (
		set map[string]string
		err error
	)
	if strings.HasPrefix(s, "postgresql://") || strings.HasPrefix(s, "postgres://") {
		set, err = parseConnURL(s)
	} else {
		set, err = parseKeywordValue(s)
	}
	if err != nil {
		return connString{}, err
	}
	for k := range set {
		if why, ok := refusedParams[k]; ok {
			return connString{}, fmt.Errorf("parameter %s: %s", k, why)
		}
		if !slices.Contains(connParams, k) {
			if !paramName(k) {
				// Not a parameter's name: perhaps a piece of a password; do not show it.
				return connString{}, fmt.Errorf("a parameter name that is not a libpq parameter (known: %s; quote values holding spaces)", strings.Join(connParams, ", "))
			}
			return connString{}, fmt.Errorf("unknown libpq parameter %q (known: %s; server settings go into options=-c name=value)", k, strings.Join(connParams, ", "))
		}
	}
	if m, ok := set["sslmode"]; ok && !slices.Contains(sslModes, m) {
		return connString{}, fmt.Errorf("sslmode %q: want one of %s", m, strings.Join(sslModes, ", "))
	}
	switch set["gssencmode"] {
	case "", "disable", "prefer", "require":
	default:
		return connString{}, fmt.Errorf("gssencmode %q: want disable, prefer or require", set["gssencmode"])
	}
	if g := set["gsslib"]; g != "" && g != "gssapi" {
		return connString{}, fmt.Errorf("gsslib %q: only gssapi (Kerberos) is supported", g)
	}
	for _, h := range strings.Split(set["host"], ",") {
		if strings.HasPrefix(h, "/") || strings.HasPrefix(h, "@") {
			return connString{}, fmt.Errorf("host %q is a Unix-domain socket: not supported, as the server would authenticate the TaskManager's OS user (peer) rather than the job; give a host name and port", h)
		}
	}
	if set["dbname"] == "" {
		return connString{}, errors.New("no database: name it (postgresql://HOST/DB or dbname=DB), so the job's access postgres:table/DB.SCHEMA.TABLE can be authorized at submit")
	}
	return connString{settings: set}, nil
}

// paramName reports whether k looks like a libpq parameter name (lower case letters and _).
func paramName(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// parseConnURL parses libpq's URI form:
// postgresql://[user[:password]@][host][:port][,...][/dbname][?param=value&...].
func parseConnURL(s string) (map[string]string, error) {
	rest := s[strings.Index(s, "://")+3:]
	set := map[string]string{}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		q, err := url.ParseQuery(rest[i+1:])
		if err != nil {
			return nil, fmt.Errorf("malformed query parameters: %v", errors.Unwrap(err))
		}
		for k, v := range q {
			if len(v) != 1 {
				return nil, fmt.Errorf("parameter %s given %d times", k, len(v))
			}
			if k == "ssl" && v[0] == "true" { // libpq's alias
				k, v[0] = "sslmode", "require"
			}
			set[k] = v[0]
		}
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		db, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return nil, errors.New("malformed database name")
		}
		if db != "" {
			set["dbname"] = db
		}
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		user, pass, hasPass := strings.Cut(rest[:i], ":")
		u, err := url.PathUnescape(user)
		if err != nil {
			return nil, errors.New("malformed user name")
		}
		if u != "" {
			set["user"] = u
		}
		if hasPass {
			p, err := url.PathUnescape(pass)
			if err != nil {
				return nil, errors.New("malformed password (percent-encode reserved characters)")
			}
			set["password"] = p
		}
		rest = rest[i+1:]
	}
	if rest != "" {
		var hosts, ports []string
		for _, hp := range strings.Split(rest, ",") {
			host, port := hp, ""
			if strings.HasPrefix(hp, "[") { // [IPv6]:port
				end := strings.IndexByte(hp, ']')
				if end < 0 {
					return nil, errors.New("malformed host: unclosed [")
				}
				host, port = hp[1:end], strings.TrimPrefix(hp[end+1:], ":")
			} else if i := strings.LastIndexByte(hp, ':'); i >= 0 {
				host, port = hp[:i], hp[i+1:]
			}
			h, err := url.PathUnescape(host)
			if err != nil {
				return nil, errors.New("malformed host")
			}
			hosts, ports = append(hosts, h), append(ports, port)
		}
		if strings.Join(hosts, "") != "" {
			set["host"] = strings.Join(hosts, ",")
		}
		if strings.Join(ports, "") != "" {
			set["port"] = strings.Join(ports, ",")
		}
	}
	return set, nil
}

// parseKeywordValue parses libpq's key=value form: values may be single-quoted, a backslash
// escapes the next character.
func parseKeywordValue(s string) (map[string]string, error) {
	set := map[string]string{}
	prev := "" // the last key read
	prevQuoted := false
	const space = " \t\n\r\v\f"
	s = strings.TrimLeft(s, space)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		key := ""
		if eq >= 0 {
			key = strings.TrimRight(s[:eq], space)
		}
		if key == "" || strings.ContainsAny(key, space) {
			// The text before "=" may be the rest of a password holding a space: never
			// show it, name where it is.
			if !slices.Contains(connParams, prev) {
				// Nothing read yet, or the last key was itself a piece of a value.
				return nil, errors.New(`want key=value pairs separated by spaces, values holding spaces in single quotes ('...'), or a postgresql:// URL`)
			}
			return nil, fmt.Errorf(`after the value of %s, text without "=": quote values holding spaces ('...')`, prev)
		}
		if prev == "password" && !prevQuoted && !slices.Contains(connParams, key) && refusedParams[key] == "" {
			// Most likely the rest of a password holding a space: do not show it.
			return nil, errors.New(`after the value of password, a name that is not a libpq parameter: quote a password holding spaces ('...')`)
		}
		prev, prevQuoted = key, false
		s = strings.TrimLeft(s[eq+1:], space)
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			s = s[1:]
			prevQuoted = true
			closed := false
			for len(s) > 0 {
				c := s[0]
				s = s[1:]
				if c == '\\' && len(s) > 0 {
					val.WriteByte(s[0])
					s = s[1:]
					continue
				}
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("value of %s: unterminated quoted string", key)
			}
		} else {
			for len(s) > 0 && !strings.ContainsRune(space, rune(s[0])) {
				c := s[0]
				s = s[1:]
				if c == '\\' && len(s) > 0 {
					c = s[0]
					s = s[1:]
				}
				val.WriteByte(c)
			}
		}
		if _, dup := set[key]; dup {
			return nil, fmt.Errorf("parameter %s given twice", key)
		}
		set[key] = val.String()
		s = strings.TrimLeft(s, space)
	}
	return set, nil
}

// maskedValue replaces a password wherever a connection string is shown (REST, logs, audit),
// as config.Entries masks sensitive keys.
const maskedValue = "******"

// String renders the connection string as key=value pairs in libpq's order-free form, with
// the password masked (a password file's path is shown: it is not the secret).
func (c connString) String() string {
	keys := make([]string, 0, len(c.settings))
	for k := range c.settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		v := c.settings[k]
		if k == "password" && !strings.HasPrefix(v, "file:") {
			v = maskedValue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(quoteValue(v))
	}
	return b.String()
}

// keywordValue renders settings as a libpq key=value string, for pgconn.
func keywordValue(set map[string]string) string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(quoteValue(set[k]))
	}
	return b.String()
}

func quoteValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
