// Package fsguard opens a job's data files on a TaskManager, confined to the
// paths the job was authorized for at submit.
//
// The JobManager decides on the text of a path; the kernel opens whatever
// the path resolves to. Between the two, a symbolic link (placed before the
// submission or swapped in after it) or a relative path would let a job
// read or write where its submitter may not. A Guard closes that gap: it
// opens only granted paths, resolves every component itself with
// O_NOFOLLOW relative to the directory before it (so no component can be
// swapped between the check and the open), refuses every symbolic link on
// the way, and creates and renames files only relative to the directory it
// opened, so nothing it writes can leave the granted directory.
//
// Checkpoint state uses two tree grants (tree.go): StateDir, a private
// tree the job creates 0700 directories and 0600 files in, and ReadTree,
// read access to the regular files below a directory it restores from.
// Paths in a tree are relative and walked the same way from the root's
// descriptor.
//
// The walk does what openat2(RESOLVE_NO_SYMLINKS) would, on every kernel,
// and it can say which component was a link, which openat2's bare ELOOP
// cannot.
package fsguard

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Mode is what a grant allows.
type Mode uint8

const (
	// Read allows opening one regular file for reading.
	Read Mode = iota + 1
	// Write allows opening (creating) one directory and creating,
	// renaming and removing files directly inside it.
	Write
	// StateDir allows a private tree (a job's checkpoint directory, a
	// savepoint being written): directories are created 0700 and files
	// 0600 (O_EXCL, O_NOFOLLOW), read back, renamed and removed, all
	// relative to the root's descriptor. See OpenTree.
	StateDir
	// ReadTree allows reading regular files anywhere below a directory
	// (restoring a checkpoint or savepoint). See OpenTree.
	ReadTree
)

func (m Mode) String() string {
	switch m {
	case Read:
		return "read"
	case Write:
		return "write"
	case StateDir:
		return "state directory"
	case ReadTree:
		return "read tree"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Grant is one path a job may touch: an input file (Read) or an output
// directory (Write). Path is absolute and clean.
type Grant struct {
	Path string
	Mode Mode
}

// ErrNotGranted is returned for a path the job was not authorized for.
var ErrNotGranted = errors.New("not granted")

// ErrSymlink is returned when a path passes through a symbolic link.
var ErrSymlink = errors.New("symbolic link")

// SymlinkError names the component of a path that is a symbolic link.
type SymlinkError struct {
	Path string // the granted path
	Link string // the component that is a link
}

func (e *SymlinkError) Error() string {
	return fmt.Sprintf("%s: %s is a symbolic link, and symbolic links are not followed for job data: use the real path", e.Path, e.Link)
}

// Is makes errors.Is(err, ErrSymlink) true.
func (e *SymlinkError) Is(target error) bool { return target == ErrSymlink }

// Guard opens job data within a fixed set of grants. It is safe for
// concurrent use.
type Guard struct {
	grants []Grant
}

// New returns a Guard for the grants. Every path must be absolute and
// clean: the JobManager sends them so, and anything else is refused rather
// than interpreted.
func New(grants []Grant) (*Guard, error) {
	for _, g := range grants {
		if err := checkPath(g.Path); err != nil {
			return nil, fmt.Errorf("grant %s %q: %w", g.Mode, g.Path, err)
		}
		if g.Mode < Read || g.Mode > ReadTree {
			return nil, fmt.Errorf("grant %q: unknown mode %d", g.Path, g.Mode)
		}
	}
	return &Guard{grants: slices.Clone(grants)}, nil
}

func checkPath(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("path %q is relative: job data paths must be absolute", p)
	}
	if filepath.Clean(p) != p {
		return fmt.Errorf("path %q is not clean (it has \"..\", \".\" or repeated or trailing slashes): use %q", p, filepath.Clean(p))
	}
	return nil
}

func (g *Guard) check(path string, m Mode) error {
	if err := checkPath(path); err != nil {
		return err
	}
	if !slices.Contains(g.grants, Grant{Path: path, Mode: m}) {
		return fmt.Errorf("%s %s: %w: the job was authorized for %s", m, path, ErrNotGranted, g.describe())
	}
	return nil
}

func (g *Guard) describe() string {
	if len(g.grants) == 0 {
		return "no files"
	}
	s := make([]string, len(g.grants))
	for i, gr := range g.grants {
		s[i] = gr.Mode.String() + " " + gr.Path
	}
	return strings.Join(s, ", ")
}

// OpenFile opens a granted input file for reading. Every component of the
// path must be a real directory and the last a regular file: a symbolic
// link anywhere is refused, a FIFO or device too.
func (g *Guard) OpenFile(path string) (*os.File, error) {
	if err := g.check(path, Read); err != nil {
		return nil, err
	}
	dir, err := walk(path, filepath.Dir(path), 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	base := filepath.Base(path)
	// O_NONBLOCK: opening a FIFO must not hang the task; it is refused below.
	fd, err := openat(dir, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, componentError(dir, path, path, base, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: not a regular file: a job reads regular files only", path)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// OpenDir opens a granted output directory, creating it and any missing
// parent (mode 0755) without following symbolic links.
func (g *Guard) OpenDir(path string) (*Dir, error) {
	if err := g.check(path, Write); err != nil {
		return nil, err
	}
	fd, err := walk(path, path, 0o755)
	if err != nil {
		return nil, err
	}
	return &Dir{fd: fd, path: path}, nil
}

// walk opens dir (absolute, clean) one component at a time, each relative
// to its parent and with O_NOFOLLOW, creating missing components with
// mkdirMode unless it is 0. granted is the path being opened, for messages.
func walk(granted, dir string, mkdirMode uint32) (int, error) {
	fd, err := openat(unix.AT_FDCWD, "/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /: %w", err)
	}
	cur := "/"
	for _, name := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		if name == "" {
			continue
		}
		next := filepath.Join(cur, name)
		nfd, err := openDir(fd, name, mkdirMode)
		if err != nil {
			err = componentError(fd, granted, next, name, err)
			unix.Close(fd)
			return -1, err
		}
		unix.Close(fd)
		fd, cur = nfd, next
	}
	return fd, nil
}

// openDir opens the directory name in fd without following a link,
// creating it with mkdirMode if it is missing and mkdirMode is not 0. A
// directory it creates private (mode 0700) is set to exactly that on its
// descriptor, so the umask cannot widen or narrow it; a shared one (0755)
// keeps the umask's say, as mkdir(1) does.
func openDir(fd int, name string, mkdirMode uint32) (int, error) {
	nfd, err := openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if !errors.Is(err, unix.ENOENT) || mkdirMode == 0 {
		return nfd, err
	}
	err = unix.Mkdirat(fd, name, mkdirMode)
	created := err == nil
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	nfd, err = openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil && created && mkdirMode&0o077 == 0 {
		if err = unix.Fchmod(nfd, mkdirMode); err != nil {
			unix.Close(nfd)
			return -1, err
		}
	}
	return nfd, err
}

// componentError explains why name (at path, in directory fd) could not be
// opened, telling a symbolic link from anything else.
func componentError(fd int, granted, path, name string, err error) error {
	var st unix.Stat_t
	if serr := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return &SymlinkError{Path: granted, Link: path}
		case unix.S_IFDIR:
		default:
			if path != granted {
				return fmt.Errorf("open %s: %s is not a directory", granted, path)
			}
		}
	}
	return fmt.Errorf("open %s: %w", granted, &os.PathError{Op: "open", Path: path, Err: err})
}

// openat retries on EINTR, which Go's own os package does too.
func openat(dir int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// Dir is an opened output directory. Files are created, renamed and
// removed relative to it, by plain names only, so they stay inside it even
// if its path is changed after it was opened.
type Dir struct {
	fd   int
	path string
}

// Path is the directory's granted path, for messages.
func (d *Dir) Path() string { return d.path }

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0) {
		return fmt.Errorf("%q is not a plain file name", name)
	}
	return nil
}

