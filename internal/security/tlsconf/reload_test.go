package tlsconf

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	// Write then rename, as config management does; the old inode stays
	// valid for a reader that already opened it.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReload(t *testing.T) {
	p := getPKI(t)
	dir := t.TempDir()
	ks, ts := filepath.Join(dir, "keystore.pem"), filepath.Join(dir, "truststore.pem")
	writeFile(t, ks, pemOf(t, p.jm))
	writeFile(t, ts, certPEM(p.ca1))

	log, buf := newLogger()
	srv, err := NewStore(Options{Keystore: ks, Truststore: ts, Reload: true, ReloadInterval: 30 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	cli := NewStoreFromMaterial(p.tm, p.roots1, Options{}, nil)
	srvCfg, cliCfg := srv.ServerConfig(PeerPolicy{}), cli.ClientConfig(PeerPolicy{})
	if res := handshake(t, srvCfg, cliCfg); res.clientErr != nil || res.clientPeer.Subject.CommonName != "jm" {
		t.Fatalf("before reload: %+v", res)
	}

	writeFile(t, ks, pemOf(t, p.jm2))
	waitFor(t, "reload", func() bool { return srv.Certificate().Leaf.Subject.CommonName == "jm2" })
	if res := handshake(t, srvCfg, cliCfg); res.clientErr != nil || res.clientPeer.Subject.CommonName != "jm2" {
		t.Fatalf("after reload: %+v", res)
	}
	if n := buf.count("TLS material reloaded"); n != 1 {
		t.Errorf("reload logged %d times:\n%s", n, buf)
	}

	// A broken file keeps the old material, logged once however long it stays broken.
	writeFile(t, ks, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	waitFor(t, "failed reload log", func() bool { return buf.count("TLS material not reloaded") > 0 })
	os.Chtimes(ks, time.Now(), time.Now().Add(time.Second)) // new mtime, same content
	time.Sleep(150 * time.Millisecond)
	if n := buf.count("TLS material not reloaded"); n != 1 {
		t.Errorf("failure logged %d times:\n%s", n, buf)
	}
	if res := handshake(t, srvCfg, cliCfg); res.clientErr != nil || res.clientPeer.Subject.CommonName != "jm2" {
		t.Fatalf("after broken file: %+v", res)
	}

	// A certificate whose key does not match is refused the same way.
	bad := append(certPEM(p.jm.Leaf), pemOf(t, p.tm)[len(certPEM(p.tm.Leaf)):]...)
	writeFile(t, ks, bad)
	waitFor(t, "mismatch log", func() bool { return buf.count("do not match") > 0 })
	if got := srv.Certificate().Leaf.Subject.CommonName; got != "jm2" {
		t.Errorf("after mismatched file: %s", got)
	}

	// New trust material applies as well.
	writeFile(t, ks, pemOf(t, p.jm))
	writeFile(t, ts, certPEM(p.ca2))
	waitFor(t, "trust reload", func() bool {
		return srv.Certificate().Leaf.Subject.CommonName == "jm" && buf.count("TLS material reloaded") >= 2
	})
	waitFor(t, "roots reload", func() bool {
		return reasonOf(handshake(t, srvCfg, cliCfg).serverErr) == UnknownCA
	})
}

func TestRunWithoutReloadReturns(t *testing.T) {
	s := NewStoreFromMaterial(getPKI(t).jm, nil, Options{}, nil)
	s.Run(context.Background()) // must not block
}
