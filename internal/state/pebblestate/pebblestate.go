// Package pebblestate is the on-disk keyed state backend
// (state.backend.type: pebble, and its alias rocksdb; docs/architecture.md,
// "Engine", §5.3): one pebble database per operator subtask in the
// subtask's private work directory.
//
// A snapshot's synchronous part flushes the memtable and hard-links the
// database's files into a local checkpoint directory (and holds a pebble
// snapshot for the canonical form). Its asynchronous part either copies
// those files ("pebble/1", Snapshot.WriteFiles: full, or incremental with
// SSTs shared between checkpoints) or writes the canonical key-group
// stream (Snapshot.Write: savepoints).
package pebblestate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/state"
)

// Name is the value of state.backend.type that selects this backend.
const Name = "pebble"

// Factory creates pebble backends.
type Factory struct{}

var _ state.Factory = Factory{}

// Name is "pebble".
func (Factory) Name() string { return Name }

// New creates the backend of one operator subtask in cfg.WorkDir (created
// 0700, and removed by Close) and restores restore into it: a single
// "pebble/1" snapshot of exactly cfg.KeyGroups is downloaded and opened as
// it is; anything else (rescaling, key-group streams) is copied into a new
// database, key group by key group.
func (Factory) New(ctx context.Context, cfg state.Config, restore []state.Restore) (state.Backend, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.WorkDir == "" {
		return nil, fmt.Errorf("state backend %s of %s subtask %d: no work directory: the TaskManager sets one under its io.tmp.dirs", Name, cfg.Operator, cfg.Subtask)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := makeWorkDir(cfg.WorkDir); err != nil {
		return nil, fmt.Errorf("state backend %s of %s subtask %d: %w", Name, cfg.Operator, cfg.Subtask, err)
	}
	uid := make([]byte, 8)
	if _, err := rand.Read(uid); err != nil {
		_ = os.RemoveAll(cfg.WorkDir)
		return nil, err
	}
	b := &Backend{
		cfg:     cfg,
		uid:     hex.EncodeToString(uid),
		dbDir:   filepath.Join(cfg.WorkDir, "db"),
		byName:  map[string]*table{},
		pending: map[int64]map[string]checkpoint.FileRef{},
	}
	if err := b.restore(ctx, restore); err != nil {
		b.abandon()
		return nil, fmt.Errorf("restore keyed state of %s subtask %d: %w", cfg.Operator, cfg.Subtask, err)
	}
	return b, nil
}

// makeWorkDir creates dir 0700 (and missing parents 0700). An existing
// directory is accepted only if it is a real, empty directory: a task never
// shares, nor reopens, another's database.
func makeWorkDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		return nil
	}
	if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create work directory: %w", err)
	}
	fi, lerr := os.Lstat(dir)
	if lerr != nil || !fi.IsDir() {
		return fmt.Errorf("work directory %s exists and is not a directory", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("work directory %s is not empty: another task uses it, or an earlier one left it behind", dir)
	}
	return os.Chmod(dir, 0o700)
}

// options are the database's options. The WAL is off: durability comes from
// checkpoints, and a failed task never reopens its database. Lists use
// pebble's concatenating merger: an element is appended as its encoding
// (state.AppendElement), and encodings concatenate into a list.
//
// Every SST has bloom filters (a point read of a value skips the files
// that do not hold its key), and the block cache holds blockCacheSize: a
// running aggregate reads random keys, and pebble's 8 MiB default made
// each read a file read and a decompression (BenchmarkValueState).
func (b *Backend) options(readOnly bool) *pebble.Options {
	o := &pebble.Options{
		DisableWAL:       true,
		ReadOnly:         readOnly,
		Logger:           pebbleLogger{b.cfg.Logger},
		ErrorIfNotExists: readOnly,
		CacheSize:        blockCacheSize,
	}
	// A small base level: a flush's compaction rewrites the small upper levels, not the
	// whole bottom one, so an incremental checkpoint uploads about what changed.
	o.LBaseMaxBytes = 4 << 20
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return o
}

// blockCacheSize is each database's block cache.
const blockCacheSize = 64 << 20

