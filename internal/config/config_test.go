package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustParse(t *testing.T, y string) *Config {
	t.Helper()
	c, err := Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := New()
	tests := []struct {
		key  string
		get  func(string) any
		want any
	}{
		{"jobmanager.rpc.address", func(k string) any { return c.String(k) }, "localhost"},
		{"jobmanager.rpc.port", func(k string) any { return c.Int(k) }, 6123},
		{"rest.port", func(k string) any { return c.Int(k) }, 8081},
		{"rest.max-upload-size", func(k string) any { return c.Bytes(k) }, int64(64 << 20)},
		{"taskmanager.numberOfTaskSlots", func(k string) any { return c.Int(k) }, 1},
		{"taskmanager.host", func(k string) any { return c.String(k) }, ""},
		{"heartbeat.interval", func(k string) any { return c.Duration(k) }, 10 * time.Second},
		{"heartbeat.timeout", func(k string) any { return c.Duration(k) }, 50 * time.Second},
		{"restart-strategy.type", func(k string) any { return c.String(k) }, "none"},
		{"execution.buffer-timeout", func(k string) any { return c.Duration(k) }, 100 * time.Millisecond},
		{"taskmanager.network.memory.buffer-size", func(k string) any { return c.Bytes(k) }, int64(64 << 10)},
		{"security.ssl.internal.enabled", func(k string) any { return c.Bool(k) }, false},
		{"rpc.ssl.enabled", func(k string) any { return c.Bool(k) }, true},
		{"security.ssl.internal.session-cache-size", func(k string) any { return c.Int(k) }, -1},
		{"security.ssl.internal.handshake-timeout", func(k string) any { return c.Duration(k) }, -time.Millisecond},
		{"security.kerberos.relogin.period", func(k string) any { return c.Duration(k) }, time.Minute},
		{"security.ssl.protocol", func(k string) any { return strings.Join(c.StringList(k), ",") }, "TLSv1.3"},
		{"security.kerberos.login.contexts", func(k string) any { return c.StringList(k) == nil }, true},
	}
	for _, tt := range tests {
		if got := tt.get(tt.key); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.key, got, tt.want)
		}
		if c.IsSet(tt.key) {
			t.Errorf("IsSet(%s) on defaults", tt.key)
		}
	}
}

func TestNestedAndFlatAreTheSameKey(t *testing.T) {
	for _, y := range []string{
		"jobmanager: {rpc: {port: 7000}}",
		"jobmanager.rpc.port: 7000",
		"jobmanager:\n  rpc.port: 7000",
		"jobmanager.rpc:\n  port: 7000",
	} {
		c := mustParse(t, y)
		if got := c.Int("jobmanager.rpc.port"); got != 7000 {
			t.Errorf("%q: port = %d", y, got)
		}
		if len(c.Warnings()) != 0 {
			t.Errorf("%q: warnings %q", y, c.Warnings())
		}
	}
}

func TestListKeys(t *testing.T) {
	for _, y := range []string{
		"security.kerberos.login.contexts: KafkaClient, Client",
		"security.kerberos.login.contexts: [KafkaClient, Client]",
		"security:\n  kerberos:\n    login:\n      contexts:\n        - KafkaClient\n        - Client",
	} {
		c := mustParse(t, y)
		if got := c.StringList("security.kerberos.login.contexts"); !slices.Equal(got, []string{"KafkaClient", "Client"}) {
			t.Errorf("%q: contexts = %q", y, got)
		}
	}
	c := New()
	if err := c.Set("security.ssl.protocol", "[TLSv1.2, TLSv1.3]"); err != nil {
		t.Fatal(err)
	}
	if got := c.String("security.ssl.protocol"); got != "TLSv1.2,TLSv1.3" {
		t.Errorf("protocol = %q", got)
	}
}

func TestObjectKeyFromOverride(t *testing.T) {
	c, err := Load("", []string{"rest.listeners=[{name: a, port: 1}]"})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := c.Raw("rest.listeners")
	if l, _ := raw.([]any); !ok || len(l) != 1 {
		t.Fatalf("Raw = %#v, %v", raw, ok)
	}
	if got := c.String("rest.listeners"); got != `[{"name":"a","port":1}]` {
		t.Errorf("String = %s", got)
	}
	if _, ok := New().Raw("rest.listeners"); ok {
		t.Error("Raw on unset key: ok")
	}
}

