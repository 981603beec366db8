package tokens

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/security/credentials"
)

func TestReceiver(t *testing.T) {
	var logs bytes.Buffer
	r := NewReceiver(slog.New(slog.NewTextHandler(&logs, nil)))
	exp := time.Now().Add(time.Hour)
	set := Set{Job: "j1", Version: 2, Tokens: []credentials.Token{
		{Service: "kafka", ID: "tok-1", Secret: "kafka-secret", Mechanism: "SCRAM-SHA-256", Expires: exp},
		{Service: "postgres", ID: "alice", Secret: "pg-secret", Expires: exp},
	}}
	if !r.Install(set) {
		t.Fatal("not installed")
	}
	if r.Install(Set{Job: "j1", Version: 1}) {
		t.Fatal("an older version replaced a newer one")
	}
	c, err := r.For("j1").Credentials(context.Background(), "kafka")
	if err != nil {
		t.Fatal(err)
	}
	if tk := c.(*credentials.Token); tk.ID != "tok-1" || tk.Secret != "kafka-secret" {
		t.Fatalf("%+v", tk)
	}
	if _, err := r.For("j2").Credentials(context.Background(), "kafka"); !errors.Is(err, credentials.ErrNone) {
		t.Fatalf("another job's tokens: %v", err)
	}
	if _, err := r.For("j1").Credentials(context.Background(), "sluice"); !errors.Is(err, credentials.ErrNone) {
		t.Fatalf("a service without a token: %v", err)
	}
	r.now = func() time.Time { return exp.Add(time.Second) }
	if _, err := r.For("j1").Credentials(context.Background(), "postgres"); err == nil || errors.Is(err, credentials.ErrNone) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired token: %v", err)
	}
	r.Drop("j1")
	if _, err := r.For("j1").Credentials(context.Background(), "kafka"); !errors.Is(err, credentials.ErrNone) {
		t.Fatalf("after Drop: %v", err)
	}
	if r.Version("j1") != 0 || len(r.Jobs()) != 0 {
		t.Fatal("a dropped job is still known")
	}
	for _, secret := range []string{"kafka-secret", "pg-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the receiver logged a secret:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "tok-1") && !strings.Contains(logs.String(), "delegation tokens received") {
		t.Fatalf("nothing logged about the installed tokens:\n%s", logs.String())
	}
}

func TestPostgresCommand(t *testing.T) {
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name, script string
		user         string
		err          string
	}{
		{"lines", "printf 'pw-1\\n" + exp.Format(time.RFC3339) + "\\n'", "app", ""},
		{"unix", "printf 'pw-1\\n%d\\n' " + itoa(exp.Unix()), "app", ""},
		{"json", `printf '{"user":"alice","password":"pw-1","expires":"` + exp.Format(time.RFC3339) + `"}'`, "alice", ""},
		{"one line", "echo pw-1", "", "1 line(s)"},
		{"bad expiry", "printf 'pw-1\\nsoon\\n'", "", "neither an RFC 3339"},
		{"fails", "echo 'role app is locked' >&2; exit 3", "", "role app is locked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &PostgresCommand{Argv: []string{"sh", "-c", tc.script}, User: "app"}
			ts, got, err := p.Obtain(context.Background(), Job{ID: "j1"}, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "pw-1") {
					t.Fatalf("err %v, want one naming %q and not the password", err, tc.err)
				}
				if !strings.Contains(err.Error(), PostgresCommandKey) {
					t.Fatalf("err %v does not name %s", err, PostgresCommandKey)
				}
				return
			}
			if err != nil || !got.Equal(exp) || len(ts) != 1 || ts[0].Secret != "pw-1" || ts[0].ID != tc.user {
				t.Fatalf("%+v %v %v", ts, got, err)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPostgresCommandNotNeeded: sinks with their own password need no token: the command
// does not run.
func TestPostgresCommandNotNeeded(t *testing.T) {
	p := &PostgresCommand{Argv: []string{"sh", "-c", "exit 7"}}
	if _, _, err := p.Obtain(context.Background(), Job{ID: "j", Uses: []map[string]string{{"password-set": "true"}}}, nil); !errors.Is(err, ErrNotNeeded) {
		t.Fatalf("%v", err)
	}
	if _, _, err := p.Obtain(context.Background(), Job{ID: "j", Uses: []map[string]string{{"password-set": "true"}, {}}}, nil); err == nil || errors.Is(err, ErrNotNeeded) {
		t.Fatalf("one sink without a password: %v", err)
	}
}
