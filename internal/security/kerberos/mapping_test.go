package kerberos_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/security/kerberos"
)

func TestMapPrincipal(t *testing.T) {
	classic := []string{
		`RULE:[1:$1@$0](.*@SLUICE\.TEST)s/@.*//`,
		`RULE:[2:$1@$0](HTTP@SLUICE\.TEST)s/.*/http-service/`,
		`RULE:[2:$1;$2](sluice;.*)s/;.*//`,
		`RULE:[1:$1@$0](.*@PARTNER\.ORG)s/@PARTNER\.ORG/_partner/`,
		`DEFAULT`,
	}
	tests := []struct {
		rules     []string
		principal string
		want      string
		err       string
	}{
		// DEFAULT alone, and no rules at all, strip the default realm only.
		{nil, "alice@SLUICE.TEST", "alice", ""},
		{nil, "alice", "alice", ""},
		{[]string{"DEFAULT"}, "alice@OTHER.TEST", "", "no principal-to-local rule maps the principal alice@OTHER.TEST"},
		{[]string{"DEFAULT"}, "HTTP/host@SLUICE.TEST", "", "no principal-to-local rule"},
		// The classic rules.
		{classic, "alice@SLUICE.TEST", "alice", ""},
		{classic, "HTTP/web.sluice.test@SLUICE.TEST", "http-service", ""},
		{classic, "sluice/jm1.sluice.test@SLUICE.TEST", "sluice", ""},
		{classic, "bob@PARTNER.ORG", "bob_partner", ""},
		{classic, "carol@ELSEWHERE.ORG", "", "no principal-to-local rule"},
		// Anchored regex: a realm that merely starts like ours is not ours.
		{classic[:1], "mallory@SLUICE.TEST.EVIL.ORG", "", "no principal-to-local rule"},
		// n must equal the number of components.
		{[]string{`RULE:[2:$1]`}, "alice@SLUICE.TEST", "", "no principal-to-local rule"},
		{[]string{`RULE:[2:$2]`}, "svc/host.example@SLUICE.TEST", "host.example", ""},
		// No regex: the rule applies to every n-component principal.
		{[]string{`RULE:[1:$1]`}, "x@ANY.REALM", "x", ""},
		// g replaces every match, without g only the first.
		{[]string{`RULE:[1:$1]s/a/o/g`}, "banana@R", "bonono", ""},
		{[]string{`RULE:[1:$1]s/a/o/`}, "banana@R", "bonana", ""},
		// Several substitutions in a row, and an escaped slash.
		{[]string{`RULE:[1:$1]s/a/b/s/b/c/g`}, "aab@R", "cac", ""},
		{[]string{`RULE:[1:$1]s/x/a\/b/`}, "x@R", "a/b", ""},
		// Nested parentheses in the regex.
		{[]string{`RULE:[1:$1@$0](.*@(A|B)\.TEST)s/@.*//`}, "u@B.TEST", "u", ""},
		// First applicable rule wins even over DEFAULT.
		{[]string{`RULE:[1:$1@$0](alice@SLUICE\.TEST)s/.*/root-not/`, "DEFAULT"}, "alice@SLUICE.TEST", "root-not", ""},
		// A rule that produces nothing is an error, not an empty user.
		{[]string{`RULE:[1:$1]s/.*//`}, "alice@SLUICE.TEST", "", "empty name"},
		// Bad rules.
		{[]string{"RULE:1:$1"}, "a@R", "", "want RULE:"},
		{[]string{"RULE:[x:$1]"}, "a@R", "", "component count"},
		{[]string{"RULE:[1:$2]"}, "a@R", "", "$2 but the rule is for 1 components"},
		{[]string{"RULE:[1:$1](a"}, "a@R", "", "unbalanced"},
		{[]string{"RULE:[1:$1]s/a/b"}, "a@R", "", "unterminated"},
		{[]string{"RULE:[1:$1](a[)"}, "a@R", "", "regex"},
		{[]string{"NONSENSE"}, "a@R", "", "want RULE:"},
		// Bad principals.
		{nil, "a//b@R", "", "malformed principal"},
		{nil, "@R", "", "malformed principal"},
	}
	for _, tt := range tests {
		got, err := kerberos.MapPrincipal(tt.rules, "SLUICE.TEST", tt.principal)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("MapPrincipal(%q, %q) = %q, %v; want error containing %q", tt.rules, tt.principal, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("MapPrincipal(%q, %q) = %q, %v; want %q", tt.rules, tt.principal, got, err, tt.want)
		}
	}
	_, err := kerberos.MapPrincipal([]string{"DEFAULT"}, "SLUICE.TEST", "x@OTHER")
	if !errors.Is(err, kerberos.ErrNoRule) || !strings.Contains(err.Error(), "security.kerberos.principal-to-local") {
		t.Errorf("no-rule error %v: want ErrNoRule naming the key", err)
	}
}

func FuzzMapPrincipal(f *testing.F) {
	f.Add(`RULE:[1:$1@$0](.*@SLUICE\.TEST)s/@.*//`, "alice@SLUICE.TEST")
	f.Add(`RULE:[2:$1](HTTP)s/.*/web/g`, "HTTP/host@SLUICE.TEST")
	f.Add("DEFAULT", `a\/b@SLUICE.TEST`)
	f.Add(`RULE:[1:$1](((a)))s/\//x/`, "a@")
	f.Fuzz(func(t *testing.T, rule, principal string) {
		rs, err := kerberos.ParseRules([]string{rule})
		if err != nil {
			return
		}
		user, err := rs.Map("SLUICE.TEST", principal)
		if err == nil && user == "" {
			t.Fatalf("rule %q maps %q to an empty user without error", rule, principal)
		}
		// DEFAULT never maps a principal of another realm.
		if rule == "DEFAULT" && err == nil && strings.Contains(principal, "@") &&
			!strings.HasSuffix(principal, "@SLUICE.TEST") {
			t.Fatalf("DEFAULT mapped %q of another realm to %q", principal, user)
		}
	})
}