// CreateTemp creates a new file named prefix + random + suffix in the
// directory, exclusively and without following links, and returns it with
// its name. The file is 0600: a part file in progress is nobody else's to
// read until it is published (Publish).
func (d *Dir) CreateTemp(prefix, suffix string) (*os.File, string, error) {
	for range 100 {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		name := prefix + hex.EncodeToString(b) + suffix
		if err := checkName(name); err != nil {
			return nil, "", fmt.Errorf("create in %s: %w", d.path, err)
		}
		fd, err := openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("create %s: %w", filepath.Join(d.path, name), err)
		}
		return os.NewFile(uintptr(fd), filepath.Join(d.path, name)), name, nil
	}
	return nil, "", fmt.Errorf("create in %s: no unused temporary name after 100 tries", d.path)
}

// PublishedMode is the mode Publish gives a file: what a file created 0644
// gets under the process's umask, as the output files of a job without
// private in-progress files always had.
var PublishedMode = func() os.FileMode {
	// Read by setting it (the only portable way) once, at package
	// initialisation, before any goroutine of this package creates files.
	old := unix.Umask(0o077)
	unix.Umask(old)
	return os.FileMode(0o644 &^ old)
}()

// Publish gives a regular file of the directory, created private by
// CreateTemp, the mode of a published output file (PublishedMode), before
// it is renamed to its final name. Links are not followed.
func (d *Dir) Publish(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("publish in %s: %w", d.path, err)
	}
	path := filepath.Join(d.path, name)
	fd, err := openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("publish %s: a symbolic link: %w", path, err)
		}
		return fmt.Errorf("publish %s: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("publish %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("publish %s: not a regular file", path)
	}
	if err := unix.Fchmod(fd, uint32(PublishedMode)); err != nil {
		return fmt.Errorf("publish %s: chmod %04o: %w", path, PublishedMode, err)
	}
	return nil
}

// Rename renames a file of the directory to another name in it. A link
// already named to is replaced, not followed.
func (d *Dir) Rename(from, to string) error {
	if err := checkName(from); err != nil {
		return fmt.Errorf("rename in %s: %w", d.path, err)
	}
	if err := checkName(to); err != nil {
		return fmt.Errorf("rename in %s: %w", d.path, err)
	}
	if err := unix.Renameat(d.fd, from, d.fd, to); err != nil {
		return fmt.Errorf("rename %s to %s in %s: %w", from, to, d.path, err)
	}
	return nil
}

// Remove removes a file of the directory.
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("remove in %s: %w", d.path, err)
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return fmt.Errorf("remove %s: %w", filepath.Join(d.path, name), err)
	}
	return nil
}

// Names lists the names in the directory, sorted. It reads through a descriptor of its own,
// so listing twice lists twice.
func (d *Dir) Names() ([]string, error) {
	fd, err := openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.path, err)
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.path, err)
	}
	slices.Sort(names)
	return names, nil
}

// Sync makes the renames and removals done in the directory durable.
func (d *Dir) Sync() error {
	if err := unix.Fsync(d.fd); err != nil {
		return fmt.Errorf("sync %s: %w", d.path, err)
	}
	return nil
}

// Close releases the directory.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}
