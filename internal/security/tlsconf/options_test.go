package tlsconf

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

func cfgOf(t *testing.T, kv ...string) *config.Config {
	t.Helper()
	c := config.New()
	for i := 0; i < len(kv); i += 2 {
		if err := c.Set(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestInternalOptions(t *testing.T) {
	tests := []struct {
		name    string
		kv      []string
		wantErr string
		check   func(t *testing.T, o Options)
	}{
		{name: "defaults", check: func(t *testing.T, o Options) {
			p, _ := o.parse()
			if p.minVersion != tls.VersionTLS13 || p.maxVersion != tls.VersionTLS13 || len(o.Notes) != 0 || o.Reload {
				t.Errorf("%+v %+v", p, o)
			}
			if o.SessionCacheSize != -1 || o.HandshakeTimeout >= 0 {
				t.Errorf("library defaults not kept: %+v", o)
			}
		}},
		{name: "TLS 1.1 refused", kv: []string{"security.ssl.protocol", "TLSv1.1"},
			wantErr: `security.ssl.protocol: "TLSv1.1" is not supported: use TLSv1.2, TLSv1.3 or both`},
		{name: "SSLv3 refused", kv: []string{"security.ssl.protocol", "TLSv1.2,SSLv3"}, wantErr: `"SSLv3" is not supported`},
		{name: "both versions", kv: []string{"security.ssl.protocol", "TLSv1.3,TLSv1.2", "security.ssl.algorithms", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
			check: func(t *testing.T, o Options) {
				p, _ := o.parse()
				if p.minVersion != tls.VersionTLS12 || p.maxVersion != tls.VersionTLS13 || len(p.suites) != 1 || len(o.Notes) != 0 {
					t.Errorf("%+v notes %v", p, o.Notes)
				}
			}},
		{name: "unknown cipher", kv: []string{"security.ssl.algorithms", "TLS_FOO"}, wantErr: `security.ssl.algorithms: unknown cipher suite "TLS_FOO"`},
		{name: "insecure cipher", kv: []string{"security.ssl.algorithms", "TLS_RSA_WITH_RC4_128_SHA"}, wantErr: "insecure"},
		{name: "algorithms with TLS 1.3 only: note", kv: []string{"security.ssl.algorithms", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
			check: func(t *testing.T, o Options) {
				if len(o.Notes) != 1 || !strings.Contains(o.Notes[0], "ignored by TLS 1.3") {
					t.Errorf("notes %q", o.Notes)
				}
			}},
		{name: "provider: note", kv: []string{"security.ssl.provider", "OPENSSL"}, check: func(t *testing.T, o Options) {
			if len(o.Notes) != 1 || !strings.Contains(o.Notes[0], "ignored: Go's TLS needs no provider") {
				t.Errorf("notes %q", o.Notes)
			}
		}},
		{name: "bad fingerprint", kv: []string{"security.ssl.internal.cert.fingerprint", "AB:CD"}, wantErr: "security.ssl.internal.cert.fingerprint"},
		{name: "keystore without truststore", kv: []string{"security.ssl.internal.keystore", "/ks.p12"}, wantErr: "internal TLS is mutual"},
		{name: "keystore with fingerprint only", kv: []string{"security.ssl.internal.keystore", "/ks.p12",
			"security.ssl.internal.cert.fingerprint", strings.Repeat("ab", 32)}},
		{name: "legacy keys as fallbacks", kv: []string{"security.ssl.keystore", "/legacy.jks", "security.ssl.keystore-password", "pw",
			"security.ssl.truststore", "/trust.jks", "security.ssl.reload", "true", "security.ssl.internal.session-cache-size", "0"},
			check: func(t *testing.T, o Options) {
				if o.Keystore != "/legacy.jks" || o.KeystorePassword.Value() != "pw" || o.Truststore != "/trust.jks" || !o.Reload || o.SessionCacheSize != 0 {
					t.Errorf("%+v", o)
				}
				if strings.Contains(strings.Join([]string{o.KeystorePassword.String()}, ""), "pw") {
					t.Error("password printable")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := InternalOptions(cfgOf(t, tt.kv...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func TestRESTOptions(t *testing.T) {
	o, err := RESTOptions(cfgOf(t, "security.ssl.rest.keystore", "/rest.p12", "security.ssl.keystore", "/legacy.p12",
		"security.ssl.rest.cert.fingerprint", strings.Repeat("AB:", 19)+"AB"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Keystore != "/rest.p12" || o.KeyPrefix != "security.ssl.rest" || o.Fingerprints == "" {
		t.Errorf("%+v", o)
	}
	_, err = RESTOptions(cfgOf(t, "security.ssl.rest.keystore", "/rest.p12", "security.ssl.rest.authentication-enabled", "true"))
	if err == nil || !strings.Contains(err.Error(), "security.ssl.rest.truststore") {
		t.Errorf("auth without truststore: %v", err)
	}
	if _, err := RESTOptions(cfgOf(t, "security.ssl.rest.cert.fingerprint", "zz")); err == nil || !strings.Contains(err.Error(), "security.ssl.rest.cert.fingerprint") {
		t.Errorf("bad fingerprint: %v", err)
	}
}

func TestNewStoreErrorsNameKeys(t *testing.T) {
	_, err := NewStore(Options{KeyPrefix: restPrefix, Keystore: tempFile(t, "ks.p12", []byte{0x30, 0x03, 0x02, 0x01, 0x03}), KeystorePassword: "x"}, nil)
	if err == nil || !strings.Contains(err.Error(), "ks.p12") {
		t.Errorf("err %v", err)
	}
	_, err = NewStore(Options{Protocols: []string{"TLSv1"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "security.ssl.protocol") {
		t.Errorf("err %v", err)
	}
}