// pebbleLogger sends pebble's messages to the task's logger.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("pebble: " + msg)
	panic("pebble: " + msg)
}

// Backend is the pebble backend of one operator subtask.
type Backend struct {
	cfg   state.Config
	uid   string // names this backend's shared files: file numbers restart in every database
	dbDir string
	db    *pebble.DB

	tables []*table // index: ID-1
	byName map[string]*table

	key     []byte
	kg      int
	hasKey  bool
	inRange bool
	kbuf    []byte // the composite key of the last access
	vbuf    []byte // the value Get returned
	keysBuf []byte
	seq     int // local checkpoint directories made
	live    []*snapshot
	closed  bool

	// mu guards what WriteFiles (off the task goroutine) and
	// NotifyCheckpointComplete share: the files of the last completed
	// checkpoint, and those of checkpoints written and not yet completed,
	// by local file name.
	mu      sync.Mutex
	base    map[string]checkpoint.FileRef
	pending map[int64]map[string]checkpoint.FileRef
}

var _ state.Backend = (*Backend)(nil)

type table struct {
	info       state.StateInfo
	registered bool
}

func (b *Backend) open() error {
	db, err := pebble.Open(b.dbDir, b.options(false))
	if err != nil {
		return fmt.Errorf("open pebble database in %s: %w", b.dbDir, err)
	}
	b.db = db
	return nil
}

// abandon closes what New opened and removes the work directory.
func (b *Backend) abandon() {
	if b.db != nil {
		_ = b.db.Close()
		b.db = nil
	}
	_ = os.RemoveAll(b.cfg.WorkDir)
}

func (b *Backend) states() []state.StateInfo {
	out := make([]state.StateInfo, len(b.tables))
	for i, t := range b.tables {
		out[i] = t.info
	}
	return out
}

func (b *Backend) newTable(name string, kind state.Kind) (*table, error) {
	if len(b.tables) >= state.MaxStates {
		return nil, fmt.Errorf("operator %s has more than %d states", b.cfg.Operator, state.MaxStates)
	}
	t := &table{info: state.StateInfo{ID: state.ID(len(b.tables) + 1), Name: name, Kind: kind}}
	b.tables = append(b.tables, t)
	b.byName[name] = t
	// The registry is in the database, so that it is in every checkpoint.
	if err := b.db.Set(statesKey, encodeStates(b.states()), pebble.NoSync); err != nil {
		b.tables = b.tables[:len(b.tables)-1]
		delete(b.byName, name)
		return nil, fmt.Errorf("operator %s: register state %q: %w", b.cfg.Operator, name, err)
	}
	return t, nil
}

// Register declares a state; see state.Backend.
func (b *Backend) Register(name string, kind state.Kind) (state.ID, error) {
	if b.closed {
		return 0, errClosed
	}
	t, ok := b.byName[name]
	var prev *state.StateInfo
	if ok {
		prev = &t.info
	}
	if err := state.CheckRegister(b.cfg.Operator, name, kind, prev, ok && !t.registered); err != nil {
		return 0, err
	}
	if ok {
		t.registered = true
		return t.info.ID, nil
	}
	t, err := b.newTable(name, kind)
	if err != nil {
		return 0, err
	}
	t.registered = true
	return t.info.ID, nil
}

// SetCurrentKey scopes the following accesses to key in keyGroup.
func (b *Backend) SetCurrentKey(key []byte, keyGroup int) {
	b.key = append(b.key[:0], key...)
	b.kg = keyGroup
	b.hasKey = true
	b.inRange = b.cfg.KeyGroups.Contains(keyGroup)
}

// CurrentKey is the key set last.
func (b *Backend) CurrentKey() []byte { return b.key }

var (
	errClosed = errors.New("state backend closed")
	errNoKey  = errors.New("no current key (SetCurrentKey)")
)

