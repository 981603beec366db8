package fsguard

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tree is the layout: /srv/in (readable), /srv/out/alice
// (writable), /srv/secret (neither), under a temporary root.
type tree struct{ root, in, out, secret string }

func newTree(t *testing.T) tree {
	t.Helper()
	root := t.TempDir()
	tr := tree{root: root, in: filepath.Join(root, "srv/in"), out: filepath.Join(root, "srv/out/alice"), secret: filepath.Join(root, "srv/secret")}
	for _, d := range []string{tr.in, tr.out, tr.secret} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(tr.secret, "data.txt"), "TOP SECRET\n")
	write(t, filepath.Join(tr.in, "ok.txt"), "public\n")
	return tr
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustGuard(t *testing.T, grants ...Grant) *Guard {
	t.Helper()
	g, err := New(grants)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOpenFileGranted(t *testing.T) {
	tr := newTree(t)
	p := filepath.Join(tr.in, "ok.txt")
	f, err := mustGuard(t, Grant{p, Read}).OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); got != "public\n" {
		t.Fatalf("read %q", got)
	}
}

func TestOpenFileRefused(t *testing.T) {
	tr := newTree(t)
	secret := filepath.Join(tr.secret, "data.txt")
	// A symlink in the readable directory pointing at the secret file.
	fileLink := filepath.Join(tr.in, "link.txt")
	if err := os.Symlink(secret, fileLink); err != nil {
		t.Fatal(err)
	}
	// A symlinked directory inside the readable directory.
	dirLink := filepath.Join(tr.in, "sub")
	if err := os.Symlink(tr.secret, dirLink); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(tr.in, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := filepath.Join(tr.in, "ok.txt")
	tests := []struct {
		name, grant, open, want string
		symlink                 bool
	}{
		{"symlinked file", fileLink, fileLink, "link.txt is a symbolic link", true},
		{"symlinked directory", filepath.Join(dirLink, "data.txt"), filepath.Join(dirLink, "data.txt"), "sub is a symbolic link", true},
		{"not granted", ok, secret, "not granted", false},
		{"dot-dot", ok, tr.in + "/../secret/data.txt", "not clean", false},
		{"relative", ok, "srv/in/ok.txt", "relative", false},
		{"fifo", fifo, fifo, "not a regular file", false},
		{"write grant is no read grant", "", ok, "not granted", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g *Guard
			if tt.grant == "" {
				g = mustGuard(t, Grant{ok, Write})
			} else {
				g = mustGuard(t, Grant{tt.grant, Read})
			}
			f, err := g.OpenFile(tt.open)
			if err == nil {
				t.Fatalf("opened, read %q", readAll(t, f))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
			if errors.Is(err, ErrSymlink) != tt.symlink {
				t.Fatalf("errors.Is(%v, ErrSymlink) = %v", err, !tt.symlink)
			}
		})
	}
}

// TestOpenFileSwappedAfterGrant: the grant is made while the path is a
// regular file; the file is then replaced by a symlink (as after a
// submission) and the open refuses it.
func TestOpenFileSwappedAfterGrant(t *testing.T) {
	tr := newTree(t)
	p := filepath.Join(tr.in, "ok.txt")
	g := mustGuard(t, Grant{p, Read})
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tr.secret, "data.txt"), p); err != nil {
		t.Fatal(err)
	}
	if f, err := g.OpenFile(p); !errors.Is(err, ErrSymlink) {
		if f != nil {
			t.Fatalf("opened the swapped file, read %q", readAll(t, f))
		}
		t.Fatalf("got %v, want a symlink refusal", err)
	}
	// The same with a parent directory swapped for a link.
	if err := os.Rename(tr.in, tr.in+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tr.secret, tr.in); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(tr.in, "data.txt")
	if _, err := mustGuard(t, Grant{q, Read}).OpenFile(q); !errors.Is(err, ErrSymlink) {
		t.Fatalf("got %v, want a symlink refusal", err)
	}
}

func TestOpenDirWrites(t *testing.T) {
	tr := newTree(t)
	out := filepath.Join(tr.out, "job/run1") // missing parents are created
	d, err := mustGuard(t, Grant{out, Write}).OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, name, err := d.CreateTemp(".part-", ".inprogress")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x\n")
	f.Close()
	if err := d.Rename(name, "part-0"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "part-0")); err != nil || string(b) != "x\n" {
		t.Fatalf("part file: %q %v", b, err)
	}
	for _, bad := range []string{"../escape", "a/b", "..", ""} {
		if err := d.Rename("part-0", bad); err == nil {
			t.Errorf("rename to %q allowed", bad)
		}
	}
	// Names lists the directory each time it is called (its own descriptor, its own offset).
	for range 2 {
		names, err := d.Names()
		if err != nil || len(names) != 1 || names[0] != "part-0" {
			t.Fatalf("Names: %v %v", names, err)
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDirRefused(t *testing.T) {
	tr := newTree(t)
	// A symlinked directory under the writable one, pointing at the secret.
	link := filepath.Join(tr.out, "x")
	if err := os.Symlink(tr.secret, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, filepath.Join(link, "deeper")} {
		if _, err := mustGuard(t, Grant{p, Write}).OpenDir(p); !errors.Is(err, ErrSymlink) {
			t.Errorf("OpenDir(%s): %v, want a symlink refusal", p, err)
		}
	}
	if entries, _ := os.ReadDir(tr.secret); len(entries) != 1 {
		t.Errorf("something was created in the secret directory: %v", entries)
	}
	if _, err := mustGuard(t, Grant{tr.out, Read}).OpenDir(tr.out); !errors.Is(err, ErrNotGranted) {
		t.Errorf("a read grant opened a directory for writing: %v", err)
	}
}

// TestDirSwappedAfterOpen: once opened, the directory is used by its file
// descriptor: replacing its path with a symlink to the secret directory
// does not redirect the part files.
func TestDirSwappedAfterOpen(t *testing.T) {
	tr := newTree(t)
	out := filepath.Join(tr.out, "job")
	d, err := mustGuard(t, Grant{out, Write}).OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.Rename(out, out+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tr.secret, out); err != nil {
		t.Fatal(err)
	}
	f, name, err := d.CreateTemp(".p-", "")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := d.Rename(name, "part-0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tr.secret, "part-0")); err == nil {
		t.Fatal("the part file landed in the secret directory")
	}
	if _, err := os.Stat(filepath.Join(out+".moved", "part-0")); err != nil {
		t.Fatalf("the part file is not in the opened directory: %v", err)
	}
}

func TestNewRefusesBadGrants(t *testing.T) {
	for _, p := range []string{"rel/x", "/a/../b", "/a/", ""} {
		if _, err := New([]Grant{{p, Read}}); err == nil {
			t.Errorf("grant %q accepted", p)
		}
	}
}
