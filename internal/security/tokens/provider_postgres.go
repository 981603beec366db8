package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// PostgresCommandKey is the key of the PostgreSQL provider's command.
const PostgresCommandKey = "security.delegation.token.provider.postgres.command"

// PostgresCommand is the `postgres` provider: it runs a command the operator configures on
// the JobManager (a script that creates or rotates a short-lived role password with the
// database's own tools), so the database's password policy stays in charge. The command prints
// the password and its expiry: two lines (password, then an RFC 3339 time or Unix seconds),
// or a JSON object {"user": ..., "password": ..., "expires": ...}. Its environment has
// SLUICE_JOB_ID and SLUICE_JOB_OWNER. What it prints is never logged; what it writes to
// stderr is shown on failure (so it must not print the password there).
type PostgresCommand struct {
	Argv []string
	User string // the role, when the command does not print it
}

var _ Provider = (*PostgresCommand)(nil)

// Service implements Provider.
func (p *PostgresCommand) Service() string { return credentials.Postgres }

// Obtain runs the command.
func (p *PostgresCommand) Obtain(ctx context.Context, job Job, _ []credentials.Token) ([]credentials.Token, time.Time, error) {
	if len(p.Argv) == 0 {
		return nil, time.Time{}, fmt.Errorf("%s is not set", PostgresCommandKey)
	}
	needed := len(job.Uses) == 0
	for _, u := range job.Uses {
		needed = needed || u["password-set"] == ""
	}
	if !needed {
		return nil, time.Time{}, ErrNotNeeded // every sink has its own password
	}
	cmd := exec.CommandContext(ctx, p.Argv[0], p.Argv[1:]...)
	cmd.Env = append(os.Environ(), "SLUICE_JOB_ID="+job.ID, "SLUICE_JOB_OWNER="+job.Owner)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500] + "..."
		}
		return nil, time.Time{}, fmt.Errorf("%s %q: %v: %s", PostgresCommandKey, p.Argv[0], err, msg)
	}
	user, pw, exp, err := parsePasswordOutput(out.Bytes())
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s %q printed %w", PostgresCommandKey, p.Argv[0], err)
	}
	if user == "" {
		user = p.User
	}
	return []credentials.Token{{Service: credentials.Postgres, ID: user, Secret: pw, Expires: exp}}, exp, nil
}

// parsePasswordOutput reads the command's output. Errors never quote it: it holds a password.
func parsePasswordOutput(b []byte) (user, password string, expires time.Time, err error) {
	b = bytes.TrimSpace(b)
	if bytes.HasPrefix(b, []byte("{")) {
		var v struct {
			User     string          `json:"user"`
			Password string          `json:"password"`
			Expires  json.RawMessage `json:"expires"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return "", "", time.Time{}, errors.New("a JSON object that does not parse (want {\"user\", \"password\", \"expires\"})")
		}
		exp := strings.Trim(string(v.Expires), `"`)
		t, err := parseExpiry(exp)
		if err != nil {
			return "", "", time.Time{}, err
		}
		if v.Password == "" {
			return "", "", time.Time{}, errors.New("no password (JSON field password)")
		}
		return v.User, v.Password, t, nil
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) != 2 || strings.TrimSpace(lines[0]) == "" {
		return "", "", time.Time{}, fmt.Errorf("%d line(s): want two, the password and its expiry", len(lines))
	}
	t, err := parseExpiry(strings.TrimSpace(lines[1]))
	if err != nil {
		return "", "", time.Time{}, err
	}
	return "", strings.TrimRight(lines[0], "\r"), t, nil
}

func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, fmt.Errorf("an expiry %q that is neither an RFC 3339 time nor Unix seconds", s)
}
