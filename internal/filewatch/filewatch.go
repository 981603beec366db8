// Package filewatch reloads a configuration file when it changes, for the
// files sluice re-reads without a restart (bearer tokens, authorization
// policies). It polls rather than using inotify: the files are small, a
// Kubernetes Secret or ConfigMap update replaces a symlink that inotify
// watches miss, and a poll every few seconds is cheap.
package filewatch

import (
	"context"
	"crypto/sha256"
	"os"
	"sync"
	"time"
)

// Stat is what tells that a file may have changed.
type Stat struct {
	mtime time.Time
	size  int64
	mode  os.FileMode
	inode uint64
}

// StatOf returns the Stat of fi.
func StatOf(fi os.FileInfo) Stat { return Stat{fi.ModTime(), fi.Size(), fi.Mode(), Inode(fi)} }

// Watcher polls one file. When its stat changes it reads the file; when the
// content changed it hands it to Apply. Content that does not apply keeps
// what is in force, and the reason is reported once per change, so a
// half-written edit neither takes effect nor floods the log.
type Watcher struct {
	Path     string
	Interval time.Duration // default 2s
	// Read returns the file's content and stat, with the owner's checks
	// (permissions, size).
	Read func() ([]byte, Stat, error)
	// Apply parses and installs new content; an error keeps the old.
	Apply func(data []byte) error
	// Failed is told about each new failure.
	Failed func(err error)

	// Guarded by mu: Run polls while Reload may be called from a request.
	mu      sync.Mutex
	stat    Stat
	sum     [sha256.Size]byte
	lastErr string
}

// Loaded records the content loaded at start-up, so an unchanged file is
// not applied again.
func (w *Watcher) Loaded(data []byte, st Stat) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stat, w.sum = st, sha256.Sum256(data)
}

// Run polls until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	iv := w.Interval
	if iv <= 0 {
		iv = 2 * time.Second
	}
	tick := time.NewTicker(iv)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.Poll()
		}
	}
}

// Poll checks the file once.
func (w *Watcher) Poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	fi, err := os.Stat(w.Path)
	if err != nil {
		w.fail(err)
		return
	}
	if StatOf(fi) == w.stat {
		return
	}
	data, st, err := w.Read()
	if err != nil {
		w.fail(err)
		return
	}
	// The stat is kept even when the content does not apply, so the same
	// broken file is not parsed and reported again every tick.
	w.stat = st
	sum := sha256.Sum256(data)
	if sum == w.sum {
		w.lastErr = ""
		return
	}
	if err := w.Apply(data); err != nil {
		w.fail(err)
		return
	}
	w.sum, w.lastErr = sum, ""
}

func (w *Watcher) fail(err error) {
	if msg := err.Error(); msg != w.lastErr {
		w.lastErr = msg
		if w.Failed != nil {
			w.Failed(err)
		}
	}
}

// Reload reads and applies the file now, whatever its stat says, and
// returns why it did not apply: an operator who asks for a reload wants
// the answer, not a log line. Content that fails keeps what is in force.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, st, err := w.Read()
	if err != nil {
		return err
	}
	w.stat = st
	if err := w.Apply(data); err != nil {
		return err
	}
	w.sum, w.lastErr = sha256.Sum256(data), ""
	return nil
}
