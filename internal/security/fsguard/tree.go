package fsguard

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Modes of what a Tree creates: private to the cluster's OS user whatever
// the process's umask, because checkpoints hold the job's data.
const (
	treeDirMode  = 0o700
	treeFileMode = 0o600
)

// Tree is an opened StateDir or ReadTree grant. It names files by
// slash-separated paths relative to its root, walked one component at a
// time with O_NOFOLLOW from the root's descriptor, so nothing escapes the
// tree whatever the paths contain or whatever is swapped in after the
// grant: a symbolic link anywhere is refused, "..", absolute and empty
// components are refused before any system call. Not safe for concurrent
// use with Close.
type Tree struct {
	fd   int
	path string
	mode Mode
}

// OpenTree opens a granted tree. For StateDir the root and any missing
// parent are created 0700; an existing root that group or others may
// access is refused, since it would expose or let others plant checkpoint
// files. For ReadTree the root must exist.
func (g *Guard) OpenTree(path string, m Mode) (*Tree, error) {
	if m != StateDir && m != ReadTree {
		return nil, fmt.Errorf("open tree %s: mode %s is not a tree mode", path, m)
	}
	if err := g.check(path, m); err != nil {
		return nil, err
	}
	var mkdir uint32
	if m == StateDir {
		mkdir = treeDirMode
	}
	fd, err := walk(path, path, mkdir)
	if err != nil {
		return nil, err
	}
	if m == StateDir {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		if perm := st.Mode & 0o777; perm&0o077 != 0 {
			unix.Close(fd)
			return nil, fmt.Errorf("state directory %s has mode %04o: group and others must have no access to checkpoint files: run chmod 700 %s, or remove it and let it be created", path, perm, path)
		}
	}
	return &Tree{fd: fd, path: path, mode: m}, nil
}

// Path is the tree's granted root, for messages.
func (t *Tree) Path() string { return t.path }

// splitRel checks a relative path component by component: no empty, ".",
// ".." or absolute component, no NUL. It is the same check _metadata's
// paths get, repeated here so a Tree is safe whoever calls it.
func splitRel(rel string) ([]string, error) {
	if rel == "" {
		return nil, errors.New("empty path")
	}
	if strings.ContainsRune(rel, 0) {
		return nil, fmt.Errorf("path %q contains NUL", rel)
	}
	if strings.HasPrefix(rel, "/") {
		return nil, fmt.Errorf("path %q is absolute: paths in a tree are relative to its root", rel)
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, fmt.Errorf("path %q has an empty, \".\" or \"..\" component", rel)
		}
	}
	return parts, nil
}

func (t *Tree) full(rel string) string { return path.Join(t.path, rel) }

func (t *Tree) need(op, rel string, m Mode) error {
	if t.fd < 0 {
		return fmt.Errorf("%s %s: tree closed", op, t.full(rel))
	}
	if t.mode != m {
		return fmt.Errorf("%s %s: %w: the job holds a %s grant on %s", op, t.full(rel), ErrNotGranted, t.mode, t.path)
	}
	return nil
}

// dir opens the directory holding the last component of parts (the root
// itself for a single component), creating missing ones 0700 if mkdir.
// The caller closes the returned descriptor unless it is t.fd.
func (t *Tree) dir(parts []string, mkdir bool) (int, error) {
	fd := t.fd
	var mode uint32
	if mkdir {
		mode = treeDirMode
	}
	for i, name := range parts[:len(parts)-1] {
		nfd, err := openDir(fd, name, mode)
		if err != nil {
			err = componentError(fd, t.full(strings.Join(parts, "/")), t.full(strings.Join(parts[:i+1], "/")), name, err)
			if fd != t.fd {
				unix.Close(fd)
			}
			return -1, err
		}
		if fd != t.fd {
			unix.Close(fd)
		}
		fd = nfd
	}
	return fd, nil
}

func (t *Tree) release(fd int) {
	if fd != t.fd {
		unix.Close(fd)
	}
}

// Create creates a new file (StateDir only): missing parents 0700, the file
// 0600, exclusively, never through a link.
func (t *Tree) Create(rel string) (*os.File, error) {
	if err := t.need("create", rel, StateDir); err != nil {
		return nil, err
	}
	parts, err := splitRel(rel)
	if err != nil {
		return nil, fmt.Errorf("create in %s: %w", t.path, err)
	}
	dir, err := t.dir(parts, true)
	if err != nil {
		return nil, err
	}
	defer t.release(dir)
	name := parts[len(parts)-1]
	fd, err := openat(dir, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, treeFileMode)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", t.full(rel), err)
	}
	if err := unix.Fchmod(fd, treeFileMode); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create %s: %w", t.full(rel), err)
	}
	return os.NewFile(uintptr(fd), t.full(rel)), nil
}

// MkdirAll creates a directory and its missing parents 0700 (StateDir
// only), as the JobManager does for chk-N/.
func (t *Tree) MkdirAll(rel string) error {
	if err := t.need("mkdir", rel, StateDir); err != nil {
		return err
	}
	parts, err := splitRel(rel)
	if err != nil {
		return fmt.Errorf("mkdir in %s: %w", t.path, err)
	}
	dir, err := t.dir(append(parts, "."), true)
	if err != nil {
		return err
	}
	t.release(dir)
	return nil
}

