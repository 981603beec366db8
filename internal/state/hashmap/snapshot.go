package hashmap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/sluice-dev/sluice/internal/state"
)

// Snapshot takes the maps of every state and key group as they are and
// starts a new epoch, so that what follows clones a key group's map before
// changing it and replaces an entry rather than writing it. That is the
// task's whole pause: no key is copied here.
func (b *Backend) Snapshot(info state.SnapshotInfo) (state.Snapshot, error) {
	if b.closed {
		return nil, errors.New("state backend closed")
	}
	s := &snapshot{info: info, kgs: b.cfg.KeyGroups, tables: make([]snapTable, len(b.tables))}
	for i, t := range b.tables {
		st := snapTable{info: t.info}
		if t.maps != nil {
			st.maps = slices.Clone(t.maps)
		} else {
			st.vals = slices.Clone(t.vals)
		}
		s.tables[i] = st
	}
	b.epoch++
	b.live = append(b.live, s)
	return s, nil
}

type snapTable struct {
	info state.StateInfo
	vals []map[string]*valueEntry
	maps []map[string]*mapEntry
}

// snapshot is a point-in-time view of a backend. Neither its maps nor their
// entries are written again by the backend (their epoch is past: it clones
// or replaces them first), so Write reads them from another goroutine
// without locks.
type snapshot struct {
	info state.SnapshotInfo
	kgs  state.KeyGroupRange

	mu      sync.Mutex // Write and Release may be called from different goroutines
	tables  []snapTable
	written bool
	// released is set by Release once no Write can be reading the maps;
	// the backend then stops copying key groups for this snapshot.
	released atomic.Bool
}

// Write streams the snapshot, key group by key group, unsorted.
func (s *snapshot) Write(ctx context.Context, w io.Writer) (*state.StreamHandle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written {
		return nil, fmt.Errorf("snapshot %d: already written", s.info.ID)
	}
	if s.tables == nil {
		return nil, fmt.Errorf("snapshot %d: released", s.info.ID)
	}
	s.written = true
	infos := make([]state.StateInfo, len(s.tables))
	for i, t := range s.tables {
		infos[i] = t.info
	}
	sw, err := state.NewStreamWriter(w, s.kgs, infos)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", s.info.ID, err)
	}
	n := 0
	check := func() error {
		if n++; n&4095 == 0 {
			return ctx.Err()
		}
		return nil
	}
	for i := range s.kgs.Len() {
		if err := sw.BeginKeyGroup(s.kgs.First + i); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", s.info.ID, err)
		}
		for _, t := range s.tables {
			id := t.info.ID
			if t.maps != nil {
				for ck, e := range t.maps[i] {
					key, ns := split(ck)
					for uk, v := range e.m {
						if err := sw.Entry(id, key, ns, bytesOf(uk), v); err != nil {
							return nil, err
						}
						if err := check(); err != nil {
							return nil, fmt.Errorf("snapshot %d: %w", s.info.ID, err)
						}
					}
				}
				continue
			}
			for ck, e := range t.vals[i] {
				key, ns := split(ck)
				if err := sw.Entry(id, key, ns, nil, e.v); err != nil {
					return nil, err
				}
				if err := check(); err != nil {
					return nil, fmt.Errorf("snapshot %d: %w", s.info.ID, err)
				}
			}
		}
	}
	h, err := sw.Finish()
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", s.info.ID, err)
	}
	return h, nil
}

// Release drops the snapshot's view of the maps. Call it as soon as Write
// returns: until then, the task copies each key group's map on its first
// write to it.
func (s *snapshot) Release() {
	s.mu.Lock()
	s.tables = nil
	s.mu.Unlock()
	s.released.Store(true)
}

// split returns the key and namespace of a composite key, as byte slices
// over the string: the stream writer only copies them.
func split(ck string) (key, ns []byte) {
	b := bytesOf(ck)
	n, k := binary.Uvarint(b)
	return b[k : k+int(n)], b[k+int(n):]
}

// bytesOf views s as bytes without copying; the result must not be written.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
