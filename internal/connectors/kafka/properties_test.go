package kafka

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const scramJAAS = `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="S3cret-pw";`

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props Properties
		err   string // substring; "" = valid
	}{
		{"plaintext", Properties{BootstrapServers: "a:9092, b:9092"}, ""},
		{"no brokers", Properties{}, "properties.bootstrap.servers: missing"},
		{"bad protocol", Properties{BootstrapServers: "a:1", SecurityProtocol: "TLS"}, "want PLAINTEXT, SSL"},
		{"scram", Properties{BootstrapServers: "a:1", SecurityProtocol: "SASL_SSL", SASLMechanism: "SCRAM-SHA-512", SASLJAASConfig: scramJAAS}, ""},
		{"scram without jaas (delegation token)", Properties{BootstrapServers: "a:1", SecurityProtocol: "SASL_SSL", SASLMechanism: "SCRAM-SHA-512"}, ""},
		{"plain without jaas", Properties{BootstrapServers: "a:1", SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "PLAIN"}, "needs a username and password"},
		{"gssapi default", Properties{BootstrapServers: "a:1", SecurityProtocol: "SASL_PLAINTEXT"}, ""},
		{"gssapi with scram module", Properties{BootstrapServers: "a:1", SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "GSSAPI", SASLJAASConfig: scramJAAS}, "needs the com.sun.security.auth.module.Krb5LoginModule"},
		{"bad mechanism", Properties{BootstrapServers: "a:1", SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "OAUTHBEARER"}, "unknown mechanism"},
		{"sasl settings without sasl", Properties{BootstrapServers: "a:1", SASLMechanism: "PLAIN"}, "need SASL_PLAINTEXT or SASL_SSL"},
		{"truststore without tls", Properties{BootstrapServers: "a:1", TruststoreLocation: "/ca.pem"}, "use SSL or SASL_SSL"},
		{"bad store type", Properties{BootstrapServers: "a:1", SecurityProtocol: "SSL", TruststoreType: "BKS"}, "want PEM, PKCS12 or JKS"},
		{"bad endpoint algorithm", Properties{BootstrapServers: "a:1", SecurityProtocol: "SSL", EndpointIdentify: "http"}, "want https"},
		{"bad jaas", Properties{BootstrapServers: "a:1", SecurityProtocol: "SASL_SSL", SASLMechanism: "PLAIN", SASLJAASConfig: `org.example.Module required;`}, "unknown login module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.props.Check()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "S3cret-pw") {
				t.Fatalf("the error quotes the password: %v", err)
			}
		})
	}
}

func TestCheckFiles(t *testing.T) {
	s, err := Properties{BootstrapServers: "a:1", SecurityProtocol: "SASL_SSL", SASLMechanism: "GSSAPI",
		SASLJAASConfig:     `com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="/k/alice.keytab" principal="alice@R";`,
		TruststoreLocation: "/tls/ca.p12", TruststorePassword: "file:/tls/pass", KeystoreLocation: "/tls/me.pem"}.Check()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/tls/ca.p12", "/tls/me.pem", "/tls/pass", "/k/alice.keytab"}
	if fmt.Sprint(s.Files) != fmt.Sprint(want) {
		t.Fatalf("files %v, want %v", s.Files, want)
	}
}

func TestParseJAAS(t *testing.T) {
	j, err := ParseJAAS(`org.apache.kafka.common.security.scram.ScramLoginModule required
	  username="al ice" password="p\"w" tokenauth="true";`)
	if err != nil {
		t.Fatal(err)
	}
	if j.Module != ModuleSCRAM || j.Username != "al ice" || j.Password != `p"w` || !j.TokenAuth {
		t.Fatalf("parsed %+v", j)
	}
	for _, bad := range []string{"", ModulePlain, ModulePlain + ` required username="a`, ModulePlain + ` required username="a";`, ModuleKrb5 + ` required useKeyTab=true;`} {
		if _, err := ParseJAAS(bad); err == nil {
			t.Errorf("ParseJAAS(%q) accepted", bad)
		}
	}
	// A repeated option is refused, naming the option and never a value.
	_, err = ParseJAAS(ModuleSCRAM + ` required username="a" password="first-pw" password="second-pw";`)
	if err == nil || !strings.Contains(err.Error(), "password is given twice") || strings.Contains(err.Error(), "-pw") {
		t.Errorf("a repeated password: %v", err)
	}
}

func TestPropertiesMasked(t *testing.T) {
	p := Properties{BootstrapServers: "a:1", SASLJAASConfig: scramJAAS, TruststorePassword: "tp-123", KeyPassword: "kp-456"}
	b, _ := json.Marshal(p)
	y, _ := p.MarshalYAML()
	for what, text := range map[string]string{"String": p.String(), "%v": fmt.Sprintf("%v", p), "%#v": fmt.Sprintf("%#v", p),
		"JSON": string(b), "YAML": fmt.Sprint(y), "log": p.LogValue().String()} {
		for _, secret := range []string{"S3cret-pw", "tp-123", "kp-456", "ScramLoginModule"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %q: %s", what, secret, text)
			}
		}
		if !strings.Contains(text, "a:1") {
			t.Errorf("%s hides a value that is not secret: %s", what, text)
		}
	}
}

func TestUnknown(t *testing.T) {
	p := Properties{BootstrapServers: "a:1", "fetch.min.bytes": "1", "acks": "all"}
	if got := p.Unknown(); fmt.Sprint(got) != "[acks fetch.min.bytes]" {
		t.Fatalf("Unknown() = %v", got)
	}
}

func TestTuning(t *testing.T) {
	if o, err := ConsumerOptions(Properties{IsolationLevel: "read_uncommitted", FetchMaxBytes: "1048576"}); err != nil || len(o) != 3 { // with the decompression bound
		t.Errorf("consumer options: %d, %v", len(o), err)
	}
	for _, p := range []Properties{{IsolationLevel: "dirty"}, {MaxPartitionFetch: "-1"}} {
		if _, err := ConsumerOptions(p); err == nil {
			t.Errorf("ConsumerOptions(%v) accepted", p)
		}
	}
	if o, err := ProducerOptions(Properties{CompressionType: "zstd"}); err != nil || len(o) != 1 {
		t.Errorf("producer options: %d, %v", len(o), err)
	}
	if _, err := ProducerOptions(Properties{CompressionType: "brotli"}); err == nil || !strings.Contains(err.Error(), "properties.compression.type") {
		t.Errorf("brotli: %v", err)
	}
}
