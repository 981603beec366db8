package hashmap

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/sluice-dev/sluice/internal/state"
)

// restore reads the key groups of r in the backend's range.
func (b *Backend) restore(ctx context.Context, r state.Restore) error {
	if r.Native != nil {
		// Canonical snapshots (every savepoint, every hashmap checkpoint)
		// are key-group streams; a backend's own files are read by it alone.
		return fmt.Errorf("keyed state %s is in format %s, which the hashmap backend does not read: restore with the backend that wrote it (state.backend.type: pebble), or from a savepoint",
			r.Name, r.Native.Format)
	}
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
		t := b.byName[st.Name]
		if t == nil {
			if t, err = b.newTable(st.Name, st.Kind); err != nil {
				return err
			}
		} else if t.info.Kind != st.Kind {
			return fmt.Errorf("keyed state file %s: state %q is %s state there but %s state in another file of the snapshot",
				r.Name, st.Name, st.Kind, t.info.Kind)
		}
		byFileID[st.ID] = t
	}
	n := 0
	return sr.ReadKeyGroups(b.cfg.KeyGroups, func(e *state.Entry) error {
		if n++; n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if b.cfg.KeyGroupOf != nil {
			if kg := b.cfg.KeyGroupOf(e.Key); kg != e.KeyGroup {
				return fmt.Errorf("a key of key group %d is filed under key group %d: the snapshot belongs to another job or pipeline.max-parallelism", kg, e.KeyGroup)
			}
		}
		return b.insert(byFileID[e.State.ID], e)
	})
}

// insert adds a restored entry, refusing one seen before: a snapshot holds
// each (state, key, namespace, user key) once.
func (b *Backend) insert(t *table, e *state.Entry) error {
	i := e.KeyGroup - b.cfg.KeyGroups.First
	b.scratch = binary.AppendUvarint(b.scratch[:0], uint64(len(e.Key)))
	b.scratch = append(append(b.scratch, e.Key...), e.Namespace...)
	ck := b.scratch
	if len(e.Namespace) > 0 {
		t.namespaced = true
	}
	if t.maps != nil {
		m := b.mapsToWrite(t, i)
		me := m[string(ck)]
		if me == nil {
			me = &mapEntry{key: string(ck), m: map[string][]byte{}, epoch: b.epoch}
			m[me.key] = me
		}
		if _, dup := me.m[string(e.UserKey)]; dup {
			return fmt.Errorf("duplicate entry for a key")
		}
		me.m[string(e.UserKey)] = append([]byte(nil), e.Value...)
		return nil
	}
	if t.info.Kind == state.KindList {
		if err := state.CheckElements(e.Value); err != nil {
			return err
		}
	}
	m := b.valsToWrite(t, i)
	if _, dup := m[string(ck)]; dup {
		return fmt.Errorf("duplicate entry for a key")
	}
	k := string(ck)
	m[k] = &valueEntry{key: k, v: append([]byte(nil), e.Value...), epoch: b.epoch}
	return nil
}