func TestAliasesDeprecatedFallbacks(t *testing.T) {
	c := mustParse(t, "akka.ssl.enabled: false\nsecurity.principal: sluice@EXAMPLE.COM\nsecurity.ssl.keystore: /legacy.jks\nsecurity.ssl.rest.keystore: /rest.p12\n")
	if c.Bool("rpc.ssl.enabled") || c.Bool("pekko.ssl.enabled") {
		t.Error("rpc.ssl.enabled not set through alias")
	}
	if got := c.String("security.kerberos.login.principal"); got != "sluice@EXAMPLE.COM" {
		t.Errorf("principal = %q", got)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], `"security.principal" is deprecated: use "security.kerberos.login.principal"`) {
		t.Errorf("warnings = %q", w)
	}
	if got := c.String("security.ssl.internal.keystore"); got != "/legacy.jks" {
		t.Errorf("internal keystore = %q, want the fallback", got)
	}
	if got := c.String("security.ssl.rest.keystore"); got != "/rest.p12" {
		t.Errorf("rest keystore = %q", got)
	}
	if c.IsSet("security.ssl.internal.keystore") {
		t.Error("IsSet counts a fallback")
	}
	if k, ok := Lookup("pekko.ssl.enabled"); !ok || k.Name != "rpc.ssl.enabled" {
		t.Errorf("Lookup(pekko.ssl.enabled) = %v, %v", k.Name, ok)
	}
}

