package pebblestate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

var _ state.FileSnapshot = (*snapshot)(nil)

// Snapshot is the synchronous part of a checkpoint: it flushes the
// memtable, hard-links the database's files into a local checkpoint
// directory (db.Checkpoint: the MANIFEST and OPTIONS are copied, SSTs
// linked), and takes a pebble snapshot for the canonical form. The pause is
// the flush of at most one memtable plus a link per file; no key is read.
func (b *Backend) Snapshot(info state.SnapshotInfo) (state.Snapshot, error) {
	if b.closed {
		return nil, errClosed
	}
	if err := b.db.Flush(); err != nil {
		return nil, fmt.Errorf("snapshot %d: flush: %w", info.ID, err)
	}
	b.seq++
	dir := filepath.Join(b.cfg.WorkDir, "chk", strconv.Itoa(b.seq))
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", info.ID, err)
	}
	if err := b.db.Checkpoint(dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("snapshot %d: checkpoint the database into %s: %w", info.ID, dir, err)
	}
	s := &snapshot{b: b, info: info, kgs: b.cfg.KeyGroups, states: b.states(), dir: dir, snap: b.db.NewSnapshot()}
	n := 0
	for _, l := range b.live {
		if !l.releasedFlag.Load() {
			b.live[n] = l
			n++
		}
	}
	clear(b.live[n:])
	b.live = append(b.live[:n], s)
	return s, nil
}

// snapshot is a backend's state at one checkpoint: a pebble snapshot (for
// Write) and a local checkpoint directory (for WriteFiles).
type snapshot struct {
	b      *Backend
	info   state.SnapshotInfo
	kgs    state.KeyGroupRange
	states []state.StateInfo

	mu       sync.Mutex // Write, WriteFiles, Release and the backend's Close
	snap     *pebble.Snapshot
	dir      string
	written  bool
	released bool
	// releasedFlag is released for the task goroutine, which must not wait
	// for mu while a Write holds it.
	releasedFlag atomic.Bool
}

// begin checks that the snapshot may be written, once; s.mu is held.
func (s *snapshot) begin() error {
	if s.released {
		return fmt.Errorf("snapshot %d: released", s.info.ID)
	}
	if s.written {
		return fmt.Errorf("snapshot %d: already written", s.info.ID)
	}
	s.written = true
	return nil
}

// Write writes the snapshot as a canonical key-group stream (savepoints,
// and whoever wants the canonical form), iterating the pebble snapshot in
// key order: key group by key group, as the stream wants them.
func (s *snapshot) Write(ctx context.Context, w io.Writer) (*state.StreamHandle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return nil, err
	}
	h, err := s.write(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", s.info.ID, err)
	}
	return h, nil
}

