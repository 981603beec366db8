package pebblestate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/state"
)

// restore fills the new backend from rs and opens its database. One
// "pebble/1" snapshot of exactly this backend's key groups is the database
// itself: its files are downloaded and opened. Anything else goes into a
// new database, the key groups of this backend only: "pebble/1" snapshots
// are downloaded into a temporary directory and read there, key-group
// streams are read as hashmap reads them.
func (b *Backend) restore(ctx context.Context, rs []state.Restore) error {
	if len(rs) == 1 && rs[0].Native != nil && rs[0].Native.Format == checkpoint.FormatPebble &&
		rs[0].KeyGroups() == b.cfg.KeyGroups {
		return b.restoreSame(ctx, rs[0])
	}
	if err := b.open(); err != nil {
		return err
	}
	// owner[i] is 1 + the index of the snapshot that delivered key group
	// First+i: a key group comes from one snapshot only.
	owner := make([]int, b.cfg.KeyGroups.Len())
	for i, r := range rs {
		var err error
		switch {
		case r.Native != nil:
			err = b.copyNative(ctx, i, r, owner)
		case r.Handle != nil && r.Handle.Format == state.StreamFormat:
			err = b.copyStream(ctx, i, r, owner)
		case r.Handle != nil:
			err = fmt.Errorf("keyed state %s: format %q is not one this sluice reads (want %s or %s)", r.Name, r.Handle.Format, state.StreamFormat, checkpoint.FormatPebble)
		default:
			err = fmt.Errorf("keyed state %s: no handle", r.Name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// restoreSame downloads the files of r into the database directory and
// opens it. Within the same job, an incremental backend takes r's shared
// files as its base: its next checkpoint references them rather than
// uploading them again.
func (b *Backend) restoreSame(ctx context.Context, r state.Restore) error {
	names, err := b.download(ctx, r, b.dbDir)
	if err != nil {
		return err
	}
	o := b.options(false)
	o.ErrorIfNotExists = true // files without a database are not an empty state
	db, err := pebble.Open(b.dbDir, o)
	if err != nil {
		return fmt.Errorf("keyed state %s: open the restored database: %w", r.Name, err)
	}
	b.db = db
	states, err := readStates(db)
	if err != nil {
		return fmt.Errorf("keyed state %s: %w", r.Name, err)
	}
	if err := checkHandleStates(r, states); err != nil {
		return err
	}
	for _, st := range states {
		if int(st.ID) != len(b.tables)+1 {
			return fmt.Errorf("keyed state %s: state ids of the database are not 1..%d", r.Name, len(states))
		}
		t := &table{info: st}
		b.tables = append(b.tables, t)
		b.byName[st.Name] = t
	}
	if r.SameJob && b.cfg.Incremental {
		base := map[string]checkpoint.FileRef{}
		for i, ref := range r.Native.Files {
			if strings.HasPrefix(ref.Path, checkpoint.SharedDir+"/") {
				base[names[i]] = ref
			}
		}
		b.base = base
	}
	return nil
}

// checkHandleStates refuses a database whose states are not those its
// handle in _metadata lists.
func checkHandleStates(r state.Restore, states []state.StateInfo) error {
	hs := r.Native.States
	ok := len(hs) == len(states)
	for i := 0; ok && i < len(hs); i++ {
		ok = hs[i].Name == states[i].Name && hs[i].Kind == states[i].Kind.String()
	}
	if !ok {
		return fmt.Errorf("keyed state %s: the database holds states %v but its handle lists %v", r.Name, state.HandleStates(states), hs)
	}
	return nil
}

func readStates(db pebbleReader) ([]state.StateInfo, error) {
	v, closer, err := db.Get(statesKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the state registry: %w", err)
	}
	defer closer.Close()
	return decodeStates(v)
}

type pebbleReader interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// localName is the name in the database directory of a file of a
// "pebble/1" handle: the file's name, without the "<uid>-<checkpoint>-"
// of a shared file. Names are checked: they come from _metadata.
func localName(ref checkpoint.FileRef) (string, error) {
	if err := checkpoint.CheckRelPath(ref.Path); err != nil {
		return "", err
	}
	name := path.Base(ref.Path)
	if strings.HasPrefix(ref.Path, checkpoint.SharedDir+"/") {
		parts := strings.SplitN(name, "-", 3)
		if len(parts) != 3 || !shareable(parts[2]) {
			return "", fmt.Errorf("shared file %s: want <backend uid>-<checkpoint id>-<file>.sst", ref.Path)
		}
		name = parts[2]
	}
	for _, c := range name {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '_') {
			return "", fmt.Errorf("file %s: %q is not a pebble file name", ref.Path, name)
		}
	}
	if name == "" || name[0] == '.' {
		return "", fmt.Errorf("file %s: %q is not a pebble file name", ref.Path, name)
	}
	return name, nil
}

// download copies every file of r, verified by r.Files, into dir (created
// 0700) and returns their local names, in the handle's order.
func (b *Backend) download(ctx context.Context, r state.Restore, dir string) ([]string, error) {
	if r.Files == nil {
		return nil, fmt.Errorf("keyed state %s: nothing to open its files with", r.Name)
	}
	if len(r.Native.Files) == 0 {
		return nil, fmt.Errorf("keyed state %s: the handle lists no files", r.Name)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	names := make([]string, len(r.Native.Files))
	seen := map[string]bool{}
	for i, ref := range r.Native.Files {
		name, err := localName(ref)
		if err != nil {
			return nil, fmt.Errorf("keyed state %s: %w", r.Name, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("keyed state %s: two files are %s", r.Name, name)
		}
		seen[name] = true
		names[i] = name
		rc, err := r.Files.Open(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("open keyed state file %s: %w", ref.Path, err)
		}
		_, err = copyFile(filepath.Join(dir, name), readerCtx{ctx, rc})
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("download keyed state file %s: %w", ref.Path, err)
		}
	}
	return names, nil
}

// readerCtx stops a long download once its context is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// tableFor is the table a restored state named name of kind goes into,
// registered (as restored) if new.
func (b *Backend) tableFor(file, name string, kind state.Kind) (*table, error) {
	t := b.byName[name]
	if t == nil {
		return b.newTable(name, kind)
	}
	if t.info.Kind != kind {
		return nil, fmt.Errorf("keyed state file %s: state %q is %s state there but %s state in another file of the snapshot",
			file, name, kind, t.info.Kind)
	}
	return t, nil
}

// copier writes restored entries into the new database in batches,
// checking each against the key groups it may hold.
type copier struct {
	b     *Backend
	idx   int // 1 + the snapshot's index
	name  string
	owner []int
	batch *pebble.Batch
	kbuf  []byte
	n     int
}

const batchBytes = 4 << 20

func (c *copier) put(ctx context.Context, kg int, key []byte, t *table, dbKey, value []byte) error {
	if c.n++; c.n&4095 == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	b := c.b
	if b.cfg.KeyGroupOf != nil {
		if want := b.cfg.KeyGroupOf(key); want != kg {
			return fmt.Errorf("a key of key group %d is filed under key group %d: the snapshot belongs to another job or pipeline.max-parallelism", want, kg)
		}
	}
	i := kg - b.cfg.KeyGroups.First
	switch o := c.owner[i]; {
	case o == 0:
		c.owner[i] = c.idx
	case o != c.idx:
		return fmt.Errorf("duplicate entry for a key: key group %d is in two files of the snapshot", kg)
	}
	if t.info.Kind == state.KindList {
		if err := state.CheckElements(value); err != nil {
			return err
		}
	}
	if err := c.batch.Set(dbKey, value, nil); err != nil {
		return err
	}
	if c.batch.Len() >= batchBytes {
		return c.flush()
	}
	return nil
}

func (c *copier) flush() error {
	if c.batch.Empty() {
		return nil
	}
	if err := c.batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("write restored state: %w", err)
	}
	c.batch.Reset()
	return nil
}

// copyStream reads the key groups of a key-group stream in this backend's
// range into the database.
func (b *Backend) copyStream(ctx context.Context, i int, r state.Restore, owner []int) error {
	if r.Open == nil {
		return fmt.Errorf("keyed state file %s: nothing to open it with", r.Name)
	}
	rc, err := r.Open(ctx)
	if err != nil {
		return fmt.Errorf("open keyed state file %s: %w", r.Name, err)
	}
	defer rc.Close()
	sr, err := state.NewStreamReader(rc, r.Name, r.Handle)
	if err != nil {
		return err
	}
	byFileID := map[state.ID]*table{}
	for _, st := range sr.States() {
		t, err := b.tableFor(r.Name, st.Name, st.Kind)
		if err != nil {
			return err
		}
		byFileID[st.ID] = t
	}
	c := &copier{b: b, idx: i + 1, name: r.Name, owner: owner, batch: b.db.NewBatch()}
	defer c.batch.Close()
	// A stream holds each (state, key, namespace, user key) once, and a key
	// group's entries are together: duplicates are looked for per key group.
	seen := map[string]struct{}{}
	cur := -1
	err = sr.ReadKeyGroups(b.cfg.KeyGroups, func(e *state.Entry) error {
		if e.KeyGroup != cur {
			clear(seen)
			cur = e.KeyGroup
		}
		t := byFileID[e.State.ID]
		c.kbuf = appendPrefix(c.kbuf[:0], e.KeyGroup, t.info.ID, e.Key, e.Namespace)
		c.kbuf = append(c.kbuf, e.UserKey...)
		if _, dup := seen[string(c.kbuf)]; dup {
			return fmt.Errorf("duplicate entry for a key")
		}
		seen[string(c.kbuf)] = struct{}{}
		return c.put(ctx, e.KeyGroup, e.Key, t, c.kbuf, e.Value)
	})
	if err != nil {
		return err
	}
	return c.flush()
}

// copyNative downloads a "pebble/1" snapshot into a temporary directory,
// opens it read-only and copies the key groups it shares with this
// backend, mapping its state ids to this backend's by name.
func (b *Backend) copyNative(ctx context.Context, i int, r state.Restore, owner []int) error {
	if r.Native.Format != checkpoint.FormatPebble {
		return fmt.Errorf("keyed state %s is in format %s, which the pebble backend does not read: restore from a savepoint (key-group stream)", r.Name, r.Native.Format)
	}
	// The handle's states are registered even when none of its key groups
	// is wanted, as a key-group stream's header registers them.
	for _, hs := range r.Native.States {
		kind, err := state.ParseKind(hs.Kind)
		if err != nil {
			return fmt.Errorf("keyed state %s: state %q: %w", r.Name, hs.Name, err)
		}
		if _, err := b.tableFor(r.Name, hs.Name, kind); err != nil {
			return err
		}
	}
	rng, ok := r.KeyGroups().Intersect(b.cfg.KeyGroups)
	if !ok {
		return nil
	}
	tmp := filepath.Join(b.cfg.WorkDir, "restore", strconv.Itoa(i))
	defer os.RemoveAll(tmp)
	if _, err := b.download(ctx, r, tmp); err != nil {
		return err
	}
	src, err := pebble.Open(tmp, b.options(true))
	if err != nil {
		return fmt.Errorf("keyed state %s: open the snapshot's database: %w", r.Name, err)
	}
	defer src.Close()
	states, err := readStates(src)
	if err != nil {
		return fmt.Errorf("keyed state %s: %w", r.Name, err)
	}
	if err := checkHandleStates(r, states); err != nil {
		return err
	}
	byFileID := map[state.ID]*table{}
	for _, st := range states {
		t, err := b.tableFor(r.Name, st.Name, st.Kind)
		if err != nil {
			return err
		}
		byFileID[st.ID] = t
	}
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: groupKey(rng.First), UpperBound: groupKey(rng.Last + 1)})
	if err != nil {
		return fmt.Errorf("keyed state %s: %w", r.Name, err)
	}
	defer it.Close()
	c := &copier{b: b, idx: i + 1, name: r.Name, owner: owner, batch: b.db.NewBatch()}
	defer c.batch.Close()
	for ok := it.First(); ok; ok = it.Next() {
		p, err := parseKey(it.Key())
		if err != nil {
			return fmt.Errorf("keyed state %s: %w", r.Name, err)
		}
		t := byFileID[p.id]
		if t == nil {
			return fmt.Errorf("keyed state %s: key group %d: entry of undeclared state id %d", r.Name, p.kg, p.id)
		}
		if len(p.userKey) > 0 && t.info.Kind != state.KindMap {
			return fmt.Errorf("keyed state %s: key group %d: state %q (%s) has an entry with a user key", r.Name, p.kg, t.info.Name, t.info.Kind)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("keyed state %s: %w", r.Name, err)
		}
		c.kbuf = withID(c.kbuf, it.Key(), t.info.ID)
		if err := c.put(ctx, p.kg, p.key, t, c.kbuf, v); err != nil {
			return fmt.Errorf("keyed state %s: key group %d, state %q: %w", r.Name, p.kg, t.info.Name, err)
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("keyed state %s: %w", r.Name, err)
	}
	return c.flush()
}
