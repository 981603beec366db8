package fsguard

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestStateDirPrivateModes: with a umask that would strip the owner's
// write bit and one that would leave group bits, everything the tree
// creates is exactly 0700 (directories) and 0600 (files).
func TestStateDirPrivateModes(t *testing.T) {
	for _, umask := range []int{0o272, 0o002, 0o077} {
		old := syscall.Umask(umask)
		func() {
			defer syscall.Umask(old)
			root := filepath.Join(t.TempDir(), "ckpt", "job-1") // parents created too
			tr, err := mustGuard(t, Grant{root, StateDir}).OpenTree(root, StateDir)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if err := tr.MkdirAll("chk-17"); err != nil {
				t.Fatal(err)
			}
			f, err := tr.Create("chk-17/3-0-keyed")
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("state")
			f.Close()
			f, err = tr.Create("chk-17/5-1-pebble/MANIFEST-000005") // parents created
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			for p, want := range map[string]os.FileMode{
				filepath.Dir(root):                       0o700,
				root:                                     0o700,
				filepath.Join(root, "chk-17"):            0o700,
				filepath.Join(root, "chk-17/5-1-pebble"): 0o700,
				filepath.Join(root, "chk-17/3-0-keyed"):  0o600,
				filepath.Join(root, "chk-17/5-1-pebble/MANIFEST-000005"): 0o600,
			} {
				if got := mode(t, p); got != want {
					t.Errorf("umask %04o: %s has mode %04o, want %04o", umask, p, got, want)
				}
			}
		}()
	}
}

