package kafka

import (
	"strings"
	"testing"
)

// marker starts every whitespace-separated piece of the passwords the fuzzers write, so
// that an error quoting any piece of one shows.
const marker = "Pw0MARK"

func markPassword(pw string) string {
	f := strings.Fields(pw)
	for i := range f {
		f[i] = marker + f[i]
	}
	return marker + strings.Join(f, " "+marker)
}

func quoteJAAS(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// FuzzParseJAAS parses sasl.jaas.config strings: never a panic; no error shows any piece of
// the password, however the string is broken around it; a password quoted by the rules
// reads back byte for byte.
func FuzzParseJAAS(f *testing.F) {
	for _, s := range [][3]string{
		{ModuleSCRAM, `required username="alice"`, `S3cret pw`},
		{ModulePlain, `required username="a" tokenauth=true`, `a"b\c`},
		{ModuleKrb5, `required useKeyTab=true keyTab="/etc/k.keytab" principal="kafka/h@R"`, ``},
		{"", `required`, `secret with spaces`},
		{ModuleSCRAM, `sufficient username=alice extra`, `x;`},
		{"org.example.Mod", `optional`, `\\\"`},
		{ModuleSCRAM, `required username="unterminated`, `p`},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, module, options, pw string) {
		for _, cfg := range []string{
			module + " " + options + " password=" + markPassword(pw) + ";",
			module + " password=" + markPassword(pw) + " " + options,
			"password=" + markPassword(pw) + " " + module + " " + options,
		} {
			if _, err := ParseJAAS(cfg); err != nil && strings.Contains(err.Error(), marker) {
				t.Fatalf("ParseJAAS(%q): the error shows the password: %v", cfg, err)
			}
		}
		cfg := ModuleSCRAM + ` required username="u" password=` + quoteJAAS(pw) + `;`
		j, err := ParseJAAS(cfg)
		if pw == "" {
			return
		}
		if err != nil || j.Password != pw {
			t.Fatalf("ParseJAAS(%q) = %+v, %v: want password %q", cfg, j, err, pw)
		}
	})
}

// FuzzProperties checks Kafka properties as a job gives them: never a panic; an error names
// the property (properties.KEY) and never shows a password; accepted settings read only
// the files the properties name, and their numbers are in bounds.
func FuzzProperties(f *testing.F) {
	f.Add("SASL_SSL", "SCRAM-SHA-256", scramJAAS, "PKCS12", "jks", "file:/run/pw", "52428800", "60000")
	f.Add("SSL", "", "", "PEM", "", "S3cret", "1", "0")
	f.Add("sasl_plaintext", "gssapi", ModuleKrb5+` required useKeyTab=true keyTab="/k" principal="p@R";`, "", "BKS", "", "-1", "99999999999999999999")
	f.Add("PLAINTEXT", "PLAIN", ModulePlain+` required username=u password=a b;`, "", "", "", "104857601", "900001")
	f.Fuzz(func(t *testing.T, proto, mech, jaas, tsType, ksType, pass, fetch, timeout string) {
		p := Properties{BootstrapServers: "b:9092", SecurityProtocol: proto, SASLMechanism: mech,
			SASLJAASConfig: jaas, TruststoreType: tsType, KeystoreType: ksType, TruststoreLocation: "/ts",
			TruststorePassword: marker + pass, FetchMaxBytes: fetch, TransactionTimeoutMS: timeout, LingerMS: timeout}
		s, err := p.Check()
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "properties.") {
				t.Fatalf("error does not name the property: %v", err)
			}
			if strings.Contains(msg, marker) {
				t.Fatalf("error shows a password: %v", err)
			}
			return
		}
		if n, ok, err := p.Int(FetchMaxBytes); err != nil || ok && (n < 1 || n > MaxFetchBytes) {
			t.Fatalf("fetch.max.bytes %q accepted as %d, %v", fetch, n, err)
		}
		if d, ok, err := p.Millis(TransactionTimeoutMS); err != nil || ok && (d <= 0 || d > MaxTransactionTimeout) {
			t.Fatalf("transaction.timeout.ms %q accepted as %v, %v", timeout, d, err)
		}
		for _, file := range s.Files {
			if file != "/ts" && (s.JAAS == nil || file != s.JAAS.KeyTab && "file:"+file != s.JAAS.Password) {
				t.Fatalf("settings read %q, which the properties do not name", file)
			}
		}
	})
}
