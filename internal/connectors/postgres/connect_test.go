package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// The sink's login: a password in url wins; else the TaskManager's credentials for postgres, a
// delegation token (ID as user, Secret as password) or a Kerberos login (the principal's first
// component as user unless url names one).
func TestResolveLogin(t *testing.T) {
	krb := &credentials.Kerberos{Context: "PostgresClient", Principal: "alice/etl@EXAMPLE.COM"}
	for _, tc := range []struct {
		name      string
		set       map[string]string
		creds     any
		credErr   error
		user, pw  string
		kerberos  bool
		err       string
		krbErrSet bool
	}{
		{name: "password", set: map[string]string{"user": "bob", "password": "pw"}, creds: krb, user: "bob", pw: "pw"},
		{name: "token", set: map[string]string{"user": "bob"}, creds: &credentials.Token{Service: "postgres", ID: "tok-user", Secret: "tok-secret"}, user: "tok-user", pw: "tok-secret"},
		{name: "kerberos", set: map[string]string{}, creds: krb, user: "alice", kerberos: true},
		{name: "kerberos, user given", set: map[string]string{"user": "carol"}, creds: krb, user: "carol", kerberos: true},
		{name: "nothing held", set: map[string]string{"user": "bob"}, credErr: fmt.Errorf("%w: postgres", credentials.ErrNone), user: "bob", krbErrSet: true},
		{name: "no user at all", set: map[string]string{}, credErr: fmt.Errorf("%w: postgres", credentials.ErrNone), err: "url: no user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &dataflow.RuntimeContext{Operator: "out", Credentials: credentials.Func(func(_ context.Context, service string) (any, error) {
				if service != credentials.Postgres {
					t.Errorf("asked for %q", service)
				}
				return tc.creds, tc.credErr
			})}
			l, err := resolveLogin(context.Background(), rc, tc.set)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.user != tc.user || l.password != tc.pw || (l.krb != nil) != tc.kerberos || (l.krbErr != nil) != tc.krbErrSet {
				t.Errorf("login %+v", l)
			}
		})
	}
}

// The GSS provider finds a connection's login by the handle in the service name only, and
// explains a missing one.
func TestGSSHandles(t *testing.T) {
	g := &gssClient{}
	if _, err := g.GetInitToken("db", "postgres"); err == nil || !strings.Contains(err.Error(), "no Kerberos credentials") {
		t.Errorf("no handle: %v", err)
	}
	name, unregister := registerGSS("postgres", &gssLogin{err: errors.New(`kerberos: login context "PostgresClient" may not use the Kerberos login: add it to security.kerberos.login.contexts`)})
	if _, err := g.GetInitToken("db", name); err == nil || !strings.Contains(err.Error(), "security.kerberos.login.contexts") {
		t.Errorf("login refused: %v", err)
	}
	unregister()
	if _, err := g.GetInitToken("db", name); err == nil || !strings.Contains(err.Error(), "no Kerberos credentials") {
		t.Errorf("after unregister: %v", err)
	}
}

// COPY's text format: tabs, newlines, backslashes escaped, NULL as \N, bytes as bytea hex,
// nested records as JSON.
func TestAppendCopyRow(t *testing.T) {
	schema := dataflow.Schema{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}, {Name: "e"}, {Name: "f", Kind: dataflow.KindStruct, Fields: dataflow.Schema{{Name: "x", Kind: dataflow.KindInt}}}}
	r := dataflow.Record{dataflow.Int(-7), dataflow.String("a\tb\nc\\d\re"), dataflow.Null(), dataflow.Bytes([]byte{0, 255}), dataflow.Float(1.5),
		dataflow.Struct(dataflow.Record{dataflow.Int(3)})}
	got := string(appendCopyRow(nil, schema, r))
	want := "-7\ta\\tb\\nc\\\\d\\re\t\\N\t\\\\x00ff\t1.5\t{\"x\":3}\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
