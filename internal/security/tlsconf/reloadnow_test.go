package tlsconf

import (
	"path/filepath"
	"testing"
)

// TestReloadNow: Store.Reload applies new files at once, without Run and
// whether or not security.ssl.reload polls, and a broken file is an error
// that keeps the current material.
func TestReloadNow(t *testing.T) {
	p := getPKI(t)
	dir := t.TempDir()
	ks, ts := filepath.Join(dir, "keystore.pem"), filepath.Join(dir, "truststore.pem")
	writeFile(t, ks, pemOf(t, p.jm))
	writeFile(t, ts, certPEM(p.ca1))
	log, _ := newLogger()
	s, err := NewStore(Options{Keystore: ks, Truststore: ts}, log)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, ks, pemOf(t, p.jm2))
	if err := s.Reload(); err != nil || s.Certificate().Leaf.Subject.CommonName != "jm2" {
		t.Fatalf("Reload: %v, certificate %s", err, s.Certificate().Leaf.Subject)
	}
	writeFile(t, ks, []byte("not a keystore"))
	if err := s.Reload(); err == nil || s.Certificate().Leaf.Subject.CommonName != "jm2" {
		t.Fatalf("Reload of a broken keystore: %v, certificate %s (want an error and jm2 kept)", err, s.Certificate().Leaf.Subject)
	}
	if err := NewStoreFromMaterial(p.tm, p.roots1, Options{}, nil).Reload(); err != nil {
		t.Errorf("Reload of a store without files: %v", err)
	}
}
