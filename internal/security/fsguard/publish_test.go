package fsguard

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestCreateTempPrivatePublish: a file in progress is 0600 whatever the
// umask; Publish gives it the mode of a file created 0644 under the umask,
// and refuses a symbolic link (leaving its target alone) and a non-regular
// file.
func TestCreateTempPrivatePublish(t *testing.T) {
	tr := newTree(t)
	d, err := mustGuard(t, Grant{tr.out, Write}).OpenDir(tr.out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, name, err := d.CreateTemp(".part-", ".inprogress")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	mode := func(name string) os.FileMode {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(tr.out, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := mode(name); m != 0o600 {
		t.Errorf("in-progress file mode %04o, want 0600", m)
	}
	if err := d.Publish(name); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o022)
	syscall.Umask(old)
	if want := os.FileMode(0o644 &^ old); PublishedMode != want || mode(name) != want {
		t.Errorf("published mode %04o (PublishedMode %04o), want %04o (0644 under umask %04o)", mode(name), PublishedMode, want, old)
	}

	secret := filepath.Join(tr.secret, "data.txt")
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(tr.out, "link")); err != nil {
		t.Fatal(err)
	}
	if err := d.Publish("link"); err == nil {
		t.Error("Publish followed a symbolic link")
	}
	if fi, _ := os.Stat(secret); fi.Mode().Perm() != 0o600 {
		t.Errorf("the link's target changed mode to %04o", fi.Mode().Perm())
	}
	if err := os.Mkdir(filepath.Join(tr.out, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := d.Publish("sub"); err == nil {
		t.Error("Publish accepted a directory")
	}
	if err := d.Publish("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Publish of a missing file: %v, want a not-exist error", err)
	}
	if err := d.Publish("../escape"); err == nil {
		t.Error("Publish accepted a path")
	}
}