func TestStateDirOperations(t *testing.T) {
	root := filepath.Join(t.TempDir(), "job")
	tr, err := mustGuard(t, Grant{root, StateDir}).OpenTree(root, StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	f, err := tr.Create("chk-1/_metadata.tmp-1")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("meta")
	f.Close()
	if _, err := tr.Create("chk-1/_metadata.tmp-1"); err == nil {
		t.Fatal("Create replaced an existing file")
	}
	if err := tr.Rename("chk-1/_metadata.tmp-1", "chk-1/_metadata"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Sync("chk-1"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Sync(""); err != nil {
		t.Fatal(err)
	}
	r, err := tr.Open("chk-1/_metadata")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); got != "meta" {
		t.Fatalf("read %q", got)
	}
	if err := tr.MkdirAll("shared"); err != nil {
		t.Fatal(err)
	}
	names, err := tr.ReadDir("")
	if err != nil || strings.Join(names, ",") != "chk-1,shared" {
		t.Fatalf("ReadDir: %v %v", names, err)
	}
	if names, err := tr.ReadDir("chk-1"); err != nil || strings.Join(names, ",") != "_metadata" {
		t.Fatalf("ReadDir chk-1: %v %v", names, err)
	}
	// Listing the root again lists it again: a listing must not consume
	// the root descriptor's directory offset.
	if names, err := tr.ReadDir("."); err != nil || strings.Join(names, ",") != "chk-1,shared" {
		t.Fatalf("second ReadDir of the root: %v %v", names, err)
	}
	if err := tr.RemoveAll("chk-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "chk-1")); !os.IsNotExist(err) {
		t.Fatalf("chk-1 not removed: %v", err)
	}
	if err := tr.RemoveAll("chk-1"); err != nil {
		t.Fatalf("removing a missing path: %v", err)
	}
}

func TestTreeBadPaths(t *testing.T) {
	root := filepath.Join(t.TempDir(), "job")
	tr, err := mustGuard(t, Grant{root, StateDir}).OpenTree(root, StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for _, rel := range []string{"", "/etc/passwd", "../escape", "chk-1/../../escape", "a//b", "./a", "a/.", "a\x00b", "a/"} {
		if f, err := tr.Create(rel); err == nil {
			f.Close()
			t.Errorf("Create(%q) allowed", rel)
		}
		if _, err := tr.Open(rel); err == nil {
			t.Errorf("Open(%q) allowed", rel)
		}
		if rel != "" {
			if err := tr.RemoveAll(rel); err == nil {
				t.Errorf("RemoveAll(%q) allowed", rel)
			}
		}
		if err := tr.Rename("x", rel); err == nil {
			t.Errorf("Rename to %q allowed", rel)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(root)); len(entries) != 1 {
		t.Errorf("something was created beside the tree: %v", entries)
	}
}

// TestStateDirRootRefused: an existing root that group or others can
// access, a root that is a link, a parent that is a link.
func TestStateDirRootRefused(t *testing.T) {
	tr := newTree(t)
	open := filepath.Join(tr.root, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o750); err != nil {
		t.Fatal(err)
	}
	_, err := mustGuard(t, Grant{open, StateDir}).OpenTree(open, StateDir)
	if err == nil || !strings.Contains(err.Error(), "mode 0750") || !strings.Contains(err.Error(), "chmod 700 "+open) {
		t.Fatalf("group-accessible root: %v", err)
	}
	link := filepath.Join(tr.out, "ckpt")
	if err := os.Symlink(tr.secret, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, filepath.Join(link, "job-1")} {
		if _, err := mustGuard(t, Grant{p, StateDir}).OpenTree(p, StateDir); !errors.Is(err, ErrSymlink) {
			t.Errorf("OpenTree(%s): %v, want a symlink refusal", p, err)
		}
	}
	if entries, _ := os.ReadDir(tr.secret); len(entries) != 1 {
		t.Errorf("something was created in the secret directory: %v", entries)
	}
	// Grants are per mode and per path.
	p := filepath.Join(tr.out, "job")
	g := mustGuard(t, Grant{p, ReadTree}, Grant{p, Write})
	if _, err := g.OpenTree(p, StateDir); !errors.Is(err, ErrNotGranted) {
		t.Errorf("StateDir without its grant: %v", err)
	}
	if _, err := g.OpenTree(p, Write); err == nil {
		t.Errorf("OpenTree in Write mode allowed")
	}
	if _, err := mustGuard(t, Grant{p, StateDir}).OpenTree(filepath.Join(p, "sub"), StateDir); !errors.Is(err, ErrNotGranted) {
		t.Errorf("a path below a grant is not the grant: %v", err)
	}
}

// TestTreeSymlinksInside: links planted inside the tree, to a file and to a
// directory outside it, are refused by every operation, and RemoveAll
// removes the link, not what it points at.
func TestTreeSymlinksInside(t *testing.T) {
	tr := newTree(t)
	root := filepath.Join(tr.out, "job")
	tree, err := mustGuard(t, Grant{root, StateDir}).OpenTree(root, StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if err := tree.MkdirAll("chk-2"); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(tr.secret, "data.txt")
	if err := os.Symlink(secretFile, filepath.Join(root, "chk-2/0-0-keyed")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tr.secret, filepath.Join(root, "chk-3")); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Open("chk-2/0-0-keyed"); !errors.Is(err, ErrSymlink) {
		t.Errorf("Open of a file link: %v", err)
	}
	if _, err := tree.Open("chk-3/data.txt"); !errors.Is(err, ErrSymlink) {
		t.Errorf("Open through a directory link: %v", err)
	}
	if _, err := tree.Create("chk-3/new"); !errors.Is(err, ErrSymlink) {
		t.Errorf("Create through a directory link: %v", err)
	}
	if f, err := tree.Create("chk-2/0-0-keyed"); err == nil {
		f.Close()
		t.Errorf("Create over a link allowed")
	}
	if _, err := tree.ReadDir("chk-3"); !errors.Is(err, ErrSymlink) {
		t.Errorf("ReadDir through a link: %v", err)
	}
	if err := tree.RemoveAll("chk-3/data.txt"); !errors.Is(err, ErrSymlink) {
		t.Errorf("RemoveAll through a link: %v", err)
	}
	if err := tree.Rename("chk-3/data.txt", "stolen"); !errors.Is(err, ErrSymlink) {
		t.Errorf("Rename through a link: %v", err)
	}
	if err := tree.RemoveAll("chk-3"); err != nil {
		t.Fatal(err)
	}
	if err := tree.RemoveAll("chk-2"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(secretFile); err != nil || string(b) != "TOP SECRET\n" {
		t.Fatalf("the secret was touched: %q %v", b, err)
	}
	if entries, _ := os.ReadDir(tr.secret); len(entries) != 1 {
		t.Errorf("the secret directory changed: %v", entries)
	}
}

// TestTreeSwappedAfterOpen: once opened, the tree is used by its
// descriptor: replacing the root's path with a link to the secret
// directory does not redirect what is created, read or removed; a
// directory inside swapped for a link after it was made is refused.
func TestTreeSwappedAfterOpen(t *testing.T) {
	tr := newTree(t)
	root := filepath.Join(tr.out, "job")
	tree, err := mustGuard(t, Grant{root, StateDir}).OpenTree(root, StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if err := tree.MkdirAll("chk-1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root, root+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tr.secret, root); err != nil {
		t.Fatal(err)
	}
	f, err := tree.Create("chk-1/0-0-keyed")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := tree.RemoveAll("chk-1"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(tr.secret); len(entries) != 1 {
		t.Errorf("the secret directory changed: %v", entries)
	}
	if err := tree.MkdirAll("chk-2"); err != nil {
		t.Fatal(err)
	}
	moved := root + ".moved"
	if err := os.Rename(filepath.Join(moved, "chk-2"), filepath.Join(moved, "chk-2.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tr.secret, filepath.Join(moved, "chk-2")); err != nil {
		t.Fatal(err)
	}
	if f, err := tree.Create("chk-2/x"); !errors.Is(err, ErrSymlink) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("Create in a swapped directory: %v", err)
	}
}

func TestReadTree(t *testing.T) {
	tr := newTree(t)
	sp := filepath.Join(tr.in, "savepoint-5d1f2a-0c9e")
	if err := os.MkdirAll(filepath.Join(sp, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(sp, "_metadata"), "{}")
	write(t, filepath.Join(sp, "sub/3-0-keyed"), "kg")
	if err := os.Symlink(filepath.Join(tr.secret, "data.txt"), filepath.Join(sp, "2-0-keyed")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tr.secret, filepath.Join(sp, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(sp, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// ReadTree does not require a private directory: savepoints are moved
	// and copied by users.
	tree, err := mustGuard(t, Grant{sp, ReadTree}).OpenTree(sp, ReadTree)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	for rel, want := range map[string]string{"_metadata": "{}", "sub/3-0-keyed": "kg"} {
		f, err := tree.Open(rel)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, f); got != want {
			t.Errorf("%s: %q", rel, got)
		}
	}
	if _, err := tree.Open("2-0-keyed"); !errors.Is(err, ErrSymlink) {
		t.Errorf("file link: %v", err)
	}
	if _, err := tree.Open("linked/data.txt"); !errors.Is(err, ErrSymlink) {
		t.Errorf("directory link: %v", err)
	}
	if _, err := tree.Open("fifo"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v", err)
	}
	if _, err := tree.Open("sub"); err == nil {
		t.Errorf("a directory opened as a file")
	}
	if names, err := tree.ReadDir("."); err != nil || len(names) != 5 {
		t.Errorf("ReadDir: %v %v", names, err)
	}
	// Read only: nothing is created, renamed or removed.
	if f, err := tree.Create("new"); !errors.Is(err, ErrNotGranted) {
		if f != nil {
			f.Close()
		}
		t.Errorf("Create in a read tree: %v", err)
	}
	if err := tree.Rename("_metadata", "x"); !errors.Is(err, ErrNotGranted) {
		t.Errorf("Rename in a read tree: %v", err)
	}
	if err := tree.RemoveAll("sub"); !errors.Is(err, ErrNotGranted) {
		t.Errorf("RemoveAll in a read tree: %v", err)
	}
	if err := tree.MkdirAll("d"); !errors.Is(err, ErrNotGranted) {
		t.Errorf("MkdirAll in a read tree: %v", err)
	}
	// A missing root is not created.
	missing := filepath.Join(tr.in, "nope")
	if _, err := mustGuard(t, Grant{missing, ReadTree}).OpenTree(missing, ReadTree); err == nil {
		t.Errorf("missing root opened")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("ReadTree created its root")
	}
	// A link as the root.
	link := filepath.Join(tr.in, "sp-link")
	if err := os.Symlink(tr.secret, link); err != nil {
		t.Fatal(err)
	}
	if _, err := mustGuard(t, Grant{link, ReadTree}).OpenTree(link, ReadTree); !errors.Is(err, ErrSymlink) {
		t.Errorf("linked root: %v", err)
	}
}

func TestTreeClosed(t *testing.T) {
	root := filepath.Join(t.TempDir(), "job")
	tree, err := mustGuard(t, Grant{root, StateDir}).OpenTree(root, StateDir)
	if err != nil {
		t.Fatal(err)
	}
	tree.Close()
	if _, err := tree.Create("x"); err == nil {
		t.Error("Create after Close")
	}
	if _, err := tree.Open("x"); err == nil {
		t.Error("Open after Close")
	}
	if _, err := tree.ReadDir(""); err == nil {
		t.Error("ReadDir after Close")
	}
	if err := tree.Close(); err != nil {
		t.Error(err)
	}
}

func TestNewTreeModes(t *testing.T) {
	if _, err := New([]Grant{{"/srv/ckpt/job", StateDir}, {"/srv/sp", ReadTree}}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mode{0, ReadTree + 1} {
		if _, err := New([]Grant{{"/srv/x", m}}); err == nil {
			t.Errorf("mode %d accepted", m)
		}
	}
	p := "/srv/ckpt/job"
	if _, err := mustGuard(t, Grant{p, StateDir}).OpenFile(p); !errors.Is(err, ErrNotGranted) {
		t.Errorf("a StateDir grant opened as a Read grant: %v", err)
	}
	if _, err := mustGuard(t, Grant{p, ReadTree}).OpenDir(p); !errors.Is(err, ErrNotGranted) {
		t.Errorf("a ReadTree grant opened for writing: %v", err)
	}
}
