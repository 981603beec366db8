package authn

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
)

// Kafka's own example (SslPrincipalMapperTest).
const kafkaRules = `RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT`

func TestPrincipalMapper(t *testing.T) {
	tests := []struct {
		rules, dn, want, wantErr string
	}{
		{kafkaRules, "CN=Duke,OU=ServiceUsers,O=Org,C=US", "Duke", ""},
		{kafkaRules, "CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme", ""},
		{kafkaRules, "cn=duke,ou=sme,dc=mycp,dc=com", "duke", ""},
		{kafkaRules, "cN=duke,OU=JavaSoft,O=Sun Microsystems", "duke", ""},
		{kafkaRules, "OU=JavaSoft,O=Sun Microsystems,C=US", "OU=JavaSoft,O=Sun Microsystems,C=US", ""},
		// Newlines separate rules too, with blanks around them.
		{"RULE:^CN=(.*?),OU=(.*?)$/$1@$2/U\n  DEFAULT", "CN=duke,OU=sme", "DUKE@SME", ""},
		{"RULE:^CN=(.*?),OU=(.*?)$/$1@$2/L", "CN=Duke,OU=SME", "duke@sme", ""},
		{"RULE:^CN=(.*?),OU=(.*?)$/$1@$2/", "CN=Duke,OU=SME", "Duke@SME", ""},
		// Escaped slashes in pattern and replacement.
		{`RULE:^CN=(.*?)\/(.*)$/$1\/x/`, "CN=a/b", "a/x", ""},
		// Java reads $10 as $1 then "0" when there is no group 10.
		{`RULE:^CN=(.*)$/$10/`, "CN=a", "a0", ""},
		{`RULE:^CN=(?P<user>[a-z]+)$/${user}!/`, "CN=bob", "bob!", ""},
		{`RULE:^CN=(\w+)$/\$$1/`, "CN=bob", "$bob", ""},
		// Whole-DN match (Matcher.matches), not a substring.
		{"RULE:CN=(.*?),/$1/", "CN=alice,OU=eng", "", `no principal mapping rule matches subject "CN=alice,OU=eng"`},
		{"RULE:^CN=(admin)$/$1/", "CN=alice", "", "no principal mapping rule matches subject"},
		{"RULE:^(CN=)?x$/$1/", "x", "", "empty user name"},
		// No rules: the CN, the first (most specific) one.
		{"", "CN=alice,OU=eng,O=acme,C=US", "alice", ""},
		{"", `CN=Smith\, John,O=acme`, "Smith, John", ""},
		{"", `CN=a\2cb+UID=x,CN=other`, "a,b", ""},
		{"", "OU=eng,O=acme", "", "has no CN"},
		{"  ", "CN=x", "x", ""},
	}
	for _, tt := range tests {
		m, err := ParsePrincipalRules(tt.rules)
		if err != nil {
			t.Fatalf("ParsePrincipalRules(%q): %v", tt.rules, err)
		}
		got, err := m.Map(tt.dn)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q Map(%q) = %q, %v; want error %q", tt.rules, tt.dn, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q Map(%q) = %q, %v; want %q", tt.rules, tt.dn, got, err, tt.want)
		}
	}
}

func TestParsePrincipalRulesErrors(t *testing.T) {
	const key = "security.rest.authentication.x509.principal-mapping-rules: "
	tests := []struct{ rules, want string }{
		{`DEFAULT,RULE:^CN=(.*$/$1/`, key + `rule 2 "RULE:^CN=(.*$/$1/": invalid regexp: error parsing regexp: missing closing )`},
		{`FOO,DEFAULT`, key + `rule 1 "FOO": expected DEFAULT or RULE:pattern/replacement/[LU]`},
		{`RULE:^CN=x$`, key + `rule 1 "RULE:^CN=x$": missing '/' after the pattern`},
		{`RULE:^CN=x$/y`, key + `rule 1 "RULE:^CN=x$/y": missing '/' after the replacement`},
		{`RULE:^CN=(x)$/$2/`, key + `rule 1 "RULE:^CN=(x)$/$2/": invalid replacement: $2 refers to a group the pattern does not have (it has 1)`},
		{`RULE:^CN=(x)$/$a/`, `invalid replacement: '$' must be followed by a group number`},
		{`RULE:^CN=(x)$/${nope}/`, `no group named "nope"`},
		{`RULE:^CN=x$/y/X`, key + `rule 1 "RULE:^CN=x$/y/": unexpected "X" after the rule`},
		{`DEFAULT DEFAULT`, `rule 1 "DEFAULT": unexpected "DEFAULT"`},
		{`RULE:(?<=a)b/c/`, `invalid regexp`},
	}
	for _, tt := range tests {
		_, err := ParsePrincipalRules(tt.rules)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParsePrincipalRules(%q) = %v, want %q", tt.rules, err, tt.want)
		}
	}
}

func TestPrincipalMapperString(t *testing.T) {
	m, _ := ParsePrincipalRules("RULE:^CN=(.*)$/$1/L , DEFAULT")
	if got := m.String(); got != "RULE:^CN=(.*)$/$1/L,DEFAULT" {
		t.Errorf("String = %q", got)
	}
	if got := (PrincipalMapper{}).String(); got != "CN" {
		t.Errorf("zero String = %q", got)
	}
}

// formatDN must print what Java's X500Principal.getName() prints, since
// rules are written against that.
func TestFormatDN(t *testing.T) {
	oid := func(s ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(s) }
	seq := pkix.RDNSequence{
		{{Type: oid(0, 9, 2342, 19200300, 100, 1, 25), Value: "com"}},
		{{Type: oid(0, 9, 2342, 19200300, 100, 1, 25), Value: "example"}},
		{{Type: oid(2, 5, 4, 10), Value: "acme"}},
		{{Type: oid(2, 5, 4, 3), Value: "Smith, John"}, {Type: oid(0, 9, 2342, 19200300, 100, 1, 1), Value: "js"}},
		{{Type: oid(2, 5, 4, 5), Value: "42"}},
		{{Type: oid(2, 5, 4, 11), Value: " #lead+trail "}},
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	got, err := formatDN(der)
	if err != nil {
		t.Fatal(err)
	}
	// DER sorts the members of a multi-valued RDN (UID's OID sorts before
	// CN's); Java prints them in that encoded order too.
	want := `OU=\ #lead\+trail\ ,2.5.4.5=#13023432,UID=js+CN=Smith\, John,O=acme,DC=example,DC=com`
	if got != want {
		t.Errorf("formatDN =\n %s\nwant\n %s", got, want)
	}
	// And the CN survives the round trip through the escaping.
	if cn, err := (PrincipalMapper{}).Map(got); err != nil || cn != "Smith, John" {
		t.Errorf("CN = %q, %v", cn, err)
	}
}