// access checks an access to state id and builds in kbuf the key of the
// current key in ns: a value-like state's entry, a map's prefix.
func (b *Backend) access(id state.ID, ns []byte) (*table, error) {
	if b.closed {
		return nil, errClosed
	}
	if id == 0 || int(id) > len(b.tables) {
		return nil, fmt.Errorf("unknown state id %d", id)
	}
	t := b.tables[id-1]
	if !b.inRange {
		if !b.hasKey {
			return nil, errNoKey
		}
		return nil, fmt.Errorf("key group %d of the current key is outside this subtask's key groups %s", b.kg, b.cfg.KeyGroups)
	}
	if len(ns) > state.MaxKeyLen || len(b.key) > state.MaxKeyLen {
		return nil, fmt.Errorf("state %q: key or namespace longer than %d bytes", t.info.Name, state.MaxKeyLen)
	}
	b.kbuf = appendPrefix(b.kbuf[:0], b.kg, id, b.key, ns)
	return t, nil
}

func (t *table) checkUserKey(userKey []byte) error {
	if t.info.Kind == state.KindMap {
		if len(userKey) > state.MaxKeyLen {
			return fmt.Errorf("state %q: user key longer than %d bytes", t.info.Name, state.MaxKeyLen)
		}
		return nil
	}
	if len(userKey) > 0 {
		return fmt.Errorf("state %q is %s state: it has no user keys", t.info.Name, t.info.Kind)
	}
	return nil
}

// get reads kbuf into vbuf.
func (b *Backend) get() ([]byte, bool, error) {
	v, closer, err := b.db.Get(b.kbuf)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state read: %w", err)
	}
	b.vbuf = append(b.vbuf[:0], v...)
	_ = closer.Close()
	return b.vbuf, true, nil
}

// Get reads a value of the current key; see state.Backend.
func (b *Backend) Get(id state.ID, ns, userKey []byte) ([]byte, bool, error) {
	t, err := b.access(id, ns)
	if err != nil {
		return nil, false, err
	}
	if err := t.checkUserKey(userKey); err != nil {
		return nil, false, err
	}
	b.kbuf = append(b.kbuf, userKey...)
	return b.get()
}

// Put sets a value of the current key; see state.Backend.
func (b *Backend) Put(id state.ID, ns, userKey, value []byte) error {
	t, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if err := t.checkUserKey(userKey); err != nil {
		return err
	}
	if len(value) > state.MaxValueLen {
		return fmt.Errorf("state %q: value of %d bytes is larger than %d", t.info.Name, len(value), state.MaxValueLen)
	}
	if t.info.Kind == state.KindList {
		if err := state.CheckElements(value); err != nil {
			return fmt.Errorf("state %q: %w", t.info.Name, err)
		}
	}
	b.kbuf = append(b.kbuf, userKey...)
	if err := b.db.Set(b.kbuf, value, pebble.NoSync); err != nil {
		return fmt.Errorf("state %q: write: %w", t.info.Name, err)
	}
	return nil
}

// Append adds an element to a list state as a merge operand, without
// reading the list; see state.Backend. Unlike hashmap, it cannot refuse a
// list growing past state.MaxValueLen (that would take a read per element):
// such a list fails the next snapshot, whose stream refuses the value.
func (b *Backend) Append(id state.ID, ns, element []byte) error {
	t, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if t.info.Kind != state.KindList {
		return fmt.Errorf("state %q is %s state: only list states take Append", t.info.Name, t.info.Kind)
	}
	if len(element)+10 > state.MaxValueLen {
		return fmt.Errorf("state %q: list of the current key would exceed %d bytes", t.info.Name, state.MaxValueLen)
	}
	if err := b.db.Merge(b.kbuf, state.AppendElement(nil, element), pebble.NoSync); err != nil {
		return fmt.Errorf("state %q: append: %w", t.info.Name, err)
	}
	return nil
}

// Delete removes a value of the current key; see state.Backend.
func (b *Backend) Delete(id state.ID, ns, userKey []byte) error {
	t, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if err := t.checkUserKey(userKey); err != nil {
		return err
	}
	b.kbuf = append(b.kbuf, userKey...)
	if err := b.db.Delete(b.kbuf, pebble.NoSync); err != nil {
		return fmt.Errorf("state %q: delete: %w", t.info.Name, err)
	}
	return nil
}

