package kdc_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/test/kdc"
)

func TestStartKinitKeytab(t *testing.T) {
	start := time.Now()
	k := kdc.Start(t, kdc.Options{})
	t.Logf("KDC %s up on port %d in %v", k.Realm, k.Port, time.Since(start))

	pw := k.AddPrincipal(t, "alice")
	cc := filepath.Join(t.TempDir(), "cc")
	k.Kinit(t, "alice", pw, cc)
	if fi, err := os.Stat(cc); err != nil || fi.Size() == 0 {
		t.Fatalf("kinit wrote no cache: %v", err)
	}

	kt := k.Keytab(t, "alice")
	fi, err := os.Stat(kt)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keytab mode %v, want 0600", fi.Mode().Perm())
	}
	// -norandkey: the password still works after the export.
	k.Kinit(t, "alice", pw, cc)

	// The keytab works with MIT kinit too.
	kinit, _ := exec.LookPath("kinit")
	if kinit == "" {
		kinit = "/usr/bin/kinit"
	}
	cmd := exec.Command(kinit, "-k", "-t", kt, "-c", "FILE:"+cc, "alice")
	cmd.Env = append(os.Environ(), k.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kinit -k: %v: %s", err, out)
	}
}

// A second KDC must not share the first one's port, and stopping the first
// leaves the second running.
func TestTwoKDCsAndStop(t *testing.T) {
	a := kdc.Start(t, kdc.Options{})
	b := kdc.Start(t, kdc.Options{Realm: "OTHER.TEST", MaxLife: time.Minute})
	if a.Port == b.Port {
		t.Fatalf("both KDCs on port %d", a.Port)
	}
	conf, err := os.ReadFile(b.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"default_realm = OTHER.TEST", "udp_preference_limit = 1"}, kdc.Enctypes...) {
		if !strings.Contains(string(conf), want) {
			t.Errorf("krb5.conf lacks %q", want)
		}
	}
	pw := b.AddPrincipal(t, "bob")
	a.Stop()
	a.Stop()
	b.Kinit(t, "bob", pw, filepath.Join(t.TempDir(), "cc"))
}
