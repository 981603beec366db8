// Package kdc runs a throwaway MIT Kerberos KDC for tests: a realm in a
// temporary directory, on a free loopback port, with principals and
// keytabs made per test. Nothing reads or writes /etc/krb5.conf: every
// MIT tool is run with KRB5_CONFIG and KRB5_KDC_PROFILE pointing at the
// test's own files, and clients use Krb5Conf.
//
// MIT krb5 (krb5-kdc, krb5-admin-server, krb5-user) is installed with
// apt-get when missing; when that is impossible the test is skipped, or
// fails under CI=true.
package kdc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Enctypes are the encryption types the realm supports and clients ask for,
// strongest first. gokrb5's defaults omit the SHA-2 ones, so Krb5Conf lists
// them explicitly.
var Enctypes = []string{
	"aes256-cts-hmac-sha384-192",
	"aes128-cts-hmac-sha256-128",
	"aes256-cts-hmac-sha1-96",
	"aes128-cts-hmac-sha1-96",
}

// Options configure a realm. The zero value is a usable realm SLUICE.TEST
// with 10-hour, non-renewable tickets.
type Options struct {
	// Realm is the realm name; SLUICE.TEST when empty.
	Realm string
	// MaxLife is the longest ticket life the KDC grants; 10h when zero.
	// Tests of relogin use a minute.
	MaxLife time.Duration
	// MaxRenewableLife is the longest renewable life; 0 means tickets
	// are not renewable, which forces clients to log in again.
	MaxRenewableLife time.Duration
}

// KDC is a running test KDC.
type KDC struct {
	// Realm is the realm the KDC serves.
	Realm string
	// Dir holds the database, configuration, logs and keytabs.
	Dir string
	// Port is the loopback port the KDC listens on, for UDP and TCP.
	Port int
	// Krb5Conf is the path of the client krb5.conf for this realm.
	Krb5Conf string

	kdcConf string
	tools   map[string]string
	cmd     *exec.Cmd
	exited  chan struct{}
	stop    sync.Once
	seq     atomic.Int64
}

// probePrincipal is logged in right after start to prove that the process
// answering on Port is our KDC and knows our database.
const probePrincipal = "sluice-kdc-probe"

// Start creates a realm in t.TempDir() and starts krb5kdc on a free
// loopback port; the KDC is stopped when the test ends.
func Start(t testing.TB, o Options) *KDC {
	t.Helper()
	tools := ensureTools(t)
	if o.Realm == "" {
		o.Realm = "SLUICE.TEST"
	}
	if o.MaxLife <= 0 {
		o.MaxLife = 10 * time.Hour
	}
	k := &KDC{Realm: o.Realm, Dir: t.TempDir(), tools: tools}
	k.Krb5Conf = filepath.Join(k.Dir, "krb5.conf")
	k.kdcConf = filepath.Join(k.Dir, "kdc.conf")
	if err := os.WriteFile(filepath.Join(k.Dir, "kadm5.acl"), nil, 0o600); err != nil {
		t.Fatalf("kdc: %v", err)
	}

	// The database does not depend on the port: create it once, then
	// retry only the start when a port turns out to be taken.
	port, err := freePort()
	if err != nil {
		t.Fatalf("kdc: find a free port: %v", err)
	}
	k.Port = port
	k.writeConfigs(t, o)
	k.run(t, "kdb5_util", "-r", k.Realm, "create", "-s", "-P", randomSecret())
	probePassword := k.AddPrincipal(t, probePrincipal)

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			if k.Port, err = freePort(); err != nil {
				t.Fatalf("kdc: find a free port: %v", err)
			}
			k.writeConfigs(t, o)
		}
		if lastErr = k.start(probePassword); lastErr == nil {
			t.Cleanup(k.Stop)
			return k
		}
		t.Logf("kdc: start on port %d: %v; trying another port", k.Port, lastErr)
	}
	t.Fatalf("kdc: could not start krb5kdc: %v\n%s", lastErr, k.logs())
	return nil
}