func (s *snapshot) write(ctx context.Context, w io.Writer) (*state.StreamHandle, error) {
	sw, err := state.NewStreamWriter(w, s.kgs, s.states)
	if err != nil {
		return nil, err
	}
	it, err := s.snap.NewIter(&pebble.IterOptions{LowerBound: groupKey(s.kgs.First), UpperBound: groupKey(s.kgs.Last + 1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	cur, n := -1, 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		p, err := parseKey(it.Key())
		if err != nil {
			return nil, err
		}
		if p.kg != cur {
			if err := sw.BeginKeyGroup(p.kg); err != nil {
				return nil, err
			}
			cur = p.kg
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		var uk []byte
		if len(p.userKey) > 0 {
			uk = p.userKey
		}
		if err := sw.Entry(p.id, p.key, p.ns, uk, v); err != nil {
			return nil, err
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return sw.Finish()
}

// WriteFiles copies the local checkpoint's files into dst ("pebble/1").
// Full (state.backend.incremental false): every file under
// "<prefix>-pebble/". Incremental: the SSTs (and blob files) the last
// completed checkpoint of this backend uploaded are referenced with their
// FileRef; the others go to dst's shared files as
// "<backend uid>-<checkpoint id>-<file>", and the rest (MANIFEST, OPTIONS,
// markers) under "<prefix>-pebble/". The files of this checkpoint become
// the base when NotifyCheckpointComplete names it.
func (s *snapshot) WriteFiles(ctx context.Context, dst checkpoint.SnapshotFiles, prefix string) (*checkpoint.KeyedHandle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !dst.SharedAllowed() {
		return nil, fmt.Errorf("snapshot %d: a savepoint is written in the canonical key-group stream (Write), not as pebble files", s.info.ID)
	}
	if err := checkpoint.CheckRelPath(prefix); err != nil || strings.Contains(prefix, "/") {
		return nil, fmt.Errorf("snapshot %d: file prefix %q is not a plain name", s.info.ID, prefix)
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	h, err := s.writeFiles(ctx, dst, prefix)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", s.info.ID, err)
	}
	return h, nil
}

// shareable reports whether a database file is immutable and named for
// good (its file number is never reused), so an upload of it can serve
// several checkpoints.
func shareable(name string) bool {
	return strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob")
}

func (s *snapshot) writeFiles(ctx context.Context, dst checkpoint.SnapshotFiles, prefix string) (*checkpoint.KeyedHandle, error) {
	b := s.b
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var base map[string]checkpoint.FileRef
	if b.cfg.Incremental {
		b.mu.Lock()
		base = b.base
		b.mu.Unlock()
	}
	h := &checkpoint.KeyedHandle{
		Format:    checkpoint.FormatPebble,
		KeyGroups: keygroup.Range{First: s.kgs.First, Last: s.kgs.Last},
		States:    state.HandleStates(s.states),
	}
	uploaded := map[string]checkpoint.FileRef{}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := e.Name()
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("local checkpoint %s: %s is not a regular file", s.dir, name)
		}
		var ref checkpoint.FileRef
		switch {
		case b.cfg.Incremental && shareable(name):
			if r, ok := base[name]; ok {
				ref = r
				break
			}
			w, err := dst.CreateShared(sharedName(b.uid, s.info.ID, name))
			if err != nil {
				return nil, err
			}
			if ref, err = upload(ctx, w, filepath.Join(s.dir, name)); err != nil {
				return nil, err
			}
		default:
			w, err := dst.Create(prefix + "-" + checkpoint.KindPebble + "/" + name)
			if err != nil {
				return nil, err
			}
			if ref, err = upload(ctx, w, filepath.Join(s.dir, name)); err != nil {
				return nil, err
			}
		}
		if b.cfg.Incremental && shareable(name) {
			uploaded[name] = ref
		}
		h.Files = append(h.Files, ref)
	}
	if b.cfg.Incremental {
		b.mu.Lock()
		b.pending[s.info.ID] = uploaded
		// Checkpoints that never complete (declined, timed out) would
		// otherwise pile up; only the newest can still become the base.
		for len(b.pending) > maxPending {
			delete(b.pending, minKey(b.pending))
		}
		b.mu.Unlock()
	}
	return h, nil
}

// sharedName is the name of a shared file: unique per backend instance
// (uid) and per checkpoint that uploads it, so that a file uploaded again
// after a checkpoint that never completed gets a new name.
func sharedName(uid string, id int64, file string) string {
	return uid + "-" + strconv.FormatInt(id, 10) + "-" + file
}

func upload(ctx context.Context, w checkpoint.FileWriter, path string) (checkpoint.FileRef, error) {
	f, err := os.Open(path)
	if err != nil {
		w.Abort()
		return checkpoint.FileRef{}, err
	}
	defer f.Close()
	if _, err := copyCtx(ctx, w, f); err != nil {
		w.Abort()
		return checkpoint.FileRef{}, fmt.Errorf("upload %s: %w", filepath.Base(path), err)
	}
	ref, err := w.Commit()
	if err != nil {
		return checkpoint.FileRef{}, fmt.Errorf("upload %s: %w", filepath.Base(path), err)
	}
	return ref, nil
}

// copyCtx is io.Copy that stops between chunks once ctx is done.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := r.Read(buf)
		if k > 0 {
			m, werr := w.Write(buf[:k])
			n += int64(m)
			if werr != nil {
				return n, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Release frees the pebble snapshot and the local checkpoint directory.
func (s *snapshot) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	s.releasedFlag.Store(true)
	if s.snap != nil {
		_ = s.snap.Close()
		s.snap = nil
	}
	_ = os.RemoveAll(s.dir)
}

// maxPending bounds the checkpoints written and not yet completed whose
// files a backend remembers.
const maxPending = 16

func minKey(m map[int64]map[string]checkpoint.FileRef) int64 {
	first := true
	var k int64
	for id := range m {
		if first || id < k {
			k, first = id, false
		}
	}
	return k
}