// Open opens a regular file for reading (both modes). A link, a FIFO or a
// device is refused.
func (t *Tree) Open(rel string) (*os.File, error) {
	if t.fd < 0 {
		return nil, fmt.Errorf("open %s: tree closed", t.full(rel))
	}
	parts, err := splitRel(rel)
	if err != nil {
		return nil, fmt.Errorf("open in %s: %w", t.path, err)
	}
	dir, err := t.dir(parts, false)
	if err != nil {
		return nil, err
	}
	defer t.release(dir)
	name := parts[len(parts)-1]
	full := t.full(rel)
	// O_NONBLOCK: a FIFO must not hang the task; it is refused below.
	fd, err := openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, componentError(dir, full, full, name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: %w", full, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: not a regular file: checkpoint files are regular files", full)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: %w", full, err)
	}
	return os.NewFile(uintptr(fd), full), nil
}

// Rename renames a file or directory of the tree to another path in it
// (StateDir only); the target's parent must exist. A link already at the
// target is replaced, not followed.
func (t *Tree) Rename(from, to string) error {
	if err := t.need("rename", from, StateDir); err != nil {
		return err
	}
	fp, err := splitRel(from)
	if err != nil {
		return fmt.Errorf("rename in %s: %w", t.path, err)
	}
	tp, err := splitRel(to)
	if err != nil {
		return fmt.Errorf("rename in %s: %w", t.path, err)
	}
	fd, err := t.dir(fp, false)
	if err != nil {
		return err
	}
	defer t.release(fd)
	td, err := t.dir(tp, false)
	if err != nil {
		return err
	}
	defer t.release(td)
	if err := unix.Renameat(fd, fp[len(fp)-1], td, tp[len(tp)-1]); err != nil {
		return fmt.Errorf("rename %s to %s in %s: %w", from, to, t.path, err)
	}
	return nil
}

// RemoveAll removes a file or a directory and everything in it (StateDir
// only). It never follows a link: a link is removed, not its target. A
// missing path is not an error, as with os.RemoveAll. The root itself
// cannot be removed through the tree.
func (t *Tree) RemoveAll(rel string) error {
	if err := t.need("remove", rel, StateDir); err != nil {
		return err
	}
	parts, err := splitRel(rel)
	if err != nil {
		return fmt.Errorf("remove in %s: %w", t.path, err)
	}
	dir, err := t.dir(parts, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer t.release(dir)
	if err := removeAt(dir, parts[len(parts)-1], 0); err != nil {
		return fmt.Errorf("remove %s: %w", t.full(rel), err)
	}
	return nil
}

// maxDepth bounds removeAt's recursion: a checkpoint tree is a few levels
// deep, and a deeper one was not made by sluice.
const maxDepth = 64

func removeAt(dir int, name string, depth int) error {
	err := unix.Unlinkat(dir, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	if depth >= maxDepth {
		return fmt.Errorf("%s: more than %d levels deep", name, maxDepth)
	}
	// A directory: O_NOFOLLOW|O_DIRECTORY refuses a link swapped in since.
	fd, err := openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n, depth+1); err != nil {
				err = fmt.Errorf("%s/%w", name, err)
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dir, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// readNames lists a directory from its descriptor, without consuming it:
// the listing goes through a new open file description of the same
// directory ("." relative to it). A dup would share the directory offset,
// so a second listing of a long-lived descriptor (the tree's root) would
// come back empty.
func readNames(fd int) ([]string, error) {
	dup, err := openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// ReadDir lists the names in a directory of the tree, sorted ("" or "."
// for the root).
func (t *Tree) ReadDir(rel string) ([]string, error) {
	fd, err := t.openDirRel("read directory", rel)
	if err != nil {
		return nil, err
	}
	defer t.release(fd)
	names, err := readNames(fd)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", t.full(rel), err)
	}
	return names, nil
}

// Sync fsyncs a directory of the tree ("" or "." for the root), so the
// renames and creations in it survive a crash.
func (t *Tree) Sync(rel string) error {
	fd, err := t.openDirRel("sync", rel)
	if err != nil {
		return err
	}
	defer t.release(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("sync %s: %w", t.full(rel), err)
	}
	return nil
}

func (t *Tree) openDirRel(op, rel string) (int, error) {
	if t.fd < 0 {
		return -1, fmt.Errorf("%s %s: tree closed", op, t.full(rel))
	}
	if rel == "" || rel == "." {
		return t.fd, nil
	}
	parts, err := splitRel(rel)
	if err != nil {
		return -1, fmt.Errorf("%s in %s: %w", op, t.path, err)
	}
	return t.dir(append(parts, "."), false)
}

// Close releases the tree.
func (t *Tree) Close() error {
	if t.fd < 0 {
		return nil
	}
	err := unix.Close(t.fd)
	t.fd = -1
	return err
}
