package hashmap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"unsafe"

	"github.com/sluice-dev/sluice/internal/state"
)

// Snapshot clones the tables of every state and key group (the maps, not
// the values) and starts a new epoch, so that what follows copies an entry
// before changing it. The clones are the task's only pause.
func (b *Backend) Snapshot(info state.SnapshotInfo) (state.Snapshot, error) {
	if b.closed {
		return nil, errors.New("state backend closed")
	}
	s := &snapshot{info: info, kgs: b.cfg.KeyGroups, tables: make([]snapTable, len(b.tables))}
	for i, t := range b.tables {
		st := snapTable{info: t.info}
		if t.maps != nil {
			st.maps = make([]map[string]*mapEntry, len(t.maps))
			for j, m := range t.maps {
				if len(m) > 0 {
					st.maps[j] = maps.Clone(m)
				}
			}
		} else {
			st.vals = make([]map[string]*valueEntry, len(t.vals))
			for j, m := range t.vals {
				if len(m) > 0 {
					st.vals[j] = maps.Clone(m)
				}
			}
		}
		s.tables[i] = st
	}
	b.epoch++
	return s, nil
}

type snapTable struct {
	info state.StateInfo
	vals []map[string]*valueEntry
	maps []map[string]*mapEntry
}

// snapshot is a point-in-time view of a backend. Its entries are never
// written again by the backend (their epoch is past), so Write reads them
// from another goroutine without locks.
type snapshot struct {
	info state.SnapshotInfo
	kgs  state.KeyGroupRange

	mu      sync.Mutex // Write and Release may be called from different goroutines
	tables  []snapTable
	written bool
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

// Release drops the clones.
func (s *snapshot) Release() {
	s.mu.Lock()
	s.tables = nil
	s.mu.Unlock()
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
