package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

func TestParseConnString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		err  string
	}{
		{in: "postgresql://alice:p%40ss@db.example:5433/app?sslmode=verify-full&sslrootcert=/etc/ca.crt",
			want: map[string]string{"user": "alice", "password": "p@ss", "host": "db.example", "port": "5433", "dbname": "app", "sslmode": "verify-full", "sslrootcert": "/etc/ca.crt"}},
		{in: "postgres://h1:1,h2:2/app", want: map[string]string{"host": "h1,h2", "port": "1,2", "dbname": "app"}},
		{in: "postgresql://[::1]:5432/app?ssl=true", want: map[string]string{"host": "::1", "port": "5432", "dbname": "app", "sslmode": "require"}},
		{in: "host=localhost dbname=app user=bob password='a b\\'c' krbsrvname=pg gssencmode=prefer",
			want: map[string]string{"host": "localhost", "dbname": "app", "user": "bob", "password": "a b'c", "krbsrvname": "pg", "gssencmode": "prefer"}},
		{in: "host=localhost", err: "no database"},
		{in: "dbname=app passfile=/root/.pgpass", err: "parameter passfile"},
		{in: "dbname=app service=prod", err: "parameter service"},
		{in: "postgresql://h/app?servicefile=/etc/x", err: "parameter servicefile"},
		{in: "dbname=app search_path=x", err: `unknown libpq parameter "search_path"`},
		{in: "dbname=app sslmode=verify", err: `sslmode "verify"`},
		{in: "dbname=app gssencmode=always", err: `gssencmode "always"`},
		{in: "dbname=app password='unterminated", err: "unterminated"},
		{in: "dbname=app dbname=other", err: "given twice"},
		{in: "host=/var/run/postgresql dbname=app", err: "Unix-domain socket"},
		{in: "postgresql://%2Fvar%2Frun%2Fpostgresql/app", err: "Unix-domain socket"},
		{in: "host=db,@abstract dbname=app", err: "Unix-domain socket"},
		// A password holding a space, unquoted: the error names where, never the pieces.
		{in: "host=h dbname=app password=Zq9 Wx7secret", err: "after the value of password"},
		{in: "host=h dbname=app password=Zq9 Wx7secret sslmode=require", err: "after the value of password"},
		{in: "password=Zq9 Wx7secret=1 more dbname=app", err: "quote a password holding spaces"},
		{in: "host=h Wx7secret more=1 dbname=app", err: "after the value of host"},
		{in: "Wx7secret more=1 dbname=app", err: "values holding spaces in single quotes"},
		{in: "dbname=app password=Zq9 wxsecret=1", err: "after the value of password, a name that is not a libpq parameter"},
		{in: "dbname=app password='Zq9' search_path=1", err: `unknown libpq parameter "search_path"`},
	} {
		cs, err := parseConnString(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "Zq9")) {
				t.Errorf("%q: the error shows a piece of the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if fmt.Sprint(cs.settings) != fmt.Sprint(tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, cs.settings, tc.want)
		}
	}
}

// A password never shows: not in the options' JSON, YAML-free text or any fmt verb, nor in
// a parse error of a malformed string.
func TestURLMasked(t *testing.T) {
	const pw = "Sup3r-Secret"
	for _, raw := range []string{
		"postgresql://alice:" + pw + "@h/app",
		"postgresql://alice@h/app?password=" + pw,
		"host=h dbname=app password=" + pw,
		"host=h password=" + pw, // fails: no dbname
		"host=h dbname=app password='" + pw,
	} {
		spec := fmt.Sprintf("name: j\noperators:\n  - {name: g, type: generator, count: 1}\n  - name: out\n    type: postgres\n    input: g\n    table: t\n    url: %q\n", raw)
		s, err := dataflow.ParseSpec([]byte(spec), nil)
		if err != nil {
			if strings.Contains(err.Error(), pw) {
				t.Errorf("%q: the parse error shows the password: %v", raw, err)
			}
			continue
		}
		o := s.Operators[1].Options.(*Options)
		js, _ := json.Marshal(s)
		for _, shown := range []string{string(js), fmt.Sprint(o), fmt.Sprintf("%+v", *o), fmt.Sprintf("%#v", o.URL), o.URL.String()} {
			if strings.Contains(shown, pw) {
				t.Errorf("%q: the password shows: %s", raw, shown)
			}
		}
		if !strings.Contains(string(js), maskedValue) {
			t.Errorf("%q: the JSON does not show the masked password: %s", raw, js)
		}
	}
}

func TestParseTableName(t *testing.T) {
	for _, tc := range []struct{ in, schema, table, err string }{
		{in: "events", schema: "public", table: "events"},
		{in: "Sales.Events", schema: "sales", table: "events"},
		{in: `"Sales"."My Events"`, schema: "Sales", table: "My Events"},
		{in: `audit."a""b"`, schema: "audit", table: `a"b`},
		{in: "db.s.t", err: "the database is the url's dbname"},
		{in: `"open`, err: "unterminated"},
		{in: "a b", err: "want [SCHEMA.]TABLE"},
		{in: "s.", err: "want [SCHEMA.]TABLE"},
	} {
		s, tb, err := parseTableName(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || s != tc.schema || tb != tc.table {
			t.Errorf("%q: %q %q %v, want %q %q", tc.in, s, tb, err, tc.schema, tc.table)
		}
	}
}

// The sink declares its table and every file its url names; relative paths are refused.
func TestAccess(t *testing.T) {
	spec := `name: j
operators:
  - {name: g, type: generator, count: 1}
  - name: out
    type: postgres
    input: g
    table: Audit.Events
    url: "postgresql://bob@h/appdb?password=file:/run/pw&sslrootcert=/etc/ca.crt&sslcert=/etc/c.crt&sslkey=/etc/c.key"
`
	s, err := dataflow.ParseSpec([]byte(spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	reads, writes := s.Resources()
	if fmt.Sprint(writes) != "[postgres:table/appdb.audit.events]" {
		t.Errorf("writes %v", writes)
	}
	if fmt.Sprint(reads) != "[file:/run/pw file:/etc/ca.crt file:/etc/c.crt file:/etc/c.key]" {
		t.Errorf("reads %v", reads)
	}
	s, err = dataflow.ParseSpec([]byte(strings.Replace(spec, "sslkey=/etc/c.key", "sslkey=/etc/./c.crt", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if reads, _ := s.Resources(); fmt.Sprint(reads) != "[file:/run/pw file:/etc/ca.crt file:/etc/c.crt]" {
		t.Errorf("a certificate and key in one file: reads %v, want the file once", reads)
	}
	for old, bad := range map[string]string{"password=file:/run/pw": "password=file:pw", "sslrootcert=/etc/ca.crt": "sslrootcert=ca.crt"} {
		_, err := dataflow.ParseSpec([]byte(strings.Replace(spec, old, bad, 1)), nil)
		if err == nil || !strings.Contains(err.Error(), "relative") || !strings.Contains(err.Error(), "url") {
			t.Errorf("%s: %v, want a refusal of the relative path naming url", bad, err)
		}
	}
}
