package kerberos_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/sluice-dev/sluice/internal/security/kerberos"
	"github.com/sluice-dev/sluice/test/kdc"
)

// syncBuffer collects log output written from Run's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLog(t *testing.T) (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// realm starts a KDC with a service principal HTTP/localhost, which tests
// get tickets for to prove that a client works.
func realm(t *testing.T, o kdc.Options) *kdc.KDC {
	t.Helper()
	// Keep the machine's Kerberos setup out of every test.
	t.Setenv("KRB5CCNAME", "FILE:"+filepath.Join(t.TempDir(), "none"))
	t.Setenv("KRB5_CONFIG", filepath.Join(t.TempDir(), "none.conf"))
	k := kdc.Start(t, o)
	k.AddPrincipal(t, "HTTP/localhost")
	return k
}

// useClient proves a client works: it gets a service ticket from the KDC.
func useClient(t *testing.T, cl *client.Client) {
	t.Helper()
	if _, _, err := cl.GetServiceTicket("HTTP/localhost"); err != nil {
		t.Fatalf("get a service ticket: %v", err)
	}
}

func mustFail(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\n  lacks %q", err, w)
		}
	}
}

func TestKeytabLogin(t *testing.T) {
	k := realm(t, kdc.Options{})
	k.AddPrincipal(t, "sluice/jobmanager")
	kt := k.Keytab(t, "sluice/jobmanager")
	log, _ := testLog(t)

	l, err := kerberos.NewLogin(context.Background(), kerberos.Config{
		Principal: "sluice/jobmanager", Keytab: kt, Krb5Conf: k.Krb5Conf,
		Contexts: []string{"KafkaClient", "RestServer"},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Principal(), "sluice/jobmanager@SLUICE.TEST"; got != want {
		t.Errorf("Principal() = %q, want %q", got, want)
	}
	if left := time.Until(l.Expires()); left < 9*time.Hour || left > 10*time.Hour+time.Minute {
		t.Errorf("TGT expires in %v, want about 10h", left)
	}
	st := l.Status()
	if st.Source != kerberos.SourceKeytab || st.Keytab != kt {
		t.Errorf("status %+v", st)
	}
	for _, ctx := range []string{"KafkaClient", "RestServer"} {
		cl, err := l.Client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		useClient(t, cl)
	}
}

func TestContexts(t *testing.T) {
	k := realm(t, kdc.Options{})
	k.AddPrincipal(t, "alice")
	log, _ := testLog(t)
	l, err := kerberos.NewLogin(context.Background(), kerberos.Config{
		Principal: "alice@SLUICE.TEST", Keytab: k.Keytab(t, "alice"), Krb5Conf: k.Krb5Conf,
		Contexts: []string{"KafkaClient"},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Client("KafkaClient"); err != nil {
		t.Error(err)
	}
	_, err = l.Client("PostgresClient")
	mustFail(t, err, `"PostgresClient"`, "security.kerberos.login.contexts", "KafkaClient")

	none, err := kerberos.NewLogin(context.Background(), kerberos.Config{
		Principal: "alice", Keytab: k.Keytab(t, "alice"), Krb5Conf: k.Krb5Conf,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	_, err = none.Client("KafkaClient")
	mustFail(t, err, "security.kerberos.login.contexts", "configured: none")
}

func TestTicketCacheLogin(t *testing.T) {
	k := realm(t, kdc.Options{})
	pw := k.AddPrincipal(t, "alice")
	cc := filepath.Join(t.TempDir(), "krb5cc_test")
	k.Kinit(t, "alice", pw, cc)
	// Resolved as MIT does: KRB5CCNAME with its FILE: prefix, KRB5_CONFIG.
	t.Setenv("KRB5CCNAME", "FILE:"+cc)
	t.Setenv("KRB5_CONFIG", k.Krb5Conf)
	log, logs := testLog(t)

	l, err := kerberos.NewLogin(context.Background(), kerberos.Config{
		UseTicketCache: true, Contexts: []string{"KafkaClient"}, ReloginPeriod: 50 * time.Millisecond,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Principal(); got != "alice@SLUICE.TEST" {
		t.Errorf("Principal() = %q", got)
	}
	st := l.Status()
	if st.Source != kerberos.SourceTicketCache || st.TicketCache != cc {
		t.Errorf("status %+v", st)
	}
	cl, err := l.Client("KafkaClient")
	if err != nil {
		t.Fatal(err)
	}
	useClient(t, cl)
	if !strings.Contains(logs.String(), "stops working when the ticket cache expires") {
		t.Errorf("no log of the coming expiry:\n%s", logs)
	}

	// kinit again: Run notices the new cache and reads it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	first := l.Expires()
	time.Sleep(1100 * time.Millisecond) // ticket times have a 1 s resolution
	k.Kinit(t, "alice", pw, cc)
	deadline := time.Now().Add(5 * time.Second)
	for l.Status().Relogins == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := l.Status(); st.Relogins == 0 || !st.Expires.After(first) {
		t.Errorf("cache not re-read after kinit: %+v (first expiry %v)", st, first)
	}
	cl2, _ := l.Client("KafkaClient")
	if cl2 == cl {
		t.Error("the client was not replaced after kinit")
	}
	useClient(t, cl2)
	cancel()
	<-done

	// A cache of another principal than the configured one.
	_, err = kerberos.NewLogin(context.Background(), kerberos.Config{UseTicketCache: true, Principal: "bob"}, log)
	mustFail(t, err, "holds tickets of alice@SLUICE.TEST, not of bob@SLUICE.TEST", "kinit bob@SLUICE.TEST")
}

func TestTicketCacheExpiryReported(t *testing.T) {
	k := realm(t, kdc.Options{MaxLife: 3 * time.Second})
	pw := k.AddPrincipal(t, "alice")
	cc := filepath.Join(t.TempDir(), "cc")
	k.Kinit(t, "alice", pw, cc)
	t.Setenv("KRB5CCNAME", cc)
	log, logs := testLog(t)
	l, err := kerberos.NewLogin(context.Background(), kerberos.Config{
		UseTicketCache: true, Krb5Conf: k.Krb5Conf, ReloginPeriod: 100 * time.Millisecond,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(l.Expires()); left > 4*time.Second {
		t.Fatalf("TGT life %v, want at most the realm's 3s", left)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	go l.Run(ctx)
	deadline := time.Now().Add(6 * time.Second)
	for !strings.Contains(logs.String(), "has expired") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	out := logs.String()
	for _, want := range []string{"level=WARN msg=\"kerberos: the ticket cache expires soon", "level=ERROR msg=\"kerberos: the TGT has expired", "run kinit"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// A new login from the expired cache says what to do.
	_, err = kerberos.NewLogin(context.Background(), kerberos.Config{UseTicketCache: true, Krb5Conf: k.Krb5Conf}, log)
	mustFail(t, err, "expired at", "run kinit")
}

func TestTicketCacheErrors(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "krb5.conf")
	if err := os.WriteFile(conf, []byte("[libdefaults]\n default_realm = SLUICE.TEST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uid := strconv.Itoa(os.Getuid())
	log, _ := testLog(t)
	for _, name := range []string{"KCM:", "KEYRING:persistent:" + uid, "API:", "MEMORY:x"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("KRB5CCNAME", name)
			_, err := kerberos.NewLogin(context.Background(), kerberos.Config{UseTicketCache: true, Krb5Conf: conf}, log)
			mustFail(t, err, name, "only FILE: caches", "kinit -c FILE:/tmp/krb5cc_"+uid, "export KRB5CCNAME=FILE:/tmp/krb5cc_"+uid)
		})
	}
	t.Run("default_ccache_name", func(t *testing.T) {
		t.Setenv("KRB5CCNAME", "")
		c2 := filepath.Join(t.TempDir(), "krb5.conf")
		os.WriteFile(c2, []byte("[libdefaults]\n default_realm = SLUICE.TEST\n default_ccache_name = KEYRING:persistent:%{uid}\n"), 0o644)
		_, err := kerberos.NewLogin(context.Background(), kerberos.Config{UseTicketCache: true, Krb5Conf: c2}, log)
		mustFail(t, err, "KEYRING:persistent:"+uid, "default_ccache_name in "+c2, "only FILE: caches")
	})
	t.Run("missing", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nothing")
		t.Setenv("KRB5CCNAME", "FILE:"+missing)
		_, err := kerberos.NewLogin(context.Background(), kerberos.Config{UseTicketCache: true, Krb5Conf: conf, Principal: "alice"}, log)
		mustFail(t, err, "no ticket cache at "+missing, "run kinit alice", "security.kerberos.login.keytab")
	})
	t.Run("no credential", func(t *testing.T) {
		_, err := kerberos.NewLogin(context.Background(), kerberos.Config{Krb5Conf: conf}, log)
		mustFail(t, err, "no credential", "security.kerberos.login.use-ticket-cache")
	})
}

func TestWrongKeytab(t *testing.T) {
	k := realm(t, kdc.Options{})
	k.AddPrincipal(t, "alice")
	k.AddPrincipal(t, "bob")
	log, _ := testLog(t)

	t.Run("another principal's keytab", func(t *testing.T) {
		kt := k.Keytab(t, "bob", "HTTP/localhost")
		_, err := kerberos.NewLogin(context.Background(), kerberos.Config{Principal: "alice", Keytab: kt, Krb5Conf: k.Krb5Conf}, log)
		mustFail(t, err, "keytab "+kt+" holds no key for alice@SLUICE.TEST", "bob@SLUICE.TEST, HTTP/localhost@SLUICE.TEST", "ktadd")
	})
	t.Run("stale key", func(t *testing.T) {
		kt := k.Keytab(t, "alice")
		k.Randkey(t, "alice")
		_, err := kerberos.NewLogin(context.Background(), kerberos.Config{Principal: "alice", Keytab: kt, Krb5Conf: k.Krb5Conf}, log)
		mustFail(t, err, "the KDC refused the key of alice@SLUICE.TEST in keytab "+kt, "stale", "ktadd")
	})
}

func TestUnknownPrincipal(t *testing.T) {
	k := realm(t, kdc.Options{})
	// A keytab for a principal the KDC has never heard of.
	kt := keytab.New()
	for _, et := range []int32{20, 19, 18, 17} {
		if err := kt.AddEntry("ghost", "SLUICE.TEST", "whatever", time.Now(), 1, et); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "ghost.keytab")
	data, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	log, _ := testLog(t)
	_, err = kerberos.NewLogin(context.Background(), kerberos.Config{Principal: "ghost", Keytab: path, Krb5Conf: k.Krb5Conf}, log)
	mustFail(t, err, "does not know principal ghost@SLUICE.TEST", "security.kerberos.login.principal", "KDC_ERR_C_PRINCIPAL_UNKNOWN")
}

func TestKDCDown(t *testing.T) {
	k := realm(t, kdc.Options{})
	k.AddPrincipal(t, "alice")
	kt := k.Keytab(t, "alice")
	k.Stop()
	log, _ := testLog(t)
	start := time.Now()
	_, err := kerberos.NewLogin(context.Background(), kerberos.Config{Principal: "alice", Keytab: kt, Krb5Conf: k.Krb5Conf}, log)
	mustFail(t, err, "cannot reach a KDC of realm SLUICE.TEST", "tried 127.0.0.1:"+strconv.Itoa(k.Port), k.Krb5Conf)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v to report a KDC that refuses connections", d)
	}
}

func TestInsecureKeytab(t *testing.T) {
	k := realm(t, kdc.Options{})
	k.AddPrincipal(t, "alice")
	kt := k.Keytab(t, "alice")
	log, _ := testLog(t)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		if err := os.Chmod(kt, mode); err != nil {
			t.Fatal(err)
		}
		_, err := kerberos.NewLogin(context.Background(), kerberos.Config{Principal: "alice", Keytab: kt, Krb5Conf: k.Krb5Conf}, log)
		mustFail(t, err, kt, "chmod 600 "+kt, "security.kerberos.login.allow-insecure-keytab: true")
	}
	l, err := kerberos.NewLogin(context.Background(), kerberos.Config{Principal: "alice", Keytab: kt, Krb5Conf: k.Krb5Conf, AllowInsecureKeytab: true}, log)
	if err != nil {
		t.Fatalf("allowed insecure keytab refused: %v", err)
	}
	if l.Principal() != "alice@SLUICE.TEST" {
		t.Error(l.Principal())
	}
}

// TestReloginShortTicket logs in from a keytab in a realm whose tickets
// live one minute and checks the login still works after that minute:
// Run logs in again at 80% of the ticket's life (48 s), before the
// one-minute relogin period.
func TestReloginShortTicket(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("takes about a minute; runs without -short and always under CI=true")
	}
	k := realm(t, kdc.Options{MaxLife: time.Minute})
	k.AddPrincipal(t, "alice")
	log, logs := testLog(t)
	l, err := kerberos.NewLogin(context.Background(), kerberos.Config{
		Principal: "alice", Keytab: k.Keytab(t, "alice"), Krb5Conf: k.Krb5Conf, Contexts: []string{"KafkaClient"},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	first := l.Expires()
	if life := time.Until(first); life > time.Minute+time.Second {
		t.Fatalf("TGT life %v, want the realm's 1 min", life)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	time.Sleep(time.Until(first) + 2*time.Second)
	st := l.Status()
	if st.Relogins < 1 || !st.Expires.After(first) || st.LastError != "" {
		t.Fatalf("no relogin before the TGT expired: %+v (first expiry %v)", st, first)
	}
	cl, err := l.Client("KafkaClient")
	if err != nil {
		t.Fatal(err)
	}
	useClient(t, cl)
	t.Logf("first TGT expired %v; relogins %d; TGT now expires %v", first.Format(time.TimeOnly), st.Relogins, st.Expires.Format(time.TimeOnly))
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs)
	}
}
