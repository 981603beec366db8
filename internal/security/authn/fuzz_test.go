package authn

import (
	"strings"
	"testing"
)

func FuzzParseTokenFile(f *testing.F) {
	f.Add([]byte(hashLine("a", `,alice,"dev,ops"`) + "\n# c\n\n" + hashLine("b", ",bob")))
	f.Add([]byte("sha256:zz,\"\n"))
	f.Add([]byte("sluice_x,alice"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tokens, err := ParseTokenFile(data)
		if err != nil {
			return
		}
		for _, u := range tokens {
			if u.Name == "" || strings.ContainsAny(u.Name, ",\"\n") {
				t.Fatalf("accepted user %q", u.Name)
			}
		}
	})
}

func FuzzParsePrincipalRules(f *testing.F) {
	f.Add(kafkaRules, "CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US")
	f.Add(`RULE:^CN=(.*?)\/(.*)$/$1\/x/U`, `CN=a\/b\2c+UID="q,x"`)
	f.Add("", `CN=\`)
	f.Add("RULE:(?P<n>a)/${n}$10/", "a")
	f.Fuzz(func(t *testing.T, rules, dn string) {
		m, err := ParsePrincipalRules(rules)
		if err != nil {
			return
		}
		_ = m.String()
		_, _ = m.Map(dn)
	})
}