// start checks that the port is free, starts krb5kdc and proves it answers.
func (k *KDC) start(probePassword string) error {
	// krb5kdc binds with SO_REUSEPORT, so a second KDC on a busy port
	// would silently share its traffic: refuse the port unless a bind
	// without any reuse option succeeds right now.
	if err := checkPortFree(k.Port); err != nil {
		return err
	}
	out, err := os.OpenFile(filepath.Join(k.Dir, "krb5kdc.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(k.tools["krb5kdc"], "-n", "-r", k.Realm)
	cmd.Env = k.toolEnv()
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: an interrupted test run does not leave the KDC
	// attached to the terminal's signals, and Stop reaches it alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start krb5kdc: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	k.cmd, k.exited = cmd, exited
	k.stop = sync.Once{}

	fail := func(err error) error {
		k.Stop()
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", k.addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			return fail(fmt.Errorf("krb5kdc exited: %v", cmd.ProcessState))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("krb5kdc does not accept connections on %s", k.addr()))
		}
	}
	ccache := filepath.Join(k.Dir, "probe.ccache")
	if err := k.kinit(probePrincipal, probePassword, ccache); err != nil {
		return fail(fmt.Errorf("the KDC on %s does not answer for realm %s: %w", k.addr(), k.Realm, err))
	}
	os.Remove(ccache)
	return nil
}

// Stop stops the KDC; clients then get "KDC unreachable" errors. It is
// safe to call more than once.
func (k *KDC) Stop() {
	if k.cmd == nil {
		return
	}
	k.stop.Do(func() {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-k.exited:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-k.exited
		}
	})
}

// Env returns the environment a child process needs to use this realm:
// KRB5_CONFIG and KRB5_KDC_PROFILE.
func (k *KDC) Env() []string {
	return []string{"KRB5_CONFIG=" + k.Krb5Conf, "KRB5_KDC_PROFILE=" + k.kdcConf}
}

// AddPrincipal creates a principal ("alice", "HTTP/localhost") with a
// random password and returns the password.
func (k *KDC) AddPrincipal(t testing.TB, name string) (password string) {
	t.Helper()
	password = randomSecret()
	out := k.Kadmin(t, fmt.Sprintf("addprinc -pw %s %s", password, name))
	if !strings.Contains(out, "created") {
		t.Fatalf("kdc: addprinc %s: %s", name, out)
	}
	return password
}

// Keytab exports the current keys of principals into a new keytab file
// (mode 0600) and returns its path. The keys are not changed (-norandkey),
// so the principals' passwords keep working.
func (k *KDC) Keytab(t testing.TB, principals ...string) string {
	t.Helper()
	path := filepath.Join(k.Dir, fmt.Sprintf("keytab-%d.keytab", k.seq.Add(1)))
	out := k.Kadmin(t, fmt.Sprintf("ktadd -k %s -norandkey %s", path, strings.Join(principals, " ")))
	if !strings.Contains(out, "added to keytab") {
		t.Fatalf("kdc: ktadd %v: %s", principals, out)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatalf("kdc: %v", err)
	}
	return path
}

// Randkey gives a principal new random keys (a new kvno), which makes every
// keytab exported before stale and the principal's password useless.
func (k *KDC) Randkey(t testing.TB, principal string) {
	t.Helper()
	out := k.Kadmin(t, "cpw -randkey "+principal)
	if !strings.Contains(out, "randomized") {
		t.Fatalf("kdc: cpw -randkey %s: %s", principal, out)
	}
}

// Kadmin runs one kadmin.local query against the realm's database and
// returns its combined output. kadmin.local exits 0 even when the query
// fails, so callers check the output.
func (k *KDC) Kadmin(t testing.TB, query string) string {
	t.Helper()
	return k.run(t, "kadmin.local", "-r", k.Realm, "-q", query)
}

// Kinit runs MIT kinit for principal with password, writing the tickets to
// the FILE: cache ccache (a path).
func (k *KDC) Kinit(t testing.TB, principal, password, ccache string) {
	t.Helper()
	if err := k.kinit(principal, password, ccache); err != nil {
		t.Fatalf("kdc: %v", err)
	}
}

func (k *KDC) kinit(principal, password, ccache string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.tools["kinit"], "-c", "FILE:"+ccache, principal)
	cmd.Env = append(k.toolEnv(), "KRB5CCNAME=FILE:"+ccache)
	// MIT kinit reads the password from stdin when it is not a terminal.
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kinit %s: %w: %s", principal, err, bytes.TrimSpace(out))
	}
	return nil
}

