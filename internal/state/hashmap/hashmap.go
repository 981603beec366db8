// Package hashmap is the in-memory keyed state backend, sluice's default
// (state.backend.type: hashmap; docs/architecture.md, "Engine", §5.2).
//
// Per state and key group it keeps a Go map from the encoded (key,
// namespace) to an entry; a map state's entry holds its own map from user
// key to value. Everything is copied on write, at two levels, so that a
// snapshot being written sees the state as it was at Snapshot while the
// task goes on:
//
//   - a snapshot takes the per-key-group maps as they are and starts a new
//     epoch; the first write to a key group after it clones that key
//     group's map (maps.Clone: the table, not the values). The task's pause
//     is therefore proportional to the number of states and key groups,
//     not to the number of keys, and a key group the task does not write
//     before the next snapshot is never copied, nor one first written after
//     every snapshot was released;
//   - an entry from an earlier epoch is replaced, not written, on its first
//     change; entries written since the last snapshot are updated in place.
package hashmap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"github.com/sluice-dev/sluice/internal/state"
)

// Factory creates hashmap backends.
type Factory struct{}

var _ state.Factory = Factory{}

// Name is "hashmap", the value of state.backend.type that selects it.
func (Factory) Name() string { return "hashmap" }

// New creates an empty backend for cfg.KeyGroups and restores into it the
// key groups of restore that lie in that range.
func (Factory) New(ctx context.Context, cfg state.Config, restore []state.Restore) (state.Backend, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Incremental {
		cfg.Logger.Info("state.backend.incremental: the hashmap backend ignores it: its checkpoints are always full",
			"operator", cfg.Operator, "subtask", cfg.Subtask)
	}
	b := &Backend{cfg: cfg, byName: map[string]*table{}, kgIdx: -1, epoch: 1}
	for _, r := range restore {
		if err := b.restore(ctx, r); err != nil {
			return nil, fmt.Errorf("restore keyed state of %s subtask %d: %w", cfg.Operator, cfg.Subtask, err)
		}
	}
	return b, nil
}

// Backend is the hashmap backend of one operator subtask.
type Backend struct {
	cfg    state.Config
	tables []*table // index: ID-1
	byName map[string]*table

	key     []byte
	prefix  []byte // uvarint len(key) | key: the start of every composite key
	kg      int
	kgIdx   int // kg - KeyGroups.First, -1 when outside the range
	scratch []byte
	keysBuf []byte

	// epoch counts snapshots. An entry written in the current epoch is not
	// in any snapshot and is updated in place; an older one is replaced.
	epoch  uint64
	live   []*snapshot // snapshots taken and not known to be released
	closed bool

	// last is the entry the last Get found, when a Put may write it in place: it is of
	// the current epoch, in a key group map of the current epoch, so a snapshot holds
	// neither. A Put of the same state and namespace right after it (the read, modify,
	// write of every Value and Reducing state) then skips the second lookup.
	// SetCurrentKey, Delete, Clear and Close forget it, being the calls that change
	// the current key or take an entry out of its map.
	last struct {
		id state.ID
		ns []byte
		e  *valueEntry
	}
}

var (
	_ state.Backend  = (*Backend)(nil)
	_ state.Snapshot = (*snapshot)(nil)
)

type table struct {
	info       state.StateInfo
	registered bool
	namespaced bool                     // some entry has a non-empty namespace (Keys deduplicates)
	vals       []map[string]*valueEntry // per key group: every kind but maps
	maps       []map[string]*mapEntry   // per key group: maps
	// owned[i] is the epoch in which key group i's map was created or
	// cloned: before the current epoch, a snapshot may hold it.
	owned []uint64
}

// valsToWrite returns key group i's map of t, cloned first if a snapshot
// may hold it.
func (b *Backend) valsToWrite(t *table, i int) map[string]*valueEntry {
	m := t.vals[i]
	switch {
	case m == nil:
		m = map[string]*valueEntry{}
	case t.owned[i] == b.epoch:
		return m
	case b.snapshotsLive():
		m = maps.Clone(m)
	}
	t.vals[i], t.owned[i] = m, b.epoch
	return m
}

