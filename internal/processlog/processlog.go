// Package processlog writes a process's log file into env.log.dir and
// lists and reads that process's log files for the REST API. A process
// serves its own files only (its log file and the ones rotated from it),
// never another name in the directory, and never through a symbolic link.
package processlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/restapi"
)

// MaxRead bounds what one read of a log file returns: its last MaxRead
// bytes. It keeps an answer inside one control-plane message.
const MaxRead = 2 << 20

// ErrNoSuchLog is a file name that is not one of the process's log files.
var ErrNoSuchLog = errors.New("no such log file")

// Files are one process's log files: Name in Dir, and Name.1 .. Name.N
// rotated from it.
type Files struct {
	Dir  string // env.log.dir; "" when the process writes no log file
	Name string // e.g. sluice-taskmanager-tm-1.log
	Keep int    // env.log.max
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// ForProcess returns the log files of the process of role ("jobmanager",
// "taskmanager") and id ("" for the JobManager) under cfg's env.log.dir.
func ForProcess(cfg *config.Config, role, id string) Files {
	name := "sluice-" + role
	if id != "" {
		name += "-" + unsafeChars.ReplaceAllString(id, "_")
	}
	return Files{Dir: cfg.String("env.log.dir"), Name: name + ".log", Keep: int(cfg.Int("env.log.max"))}
}

// Open rotates the files of earlier runs (Name -> Name.1 -> ... -> Name.Keep,
// deleting what falls off) and opens a new log file, readable by the
// process's user only. With no Dir it returns (nil, nil).
func (f Files) Open() (*os.File, error) {
	if f.Dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("log directory %s (env.log.dir): %w: create it, or set env.log.dir to a writable directory", f.Dir, err)
	}
	base := filepath.Join(f.Dir, f.Name)
	_ = os.Remove(base + "." + strconv.Itoa(f.Keep)) // the oldest falls off (Keep 0: the current one)
	for i := f.Keep - 1; i >= 1; i-- {
		_ = os.Rename(base+"."+strconv.Itoa(i), base+"."+strconv.Itoa(i+1))
	}
	if f.Keep > 0 {
		_ = os.Rename(base, base+".1")
	} else {
		_ = os.Remove(base)
	}
	file, err := os.OpenFile(base, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log file %s (env.log.dir): %w: make the directory writable by this process's user, or set env.log.dir to another one", base, err)
	}
	return file, nil
}

// own reports whether name is one of f's file names.
func (f Files) own(name string) bool {
	if name == f.Name {
		return true
	}
	n, ok := strings.CutPrefix(name, f.Name+".")
	if !ok {
		return false
	}
	i, err := strconv.Atoi(n)
	return err == nil && i >= 1 && strconv.Itoa(i) == n
}

// List returns the process's log files, the current one first. Symbolic
// links and anything but regular files are left out.
func (f Files) List() ([]restapi.LogInfo, error) {
	out := []restapi.LogInfo{}
	if f.Dir == "" {
		return out, nil
	}
	entries, err := os.ReadDir(f.Dir)
	if err != nil {
		return nil, fmt.Errorf("list log directory %s (env.log.dir): %w", f.Dir, err)
	}
	for _, e := range entries {
		if !f.own(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // rotated away meanwhile
		}
		out = append(out, restapi.LogInfo{Name: e.Name(), Size: info.Size(), MTime: info.ModTime().UnixMilli()})
	}
	sort.Slice(out, func(a, b int) bool { return rank(out[a].Name) < rank(out[b].Name) })
	return out, nil
}

// rank orders the current file before the rotated ones, newest first.
func rank(name string) int {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		if n, err := strconv.Atoi(name[i+1:]); err == nil {
			return n
		}
	}
	return 0
}

// Read returns the last max bytes (at most MaxRead; max <= 0 means MaxRead)
// of the log file name, and whether the file is longer. A name that is not
// one of the process's own files is ErrNoSuchLog, whatever is in the
// directory under that name.
func (f Files) Read(name string, max int64) ([]byte, bool, error) {
	if f.Dir == "" || !f.own(name) {
		return nil, false, fmt.Errorf("%q: %w", name, ErrNoSuchLog)
	}
	if max <= 0 || max > MaxRead {
		max = MaxRead
	}
	file, err := os.OpenFile(filepath.Join(f.Dir, name), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ELOOP) {
		return nil, false, fmt.Errorf("%q: %w", name, ErrNoSuchLog)
	}
	if err != nil {
		return nil, false, fmt.Errorf("open log file %s: %w", name, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("log file %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%q: %w", name, ErrNoSuchLog)
	}
	size, truncated := info.Size(), false
	if size > max {
		if _, err := file.Seek(size-max, io.SeekStart); err != nil {
			return nil, false, fmt.Errorf("log file %s: %w", name, err)
		}
		truncated = true
	}
	data, err := io.ReadAll(io.LimitReader(file, max))
	if err != nil {
		return nil, false, fmt.Errorf("read log file %s: %w", name, err)
	}
	return data, truncated, nil
}
