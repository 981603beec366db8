package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfigs loads testdata/*.bad.yml and checks each error names the
// file and what to fix.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"syntax.bad.yml", []string{"line 5"}},
		{"unknown_field.bad.yml", []string{"line 5", `unknown field "tokenfile" in a context`, "token-file"}},
		{"unknown_top.bad.yml", []string{"line 1", `unknown field "current_context" at the top level`, "current-context"}},
		{"token_twice.bad.yml", []string{`context "prod" sets both token and token-file`}},
		{"duplicate.bad.yml", []string{`context "prod" is defined twice`}},
		{"noname.bad.yml", []string{"contexts[0] has no name"}},
		{"key_without_cert.bad.yml", []string{`context "prod" sets key without cert`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := LoadConfig(path)
			checkErr(t, err, append(tt.want, "client config "+path+": "))
		})
	}
}

func TestConfigSecretHidden(t *testing.T) {
	c := Context{Name: "x", Token: testToken}
	for _, s := range []string{c.Token.String(), c.Token.GoString()} {
		if strings.Contains(s, testToken) {
			t.Errorf("%q leaks the token", s)
		}
	}
	if v, _ := c.Token.MarshalYAML(); v != "<secret>" {
		t.Errorf("MarshalYAML = %v", v)
	}
}

const testConfig = `
current-context: prod
contexts:
  - name: prod
    jobmanager: https://jm.example.com:8443
    cacert: ca.crt
    cert: certs/alice.crt
    key: /abs/alice.key
    token-file: token
  - name: local
    jobmanager: http://localhost:8081
  - name: inline
    jobmanager: https://jm2.example.com
    token: inline-token
  - name: any
    token-file: ~/token
`

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	home := t.TempDir()
	t.Setenv("HOME", home) // for ~/ in the file and the default path
	cfgPath := writeFile(t, dir, "config.yaml", []byte(testConfig))
	if err := os.Chmod(cfgPath, 0o644); err != nil { // readable by all: the inline token warns
		t.Fatal(err)
	}
	writeFile(t, dir, "token", []byte("file-token\n"))
	writeFile(t, home, "token", []byte("home-token"))
	loose := writeFile(t, dir, "loose-token", []byte("loose-token"))
	if err := os.Chmod(loose, 0o640); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "empty-token", nil)
	base := map[string]string{ConfigEnv: cfgPath}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	prod := Options{URL: "https://jm.example.com:8443", CACert: filepath.Join(dir, "ca.crt"),
		Cert: filepath.Join(dir, "certs", "alice.crt"), Key: "/abs/alice.key", Token: "file-token"}

	tests := []struct {
		name     string
		flags    Settings
		env      map[string]string
		want     Options
		context  string
		warnings []string
		wantErr  []string
	}{
		{name: "current-context, relative paths", env: base, want: prod, context: "prod"},
		{name: "--context", flags: Settings{Context: "local"}, env: base, want: Options{URL: "http://localhost:8081"}, context: "local"},
		{name: "~ in the file", flags: Settings{Context: "any"}, env: base, want: Options{URL: DefaultURL, Token: "home-token"}, context: "any"},
		{name: "env token over the file", env: with(TokenEnv, "env-token"), want: with2(prod, func(o *Options) { o.Token = "env-token" }), context: "prod"},
		{name: "flag token over env", flags: Settings{Token: "flag-token"}, env: with(TokenEnv, "env-token"),
			want: with2(prod, func(o *Options) { o.Token = "flag-token" }), context: "prod"},
		{name: "--token-file over env", flags: Settings{TokenFile: filepath.Join(dir, "token")}, env: with(TokenEnv, "env-token"), want: prod, context: "prod"},
		{name: "env jobmanager of the same origin keeps the credentials", env: with(JobManagerEnv, "https://JM.example.com:8443/"),
			want: with2(prod, func(o *Options) { o.URL = "https://JM.example.com:8443/" }), context: "prod"},
		{name: "env jobmanager elsewhere withholds the credentials", env: with(JobManagerEnv, "https://test.example.com"),
			want:     Options{URL: "https://test.example.com", CACert: prod.CACert},
			context:  "prod",
			warnings: []string{`not sending the credentials of context "prod" (for https://jm.example.com:8443) to https://test.example.com: pass --context prod`}},
		{name: "flag jobmanager over env", flags: Settings{JobManager: "https://flag.example.com"}, env: with(JobManagerEnv, "https://test.example.com"),
			want: Options{URL: "https://flag.example.com", CACert: prod.CACert}, context: "prod", warnings: []string{"not sending the credentials"}},
		{name: "explicit --context sends its credentials anywhere", flags: Settings{Context: "prod", JobManager: "https://jm-standby.example.com:8443"}, env: base,
			want: with2(prod, func(o *Options) { o.URL = "https://jm-standby.example.com:8443" }), context: "prod"},
		{name: "--cert replaces the context's cert and key", flags: Settings{Cert: "me.pem", CACert: "my-ca.crt"}, env: base,
			want: with2(prod, func(o *Options) { o.Cert, o.Key, o.CACert = "me.pem", "", "my-ca.crt" }), context: "prod"},
		{name: "inline token in a readable file warns", flags: Settings{Context: "inline"}, env: base,
			want: Options{URL: "https://jm2.example.com", Token: "inline-token"}, context: "inline",
			warnings: []string{cfgPath + ` holds the token of context "inline" and is readable by group or others (mode 0644): chmod 600`}},
		{name: "loose token file warns", flags: Settings{Context: "local", TokenFile: loose}, env: base,
			want: Options{URL: "http://localhost:8081", Token: "loose-token"}, context: "local",
			warnings: []string{"token file " + loose + " is readable by group or others (mode 0640)"}},
		{name: "unknown context", flags: Settings{Context: "staging"}, env: base,
			wantErr: []string{`--context: no context "staging" in ` + cfgPath + " (known contexts: any, inline, local, prod)"}},
		{name: "empty token file", flags: Settings{TokenFile: filepath.Join(dir, "empty-token")}, env: base, wantErr: []string{"--token-file: ", "empty-token is empty"}},
		{name: "missing token file", flags: Settings{TokenFile: filepath.Join(dir, "nope")}, env: base, wantErr: []string{"--token-file: ", "no such file"}},
		{name: "--token and --token-file", flags: Settings{Token: "a", TokenFile: "b"}, env: base, wantErr: []string{"--token and --token-file are exclusive"}},
		{name: "--key without --cert", flags: Settings{Key: "k"}, env: base, wantErr: []string{"--key is set without --cert"}},
		{name: "SLUICECONFIG names a missing file", env: map[string]string{ConfigEnv: filepath.Join(dir, "nope.yaml")},
			wantErr: []string{"SLUICECONFIG=" + filepath.Join(dir, "nope.yaml") + ": the client config file does not exist"}},
		{name: "no config file", env: map[string]string{}, want: Options{URL: DefaultURL}},
		{name: "no config file, env", env: map[string]string{JobManagerEnv: "https://jm", TokenEnv: "t"}, want: Options{URL: "https://jm", Token: "t"}},
		{name: "--context without a config file", flags: Settings{Context: "prod"}, env: map[string]string{},
			wantErr: []string{`--context "prod": no client config file (` + filepath.Join(home, ".sluice", "config.yaml") + " does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Resolve(tt.flags, func(k string) string { return tt.env[k] })
			checkErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			if r.Options != tt.want {
				t.Errorf("options\n  got  %+v\n  want %+v", r.Options, tt.want) // tokens here are fake
			}
			if r.Context != tt.context {
				t.Errorf("context %q, want %q", r.Context, tt.context)
			}
			if len(r.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %q", r.Warnings, tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(r.Warnings[i], w) {
					t.Errorf("warning %q does not contain %q", r.Warnings[i], w)
				}
			}
		})
	}
}

// with2 returns o changed by f.
func with2(o Options, f func(*Options)) Options {
	f(&o)
	return o
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://jm.example.com", "https://jm.example.com:443/", true},
		{"https://JM.example.com.", "https://jm.example.com", true},
		{"jm:8081", "http://jm:8081", true},
		{"http://jm.example.com", "https://jm.example.com", false},
		{"https://jm.example.com:8443", "https://jm.example.com", false},
		{"https://jm.example.com.evil.example", "https://jm.example.com", false},
	}
	for _, tt := range tests {
		if got := sameOrigin(tt.a, tt.b); got != tt.want {
			t.Errorf("sameOrigin(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}