func TestWarningsOnUnknownKeys(t *testing.T) {
	c := mustParse(t, "foo.bar: 1\nrest.prot: 80\ntaskmanager:\n  numberoftaskslots: 2\n")
	want := []string{
		`test.yaml:1: unknown configuration key "foo.bar" (ignored)`,
		`test.yaml:2: unknown configuration key "rest.prot" (ignored); did you mean "rest.port"?`,
		`test.yaml:4: unknown configuration key "taskmanager.numberoftaskslots" (ignored); did you mean "taskmanager.numberOfTaskSlots"?`,
	}
	if got := c.Warnings(); !slices.Equal(got, want) {
		t.Errorf("warnings:\n got %q\nwant %q", got, want)
	}
	c, err := Load("", []string{"foo=1"})
	if err != nil || len(c.Warnings()) != 1 {
		t.Errorf("override of unknown key: %v, %q", err, c.Warnings())
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"10 s", 10 * time.Second}, {"10s", 10 * time.Second}, {"5000 ms", 5 * time.Second},
		{"5000", 5 * time.Second}, {"1 min", time.Minute}, {"2 h", 2 * time.Hour},
		{"1 d", 24 * time.Hour}, {"500 millis", 500 * time.Millisecond},
		{"10 seconds", 10 * time.Second}, {"1m", time.Minute}, {"1m30s", 90 * time.Second},
		{"-1 ms", -time.Millisecond}, {"-1", -time.Millisecond}, {" 3 MIN ", 3 * time.Minute},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "s", "10 parsecs", "1.5 h", "abc", "99999999999999999 d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"64mb", 64 << 20}, {"1 gb", 1 << 30}, {"1048576", 1 << 20}, {"64 MiB", 64 << 20},
		{"32kb", 32 << 10}, {"7 b", 7}, {"2t", 2 << 40}, {"0", 0},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-1", "+1", "64 megs", "1.5gb", "99999999 tb"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) succeeded", bad)
		}
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		key, val, wantErr string
	}{
		{"rest.port", "9000", ""},
		{"rest.port", "abc", `rest.port: "abc" is not a valid port: want an integer 0..65535`},
		{"rest.port", "65536", `rest.port: "65536" is not a valid port: want an integer 0..65535`},
		{"parallelism.default", "0", `parallelism.default: "0" is out of range: want an integer >= 1`},
		{"parallelism.default", "x", `parallelism.default: "x" is not a valid integer: want an integer >= 1`},
		{"security.ssl.reload", "TRUE", ""},
		{"security.ssl.reload", "1", `security.ssl.reload: "1" is not a valid boolean: want true or false`},
		{"restart-strategy.type", "Fixed-Delay", ""},
		{"restart-strategy.type", "sometimes", `restart-strategy.type: "sometimes" is not one of: none, disable, off, no-restart, fixed-delay, fixeddelay, exponential-delay, exponentialdelay`},
		{"heartbeat.timeout", "-1 s", `heartbeat.timeout: "-1 s" is out of range: want a duration >= 0`},
		{"security.ssl.internal.session-timeout", "-1", ""},
		{"no.such.key", "1", `unknown configuration key "no.such.key"`},
		{"rest.prot", "1", `unknown configuration key "rest.prot"; did you mean "rest.port"?`},
	}
	for _, tt := range tests {
		err := New().Set(tt.key, tt.val)
		if got := errText(err); got != tt.wantErr {
			t.Errorf("Set(%q, %q) = %q, want %q", tt.key, tt.val, got, tt.wantErr)
		}
	}
	c := New()
	_ = c.Set("restart-strategy.type", "FIXED-DELAY")
	if got := c.String("restart-strategy.type"); got != "fixed-delay" {
		t.Errorf("enum spelling = %q", got)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestLoadOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("rest.port: 1000\nparallelism.default: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"rest.port=2000", "security.keytab=/k.keytab", "taskmanager.host=a=b"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Int("rest.port") != 2000 || c.Int("parallelism.default") != 2 || c.String("taskmanager.host") != "a=b" {
		t.Errorf("got rest.port=%d parallelism=%d host=%q", c.Int("rest.port"), c.Int("parallelism.default"), c.String("taskmanager.host"))
	}
	if c.String("security.kerberos.login.keytab") != "/k.keytab" || len(c.Warnings()) != 1 {
		t.Errorf("deprecated override: %q", c.Warnings())
	}
	for o, want := range map[string]string{
		"rest.port":     "-D rest.port: want key=value",
		"=1":            "-D =1: want key=value",
		"rest.port=abc": `-D: rest.port: "abc" is not a valid port: want an integer 0..65535`,
	} {
		if _, err := Load(path, []string{o}); errText(err) != want {
			t.Errorf("override %q: %v, want %s", o, err, want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil {
		t.Error("missing file: no error")
	}
}

func TestEmptyFiles(t *testing.T) {
	for _, y := range []string{"", "# only a comment\n", "~\n", "---\n"} {
		c := mustParse(t, y)
		if c.Int("rest.port") != 8081 {
			t.Errorf("%q: defaults not applied", y)
		}
	}
	if c := mustParse(t, "rest.port:\n"); c.IsSet("rest.port") || c.Int("rest.port") != 8081 {
		t.Error("null value should leave the default")
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("SLUICE_CONF_DIR", "/etc/sluice")
	if got := DefaultPath(); got != "/etc/sluice/config.yaml" {
		t.Errorf("DefaultPath = %q", got)
	}
	t.Setenv("SLUICE_CONF_DIR", "")
	dir := t.TempDir()
	t.Chdir(dir)
	if got := DefaultPath(); got != "" {
		t.Errorf("DefaultPath without file = %q", got)
	}
	if err := os.Mkdir("conf", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("conf/config.yaml", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := DefaultPath(); got != "conf/config.yaml" {
		t.Errorf("DefaultPath = %q", got)
	}
}

func TestEntriesMasksSensitiveValues(t *testing.T) {
	c := mustParse(t, "security.ssl.internal.keystore-password: hunter2\nsecurity.cluster.join-token: tok-123\nsecurity.ssl.internal.keystore: /etc/ks.p12\nsecurity.kerberos.login.keytab: /etc/k.keytab\n")
	got := map[string]string{}
	var keys []string
	for _, e := range c.Entries() {
		got[e.Key] = e.Value
		keys = append(keys, e.Key)
	}
	want := map[string]string{
		"security.ssl.internal.keystore-password": "******",
		"security.cluster.join-token":             "******",
		"security.ssl.internal.keystore":          "/etc/ks.p12",
		"security.kerberos.login.keytab":          "/etc/k.keytab",
		"rest.port":                               "8081",
		"heartbeat.interval":                      "10 s",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Entries[%s] = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["taskmanager.host"]; ok {
		t.Error("Entries lists a key that is unset and has no default")
	}
	if !slices.IsSorted(keys) {
		t.Error("Entries not sorted")
	}
	if c.Secret("security.cluster.join-token").Value() != "tok-123" {
		t.Error("Secret lost the value")
	}
}

func TestIsSensitive(t *testing.T) {
	for key, want := range map[string]bool{
		"security.ssl.rest.truststore-password": true, "s3.secret-key": true,
		"fs.azure.account.key.x": true, "metrics.reporter.dd.apikey": true,
		"security.cluster.join-token": true, "Some.PASSWORD": true,
		"x.basic-auth": true, "sasl.jaas.config": true, "x.http-headers": true,
		"x.auth-params": true, "gcs.service-key": true,
		"security.ssl.internal.keystore": false, "security.kerberos.login.keytab": false,
		"rest.port": false,
	} {
		if got := IsSensitive(key); got != want {
			t.Errorf("IsSensitive(%q) = %v", key, got)
		}
	}
}

func TestGetterPanics(t *testing.T) {
	for name, f := range map[string]func(c *Config){
		"unregistered": func(c *Config) { c.String("no.such.key") },
		"wrong type":   func(c *Config) { c.Int("heartbeat.interval") },
		"raw":          func(c *Config) { c.Raw("no.such.key") },
		"register dup": func(*Config) { Register(Key{Name: "akka.ssl.enabled", Type: Bool}) },
		"bad default":  func(*Config) { Register(Key{Name: "test.bad-default", Type: Int, Default: "x"}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f(New())
		}()
	}
}

func TestCloneIsIndependent(t *testing.T) {
	c := mustParse(t, "rest.port: 1\nrest.listeners: [{name: a}]\n")
	d := c.Clone()
	if err := d.Set("rest.port", "2"); err != nil {
		t.Fatal(err)
	}
	raw, _ := d.Raw("rest.listeners")
	raw.([]any)[0].(map[string]any)["name"] = "changed"
	if c.Int("rest.port") != 1 || d.Int("rest.port") != 2 {
		t.Error("Clone shares values")
	}
	if r, _ := c.Raw("rest.listeners"); r.([]any)[0].(map[string]any)["name"] != "a" {
		t.Error("Raw returned shared state")
	}
}

func TestConcurrentReads(t *testing.T) {
	c := mustParse(t, "rest.port: 1\n")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 200 {
				_ = c.Int("rest.port") + c.Int("jobmanager.rpc.port")
				_ = c.Entries()
				if i == 0 {
					_ = c.Set("parallelism.default", "3")
				}
			}
		})
	}
	wg.Wait()
}

// TestUnknownSecurityKeyIsAnError: a typo under security. must not start a
// cluster without the protection asked for, from a file or from -D.
func TestUnknownSecurityKeyIsAnError(t *testing.T) {
	for _, o := range []string{"security.ssl.internal.enbled=true", "security.foo=1", "security.kerberos.login.keytabb=/k"} {
		_, err := Load("", []string{o})
		if err == nil || !strings.Contains(err.Error(), "unknown security key") {
			t.Errorf("-D %s: err = %v, want unknown security key", o, err)
		}
	}
	_, err := Load("", []string{"security.ssl.internal.enbled=true"})
	if err == nil || !strings.Contains(err.Error(), `did you mean "security.ssl.internal.enabled"?`) {
		t.Errorf("no suggestion: %v", err)
	}
	// Other unknown keys stay warnings.
	c, err := Load("", []string{"taskmanager.foo=1"})
	if err != nil || len(c.Warnings()) != 1 {
		t.Errorf("taskmanager.foo: %v %q", err, c.Warnings())
	}
}

// TestFlinkDeprecatedKeys: Flink's old names of keys sluice honours load,
// with a warning that names the current key.
func TestFlinkDeprecatedKeys(t *testing.T) {
	for old, canon := range map[string]string{
		"security.principal":          "security.kerberos.login.principal",
		"security.keytab":             "security.kerberos.login.keytab",
		"security.ssl.enabled":        "security.ssl.internal.enabled",
		"web.port":                    "rest.port",
		"jobmanager.web.port":         "rest.port",
		"web.address":                 "rest.bind-address",
		"jobmanager.web.address":      "rest.bind-address",
		"restart-strategy":            "restart-strategy.type",
		"taskmanager.net.port":        "taskmanager.data.port",
		"taskmanager.net.ssl.enabled": "taskmanager.data.ssl.enabled",
	} {
		k, _ := Lookup(canon)
		val := map[Type]string{Bool: "true", Int: "1234", String: "x"}[k.Type]
		if canon == "restart-strategy.type" {
			val = "fixed-delay"
		}
		c, err := Load("", []string{old + "=" + val})
		if err != nil {
			t.Errorf("%s: %v", old, err)
			continue
		}
		if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], fmt.Sprintf("%q is deprecated: use %q", old, canon)) {
			t.Errorf("%s: warnings %q", old, w)
		}
		if !c.IsSet(canon) {
			t.Errorf("%s did not set %s", old, canon)
		}
	}
	// Nested YAML with the old scalar name beside the new map form.
	c := mustParse(t, "restart-strategy: fixed-delay\n")
	if got := c.String("restart-strategy.type"); got != "fixed-delay" {
		t.Errorf("restart-strategy: %q", got)
	}
}

// TestWithJobSettings: a job may set the keys marked Job, and only those.
func TestWithJobSettings(t *testing.T) {
	base := New()
	c, err := base.WithJobSettings(map[string]string{"parallelism.default": "3", "restart-strategy": "fixed-delay"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Int("parallelism.default") != 3 || c.String("restart-strategy.type") != "fixed-delay" || base.Int("parallelism.default") != 1 {
		t.Errorf("job settings not applied to a copy: %d %q, base %d", c.Int("parallelism.default"), c.String("restart-strategy.type"), base.Int("parallelism.default"))
	}
	for k, want := range map[string]string{
		"taskmanager.numberOfTaskSlots": "cannot apply to one job",
		"security.ssl.internal.enabled": "cannot apply to one job",
		"pipeline.expression.max-cost":  "cannot apply to one job",
		"parallelism.defualt":           `did you mean "parallelism.default"`,
	} {
		if _, err := base.WithJobSettings(map[string]string{k: "1"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", k, err, want)
		}
	}
	if _, err := base.WithJobSettings(map[string]string{"parallelism.default": "0"}); err == nil || !strings.Contains(err.Error(), "parallelism.default") {
		t.Errorf("invalid value: %v", err)
	}
}