// mapsToWrite is valsToWrite for map states.
func (b *Backend) mapsToWrite(t *table, i int) map[string]*mapEntry {
	m := t.maps[i]
	switch {
	case m == nil:
		m = map[string]*mapEntry{}
	case t.owned[i] == b.epoch:
		return m
	case b.snapshotsLive():
		m = maps.Clone(m)
	}
	t.maps[i], t.owned[i] = m, b.epoch
	return m
}

// snapshotsLive reports whether a snapshot not yet released may still read
// the maps: once every snapshot is released, a key group's map is the
// task's alone again and is written without a copy.
func (b *Backend) snapshotsLive() bool {
	n := 0
	for _, s := range b.live {
		if !s.released.Load() {
			b.live[n] = s
			n++
		}
	}
	clear(b.live[n:])
	b.live = b.live[:n]
	return n > 0
}

type valueEntry struct {
	key   string // the map key, kept to replace the entry without allocating it again
	v     []byte
	epoch uint64
}

type mapEntry struct {
	key   string
	m     map[string][]byte // values are never written in place
	epoch uint64
}

func (b *Backend) newTable(name string, kind state.Kind) (*table, error) {
	if len(b.tables) >= state.MaxStates {
		return nil, fmt.Errorf("operator %s has more than %d states", b.cfg.Operator, state.MaxStates)
	}
	t := &table{info: state.StateInfo{ID: state.ID(len(b.tables) + 1), Name: name, Kind: kind}}
	n := b.cfg.KeyGroups.Len()
	t.owned = make([]uint64, n)
	if kind == state.KindMap {
		t.maps = make([]map[string]*mapEntry, n)
	} else {
		t.vals = make([]map[string]*valueEntry, n)
	}
	b.tables = append(b.tables, t)
	b.byName[name] = t
	return t, nil
}

// Register declares a state; see state.Backend.
func (b *Backend) Register(name string, kind state.Kind) (state.ID, error) {
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
	b.last.e = nil
	b.key = append(b.key[:0], key...)
	b.prefix = binary.AppendUvarint(b.prefix[:0], uint64(len(key)))
	b.prefix = append(b.prefix, key...)
	b.kg = keyGroup
	b.kgIdx = -1
	if b.cfg.KeyGroups.Contains(keyGroup) {
		b.kgIdx = keyGroup - b.cfg.KeyGroups.First
	}
}

// CurrentKey is the key set last.
func (b *Backend) CurrentKey() []byte { return b.key }

var errNoKey = errors.New("no current key (SetCurrentKey)")

