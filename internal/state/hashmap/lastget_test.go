package hashmap

import (
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
)

// TestPutAfterGetWritesTheRightEntry checks the in-place Put that follows a Get of the same
// state (Backend.last): whatever happens between the two, the Put lands where a Put without
// the preceding Get would, and a snapshot taken in between keeps the value it saw.
func TestPutAfterGetWritesTheRightEntry(t *testing.T) {
	b := newTestBackend(t, state.KeyGroupRange{First: 0, Last: testMax - 1}, nil)
	s := register(t, b)
	get := func(v *state.Value[int64]) int64 {
		t.Helper()
		x, _, err := v.Get()
		check(t, err)
		return x
	}
	for k := range 3 {
		setKey(b, k)
		check(t, s.v.Set(int64(k)))
		s.wv.SetNamespace([]byte("n1"))
		check(t, s.wv.Set(int64(10+k)))
		s.wv.SetNamespace(nil)
	}

	cases := []struct {
		name    string
		between func()
		check   func()
	}{
		{"read, modify, write", func() {}, func() {
			setKey(b, 0)
			if v := get(s.v); v != 1 {
				t.Errorf("key 0: %d, want 1", v)
			}
		}},
		{"another key set between", func() { setKey(b, 1) }, func() {
			setKey(b, 0)
			if v := get(s.v); v != 0 {
				t.Errorf("key 0: %d, want 0 (the Put was for key 1)", v)
			}
			setKey(b, 1)
			if v := get(s.v); v != 1 {
				t.Errorf("key 1: %d, want 1", v)
			}
		}},
		{"entry cleared between", func() { check(t, s.v.Clear()) }, func() {
			setKey(b, 0)
			if v, ok, _ := s.v.Get(); !ok || v != 1 {
				t.Errorf("key 0 after clear and put: %d (present %t), want 1", v, ok)
			}
		}},
		{"other namespace", func() { s.wv.SetNamespace([]byte("n1")) }, func() {
			setKey(b, 0)
			s.wv.SetNamespace([]byte("n1"))
			if v := get(s.wv); v != 1 {
				t.Errorf("namespace n1: %d, want 1 (the Put was for n1)", v)
			}
			s.wv.SetNamespace(nil)
			if v := get(s.wv); v != 0 {
				t.Errorf("no namespace: %d, want 0", v)
			}
		}},
	}
	for _, c := range cases {
		// Reset key 0, read it (arming the fast path), run the step, then write 1.
		setKey(b, 0)
		check(t, s.v.Set(0))
		s.wv.SetNamespace(nil)
		check(t, s.wv.Set(0))
		target := s.v
		if c.name == "other namespace" {
			target = s.wv
		}
		get(target)
		c.between()
		check(t, target.Set(1))
		c.check()
		s.wv.SetNamespace(nil)
	}

	// A snapshot between the Get and the Put keeps the value it saw.
	setKey(b, 2)
	check(t, s.v.Set(5))
	get(s.v)
	snap, err := b.Snapshot(state.SnapshotInfo{ID: 1})
	check(t, err)
	check(t, s.v.Set(6))
	got := dump(t, write(t, snap, "between"))
	snap.Release()
	ref, err := b.Snapshot(state.SnapshotInfo{ID: 2})
	check(t, err)
	after := dump(t, write(t, ref, "after"))
	ref.Release()
	if slices.Equal(got, after) {
		t.Fatalf("the snapshot taken before the Put shows the Put")
	}
	setKey(b, 2)
	if v := get(s.v); v != 6 {
		t.Errorf("key 2 after the snapshot: %d, want 6", v)
	}
}
