// Package audit writes authorization decisions and failed
// authentications to a JSON-lines file.
//
// The log answers "who tried to do what, and why was it allowed or
// denied" after the fact, so it is append-only, readable only by the
// owner, and rotated by size so it cannot fill the disk. Events carry no
// credentials by construction: an Event has no field for a token, password
// or header, only the identity the authenticator derived from them.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// Levels accepted by Options.Level and security.audit.log.level.
const (
	LevelNone   = "none"   // audit nothing
	LevelDenied = "denied" // audit every decision that is not an allow
	LevelAll    = "all"    // audit every decision
)

// Defaults for Options.
const (
	DefaultMaxSize    int64 = 100 << 20
	DefaultMaxBackups       = 5
)

// DataAccess is one piece of data a job reads or writes. It mirrors
// authz.DataAccess field for field, so a []authz.DataAccess element converts
// with audit.DataAccess(d), without audit importing authz (authz may want to
// audit, never the other way round).
type DataAccess struct {
	Verb     string `json:"verb"`
	Resource string `json:"resource"`
}

// Stages an Event can come from.
const (
	// StageAuthentication marks a failed authentication: User is empty,
	// Method is the method that rejected the credential.
	StageAuthentication = "authentication"
	// StageSession marks a dashboard login or logout (Verb "login" or
	// "logout"): never the token or the session id.
	StageSession = "session"
)

// Event is one authorization decision or one failed authentication.
type Event struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request-id,omitempty"`
	// Stage is "authentication" for a failed authentication, empty for
	// an authorization decision.
	Stage string `json:"stage,omitempty"`
	// Request is "METHOD /path" of a failed authentication.
	Request    string       `json:"request,omitempty"`
	User       string       `json:"user"`
	Groups     []string     `json:"groups,omitempty"`
	Method     string       `json:"authentication-method,omitempty"`
	Verb       string       `json:"verb"`
	Resource   string       `json:"resource"`
	Data       []DataAccess `json:"data,omitempty"`
	Decision   string       `json:"decision"` // "allow", "deny" or "no-opinion"
	Authorizer string       `json:"authorizer,omitempty"`
	Reason     string       `json:"reason,omitempty"`
	Listener   string       `json:"listener,omitempty"`
	RemoteAddr string       `json:"remote-address,omitempty"`
}

// Options configures a Logger.
type Options struct {
	Path       string // file to append to; required
	Level      string // none, denied (default) or all
	MaxSize    int64  // rotate when the file would grow past this; default 100 MiB
	MaxBackups int    // rotated files kept as Path.1 .. Path.N; default 5
	// Log receives write and rotation failures, which Logger.Log cannot
	// return without making every authorization depend on the disk.
	Log *slog.Logger
}

// Logger appends Events to a file. It is safe for concurrent use. A nil
// *Logger logs nothing, so callers need no "is auditing on" checks.
type Logger struct {
	opts Options
	all  bool // level "all"; otherwise "denied"
	none bool

	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
}

// New opens (creating it with mode 0600 if needed) the audit log at o.Path.
// It refuses an existing file that group or others can read: an audit log
// names users, resources and reasons, and a file left readable by an earlier
// tool should be fixed, not silently used.
func New(o Options) (*Logger, error) {
	if o.Path == "" {
		return nil, errors.New("audit log: no path; set security.audit.log.path")
	}
	l := &Logger{opts: o}
	switch o.Level {
	case LevelNone:
		l.none = true
	case "", LevelDenied:
	case LevelAll:
		l.all = true
	default:
		return nil, fmt.Errorf("audit log: level %q: want none, denied or all (security.audit.log.level)", o.Level)
	}
	if l.opts.MaxSize <= 0 {
		l.opts.MaxSize = DefaultMaxSize
	}
	if l.opts.MaxBackups <= 0 {
		l.opts.MaxBackups = DefaultMaxBackups
	}
	if l.opts.Log == nil {
		l.opts.Log = slog.Default()
	}
	if l.none {
		// Nothing will be written, so do not create or touch the file.
		return l, nil
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// FromConfig builds the audit log from security.audit.log.*. It returns
// nil (log nothing) and no error when security.audit.log.path is unset.
func FromConfig(cfg *config.Config) (*Logger, error) {
	path := cfg.String("security.audit.log.path")
	if path == "" {
		return nil, nil
	}
	return New(Options{
		Path:       path,
		Level:      cfg.String("security.audit.log.level"),
		MaxSize:    cfg.Bytes("security.audit.log.max-size"),
		MaxBackups: cfg.Int("security.audit.log.max-backups"),
	})
}

// open opens l.opts.Path for appending. The caller holds l.mu or owns l.
func (l *Logger) open() error {
	path := l.opts.Path
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("audit log %s: not a regular file (security.audit.log.path)", path)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("audit log %s: mode %04o lets group or others read or write it; run chmod 600 %s",
				path, st.Mode().Perm(), path)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit log %s: %w", path, err)
	}
	// O_APPEND so that concurrent writers (and an operator's "echo >>")
	// never overwrite each other's lines.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: open %s: %w (security.audit.log.path)", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit log %s: %w", path, err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Enabled reports whether an event with the given decision would be
// written, so a caller can skip building an Event it would throw away.
func (l *Logger) Enabled(decision string) bool {
	if l == nil || l.none {
		return false
	}
	return l.all || decision != "allow"
}

// Log appends e as one JSON line if the level asks for it; a zero Time is
// set to now. Failures are reported to Options.Log, not returned: an
// authorization must not fail because the audit disk is full, and the
// operator learns of it from the process log.
func (l *Logger) Log(e Event) {
	if !l.Enabled(e.Decision) {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	line, err := json.Marshal(e)
	if err != nil {
		l.opts.Log.Error("audit log: encode event", "err", err)
		return
	}
	line = append(line, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.f == nil {
		// A failed rotation left no file: try to reopen so one
		// bad moment does not end auditing for the life of the process.
		if err := l.open(); err != nil {
			l.opts.Log.Error("audit log: event lost", "err", err)
			return
		}
	}
	if l.size > 0 && l.size+int64(len(line)) > l.opts.MaxSize {
		if err := l.rotate(); err != nil {
			l.opts.Log.Error("audit log: rotate", "path", l.opts.Path, "err", err)
			if l.f == nil {
				return
			}
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		l.opts.Log.Error("audit log: write", "path", l.opts.Path, "err", err)
	}
}

// rotate shifts Path.i to Path.i+1 (dropping the oldest), Path to Path.1,
// and opens a new Path. The caller holds l.mu.
func (l *Logger) rotate() error {
	if err := l.f.Close(); err != nil {
		l.opts.Log.Warn("audit log: close before rotation", "err", err)
	}
	l.f = nil
	p := l.opts.Path
	n := l.opts.MaxBackups
	if err := os.Remove(p + "." + strconv.Itoa(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := n - 1; i >= 1; i-- {
		if err := os.Rename(p+"."+strconv.Itoa(i), p+"."+strconv.Itoa(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(p, p+".1"); err != nil {
		// Keep appending to the full file rather than lose events.
		if oerr := l.open(); oerr != nil {
			return errors.Join(err, oerr)
		}
		return err
	}
	return l.open()
}

// Close closes the file; events logged after Close are dropped.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