// Clear removes everything of the current key in ns; see state.Backend. A
// map's user keys are deleted one by one rather than with a range deletion,
// so that windows clearing their state do not pile up range tombstones.
func (b *Backend) Clear(id state.ID, ns []byte) error {
	t, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if t.info.Kind != state.KindMap {
		if err := b.db.Delete(b.kbuf, pebble.NoSync); err != nil {
			return fmt.Errorf("state %q: clear: %w", t.info.Name, err)
		}
		return nil
	}
	batch := b.db.NewBatch()
	defer batch.Close()
	err = b.scan(b.kbuf, func(k, _ []byte) error { return batch.Delete(k, nil) })
	if err == nil && !batch.Empty() {
		err = batch.Commit(pebble.NoSync)
	}
	if err != nil {
		return fmt.Errorf("state %q: clear: %w", t.info.Name, err)
	}
	return nil
}

// scan calls fn with every key starting with prefix and its value.
func (b *Backend) scan(prefix []byte, fn func(k, v []byte) error) error {
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}

// Iterate visits the current key's values in ns; see state.Backend. A
// map's user keys come in byte order.
func (b *Backend) Iterate(id state.ID, ns []byte, fn func(userKey, value []byte) error) error {
	t, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if t.info.Kind == state.KindMap {
		n := len(b.kbuf)
		prefix := append([]byte(nil), b.kbuf...)
		return b.scan(prefix, func(k, v []byte) error { return fn(k[n:], v) })
	}
	v, ok, err := b.get()
	if err != nil || !ok {
		return err
	}
	if t.info.Kind == state.KindList {
		return state.Elements(v, func(el []byte) error { return fn(nil, el) })
	}
	return fn(nil, v)
}

// Keys visits every key of the range having state id; see state.Backend.
func (b *Backend) Keys(id state.ID, fn func(key []byte, keyGroup int) error) error {
	if b.closed {
		return errClosed
	}
	if id == 0 || int(id) > len(b.tables) {
		return fmt.Errorf("unknown state id %d", id)
	}
	kgs := b.cfg.KeyGroups
	it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: groupKey(kgs.First), UpperBound: groupKey(kgs.Last + 1)})
	if err != nil {
		return err
	}
	defer it.Close()
	for kg := kgs.First; kg <= kgs.Last; kg++ {
		lo := stateKey(kg, id)
		hi := groupKey(kg + 1)
		if id < state.MaxStates {
			hi = stateKey(kg, id+1)
		}
		have := false
		for ok := it.SeekGE(lo); ok && bytes.Compare(it.Key(), hi) < 0; ok = it.Next() {
			p, err := parseKey(it.Key())
			if err != nil {
				return fmt.Errorf("state %q: %w", b.tables[id-1].info.Name, err)
			}
			// Entries of one key are adjacent (the key precedes the
			// namespace and user key), so visiting once is skipping repeats.
			if have && bytes.Equal(p.key, b.keysBuf) {
				continue
			}
			b.keysBuf = append(b.keysBuf[:0], p.key...)
			have = true
			if err := fn(b.keysBuf, kg); err != nil {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return err
		}
	}
	return nil
}

// NotifyCheckpointComplete makes the files of checkpoint id, when this
// backend wrote them, the base of its next incremental checkpoint.
func (b *Backend) NotifyCheckpointComplete(id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	files, ok := b.pending[id]
	if !ok {
		return
	}
	b.base = files
	for p := range b.pending {
		if p <= id {
			delete(b.pending, p)
		}
	}
}

// Close releases the snapshots still held (waiting for a Write in progress:
// cancel its context first), closes the database and removes the work
// directory.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	for _, s := range b.live {
		s.Release()
	}
	b.live = nil
	var err error
	if b.db != nil {
		err = b.db.Close()
		b.db = nil
	}
	if rerr := os.RemoveAll(b.cfg.WorkDir); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("close state backend of %s subtask %d: %w", b.cfg.Operator, b.cfg.Subtask, err)
	}
	return nil
}

// copyFile copies src into a new file dst (0600, exclusive).
func copyFile(dst string, src io.Reader) (int64, error) {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}