// run runs an MIT tool with the realm's environment and fails the test on
// a non-zero exit.
func (k *KDC) run(t testing.TB, tool string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.tools[tool], args...)
	cmd.Env = k.toolEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kdc: %s %s: %v\n%s", tool, strings.Join(redact(args), " "), err, out)
	}
	return string(out)
}

// toolEnv is the environment of MIT tools: the process environment minus
// anything that would point them at the machine's Kerberos setup.
func (k *KDC) toolEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "KRB5") {
			continue
		}
		env = append(env, e)
	}
	return append(env, k.Env()...)
}

func (k *KDC) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.Port)) }

// logs returns the KDC's output and log, for failure messages.
func (k *KDC) logs() string {
	var b strings.Builder
	for _, f := range []string{"krb5kdc.out", "kdc.log"} {
		data, err := os.ReadFile(filepath.Join(k.Dir, f))
		if err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "--- %s\n%s", f, tail(data, 4000))
		}
	}
	return b.String()
}

func (k *KDC) writeConfigs(t testing.TB, o Options) {
	t.Helper()
	enctypes := strings.Join(Enctypes, " ")
	var supported []string
	for _, e := range Enctypes {
		supported = append(supported, e+":normal")
	}
	kdcConf := fmt.Sprintf(`[kdcdefaults]
	kdc_listen = 127.0.0.1:%[2]d
	kdc_tcp_listen = 127.0.0.1:%[2]d

[realms]
	%[1]s = {
		database_name = %[3]s/principal
		key_stash_file = %[3]s/stash
		acl_file = %[3]s/kadm5.acl
		admin_keytab = FILE:%[3]s/kadm5.keytab
		kdc_listen = 127.0.0.1:%[2]d
		kdc_tcp_listen = 127.0.0.1:%[2]d
		max_life = %[4]ds
		max_renewable_life = %[5]ds
		master_key_type = aes256-cts-hmac-sha1-96
		supported_enctypes = %[6]s
		default_principal_flags = +preauth
	}

[logging]
	kdc = FILE:%[3]s/kdc.log
	admin_server = FILE:%[3]s/kadmin.log
	default = FILE:%[3]s/krb5lib.log
`, k.Realm, k.Port, k.Dir, int64(o.MaxLife/time.Second), int64(o.MaxRenewableLife/time.Second), strings.Join(supported, " "))

	krb5Conf := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	udp_preference_limit = 1
	default_ccache_name = FILE:%[3]s/default.ccache
	default_tkt_enctypes = %[4]s
	default_tgs_enctypes = %[4]s
	permitted_enctypes = %[4]s

[realms]
	%[1]s = {
		kdc = 127.0.0.1:%[2]d
	}

[domain_realm]
	localhost = %[1]s
	.localhost = %[1]s
`, k.Realm, k.Port, k.Dir, enctypes)

	for path, data := range map[string]string{k.kdcConf: kdcConf, k.Krb5Conf: krb5Conf} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatalf("kdc: %v", err)
		}
	}
}

// freePort returns a loopback port free for both TCP and UDP.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if checkPortFree(port) == nil {
			return port, nil
		}
	}
	return 0, errors.New("no loopback port free for both TCP and UDP")
}

// checkPortFree binds the port for TCP and UDP with SO_REUSEADDR and
// SO_REUSEPORT both off, so any other socket on it, including a KDC
// that uses SO_REUSEPORT, makes the bind fail.
func checkPortFree(port int) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0)
			if serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 0)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("port %d is busy (tcp): %w", port, err)
	}
	l.Close()
	p, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return fmt.Errorf("port %d is busy (udp): %w", port, err)
	}
	p.Close()
	return nil
}

// soReusePort is SO_REUSEPORT on Linux, which package syscall does not name.
const soReusePort = 0xf

func randomSecret() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// redact hides the argument after -P (the master password) and the
// password in "addprinc -pw" queries from failure messages.
func redact(args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == "-P" && i+1 < len(out) {
			out[i+1] = "<secret>"
		}
		if strings.Contains(a, "-pw ") {
			f := strings.Fields(a)
			for j := range f {
				if f[j] == "-pw" && j+1 < len(f) {
					f[j+1] = "<secret>"
				}
			}
			out[i] = strings.Join(f, " ")
		}
	}
	return out
}