// access checks an access to state id and returns its table and the
// composite key of the current key in ns (in scratch).
func (b *Backend) access(id state.ID, ns []byte) (*table, []byte, error) {
	if b.closed {
		return nil, nil, errors.New("state backend closed")
	}
	if id == 0 || int(id) > len(b.tables) {
		return nil, nil, fmt.Errorf("unknown state id %d", id)
	}
	t := b.tables[id-1]
	if b.kgIdx < 0 {
		if b.prefix == nil {
			return nil, nil, errNoKey
		}
		return nil, nil, fmt.Errorf("key group %d of the current key is outside this subtask's key groups %s", b.kg, b.cfg.KeyGroups)
	}
	if len(ns) > state.MaxKeyLen || len(b.key) > state.MaxKeyLen {
		return nil, nil, fmt.Errorf("state %q: key or namespace longer than %d bytes", t.info.Name, state.MaxKeyLen)
	}
	b.scratch = append(append(b.scratch[:0], b.prefix...), ns...)
	return t, b.scratch, nil
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

// Get reads a value of the current key; see state.Backend.
func (b *Backend) Get(id state.ID, ns, userKey []byte) ([]byte, bool, error) {
	b.last.e = nil
	t, ck, err := b.access(id, ns)
	if err != nil {
		return nil, false, err
	}
	if err := t.checkUserKey(userKey); err != nil {
		return nil, false, err
	}
	if t.maps != nil {
		e := t.maps[b.kgIdx][string(ck)]
		if e == nil {
			return nil, false, nil
		}
		v, ok := e.m[string(userKey)]
		return v, ok, nil
	}
	e := t.vals[b.kgIdx][string(ck)]
	if e == nil {
		return nil, false, nil
	}
	if e.epoch == b.epoch && t.owned[b.kgIdx] == b.epoch && len(userKey) == 0 {
		b.last.id, b.last.ns, b.last.e = id, append(b.last.ns[:0], ns...), e
	}
	return e.v, true, nil
}

// putLast writes value into the entry the last Get found when that was of
// state id in namespace ns of the current key and may still be written in
// place; it reports whether it did. The caller has checked the value.
func (b *Backend) putLast(id state.ID, ns, userKey, value []byte) bool {
	e := b.last.e
	b.last.e = nil
	if e == nil || b.closed || id != b.last.id || len(userKey) > 0 || !bytes.Equal(ns, b.last.ns) {
		return false
	}
	t := b.tables[id-1]
	if t.maps != nil || t.info.Kind == state.KindList || e.epoch != b.epoch || t.owned[b.kgIdx] != b.epoch {
		return false
	}
	if len(ns) > 0 {
		t.namespaced = true
	}
	e.v = append(e.v[:0], value...)
	return true
}

// Put sets a value of the current key; see state.Backend.
func (b *Backend) Put(id state.ID, ns, userKey, value []byte) error {
	if len(value) <= state.MaxValueLen && b.putLast(id, ns, userKey, value) {
		return nil
	}
	t, ck, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if err := t.checkUserKey(userKey); err != nil {
		return err
	}
	if len(value) > state.MaxValueLen {
		return fmt.Errorf("state %q: value of %d bytes is larger than %d", t.info.Name, len(value), state.MaxValueLen)
	}
	if len(ns) > 0 {
		t.namespaced = true
	}
	if t.maps != nil {
		b.putMap(t, ck, userKey, value)
		return nil
	}
	if t.info.Kind == state.KindList {
		if err := state.CheckElements(value); err != nil {
			return fmt.Errorf("state %q: %w", t.info.Name, err)
		}
	}
	m := b.valsToWrite(t, b.kgIdx)
	e := m[string(ck)]
	if e != nil && e.epoch == b.epoch {
		e.v = append(e.v[:0], value...)
		return nil
	}
	ne := &valueEntry{v: append([]byte(nil), value...), epoch: b.epoch}
	if e != nil {
		ne.key = e.key
	} else {
		ne.key = string(ck)
	}
	m[ne.key] = ne
	return nil
}

func (b *Backend) putMap(t *table, ck, userKey, value []byte) {
	m := b.mapsToWrite(t, b.kgIdx)
	e := m[string(ck)]
	switch {
	case e == nil:
		e = &mapEntry{key: string(ck), m: map[string][]byte{}, epoch: b.epoch}
		m[e.key] = e
	case e.epoch != b.epoch:
		e = &mapEntry{key: e.key, m: maps.Clone(e.m), epoch: b.epoch}
		m[e.key] = e
	}
	e.m[string(userKey)] = append([]byte(nil), value...)
}

// Append adds an element to a list state; see state.Backend.
func (b *Backend) Append(id state.ID, ns, element []byte) error {
	t, ck, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if t.info.Kind != state.KindList {
		return fmt.Errorf("state %q is %s state: only list states take Append", t.info.Name, t.info.Kind)
	}
	if len(ns) > 0 {
		t.namespaced = true
	}
	m := b.valsToWrite(t, b.kgIdx)
	e := m[string(ck)]
	var cur int
	if e != nil {
		cur = len(e.v)
	}
	if cur+len(element)+binary.MaxVarintLen64 > state.MaxValueLen {
		return fmt.Errorf("state %q: list of the current key would exceed %d bytes", t.info.Name, state.MaxValueLen)
	}
	if e != nil && e.epoch == b.epoch {
		e.v = state.AppendElement(e.v, element)
		return nil
	}
	ne := &valueEntry{epoch: b.epoch}
	if e != nil {
		ne.key = e.key
		ne.v = state.AppendElement(append(make([]byte, 0, 2*cur+len(element)+binary.MaxVarintLen64), e.v...), element)
	} else {
		ne.key = string(ck)
		ne.v = state.AppendElement(nil, element)
	}
	m[ne.key] = ne
	return nil
}

// Delete removes a value of the current key; see state.Backend.
func (b *Backend) Delete(id state.ID, ns, userKey []byte) error {
	b.last.e = nil
	t, ck, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if err := t.checkUserKey(userKey); err != nil {
		return err
	}
	if t.maps == nil {
		if _, ok := t.vals[b.kgIdx][string(ck)]; ok {
			delete(b.valsToWrite(t, b.kgIdx), string(ck))
		}
		return nil
	}
	e := t.maps[b.kgIdx][string(ck)]
	if e == nil {
		return nil
	}
	if _, ok := e.m[string(userKey)]; !ok {
		return nil
	}
	m := b.mapsToWrite(t, b.kgIdx)
	if len(e.m) == 1 {
		delete(m, string(ck))
		return nil
	}
	if e.epoch != b.epoch {
		e = &mapEntry{key: e.key, m: maps.Clone(e.m), epoch: b.epoch}
		m[e.key] = e
	}
	delete(e.m, string(userKey))
	return nil
}

// Clear removes everything of the current key in ns; see state.Backend.
func (b *Backend) Clear(id state.ID, ns []byte) error {
	b.last.e = nil
	t, ck, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if t.maps != nil {
		if _, ok := t.maps[b.kgIdx][string(ck)]; ok {
			delete(b.mapsToWrite(t, b.kgIdx), string(ck))
		}
	} else if _, ok := t.vals[b.kgIdx][string(ck)]; ok {
		delete(b.valsToWrite(t, b.kgIdx), string(ck))
	}
	return nil
}

// Iterate visits the current key's values in ns; see state.Backend.
func (b *Backend) Iterate(id state.ID, ns []byte, fn func(userKey, value []byte) error) error {
	t, ck, err := b.access(id, ns)
	if err != nil {
		return err
	}
	if t.maps != nil {
		e := t.maps[b.kgIdx][string(ck)]
		if e == nil {
			return nil
		}
		var kb []byte
		for k, v := range e.m {
			kb = append(kb[:0], k...)
			if err := fn(kb, v); err != nil {
				return err
			}
		}
		return nil
	}
	e := t.vals[b.kgIdx][string(ck)]
	if e == nil {
		return nil
	}
	if t.info.Kind == state.KindList {
		return state.Elements(e.v, func(el []byte) error { return fn(nil, el) })
	}
	return fn(nil, e.v)
}

// Keys visits every key of the range having state id; see state.Backend.
func (b *Backend) Keys(id state.ID, fn func(key []byte, keyGroup int) error) error {
	if b.closed {
		return errors.New("state backend closed")
	}
	if id == 0 || int(id) > len(b.tables) {
		return fmt.Errorf("unknown state id %d", id)
	}
	t := b.tables[id-1]
	for i := range b.cfg.KeyGroups.Len() {
		var seen map[string]bool
		if t.namespaced {
			seen = map[string]bool{}
		}
		visit := func(ck string) error {
			key := splitKey(ck)
			if seen != nil {
				if seen[key] {
					return nil
				}
				seen[key] = true
			}
			b.keysBuf = append(b.keysBuf[:0], key...)
			return fn(b.keysBuf, b.cfg.KeyGroups.First+i)
		}
		if t.maps != nil {
			for ck := range t.maps[i] {
				if err := visit(ck); err != nil {
					return err
				}
			}
			continue
		}
		for ck := range t.vals[i] {
			if err := visit(ck); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitKey returns the key of a composite key (the rest is the namespace).
// Composite keys are built by this package, so they are well formed.
func splitKey(ck string) string {
	n, k := binary.Uvarint([]byte(ck[:min(len(ck), binary.MaxVarintLen64)]))
	return ck[k : k+int(n)]
}

// NotifyCheckpointComplete does nothing: hashmap checkpoints are always full.
func (b *Backend) NotifyCheckpointComplete(int64) {}

// Close drops the state.
func (b *Backend) Close() error {
	b.closed = true
	b.last.e = nil
	b.tables = nil
	b.byName = nil
	return nil
}
