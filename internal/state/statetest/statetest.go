// Package statetest holds what the tests of keyed state backends share: a
// conformance suite every backend passes (Run), so that hashmap and pebble
// are proven to behave alike, helpers to fill, snapshot and compare
// backends, and Dir, a checkpoint file store over a directory.
package statetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// Max is the max parallelism (number of key groups) of the tests.
const Max = 16

// All is every key group of Max.
var All = state.KeyGroupRange{First: 0, Last: Max - 1}

// KeyGroupOf is the key group of key among Max, as the task computes it.
func KeyGroupOf(key []byte) int { return keygroup.Of(keygroup.Hash(key), Max) }

// RangeOf is the key groups of subtask i of p.
func RangeOf(i, p int) state.KeyGroupRange {
	r := keygroup.RangeOf(i, p, Max)
	return state.KeyGroupRange{First: r.First, Last: r.Last}
}

// Config is the configuration of a test backend of operator "sum" for kgs.
func Config(kgs state.KeyGroupRange) state.Config {
	return state.Config{Operator: "sum", KeyGroups: kgs, MaxParallelism: Max, KeyGroupOf: KeyGroupOf}
}

// NewFunc creates a backend of the implementation under test for cfg,
// restored from restore. It fills in what the implementation needs
// (WorkDir) and closes the backend when the test ends.
type NewFunc func(t testing.TB, cfg state.Config, restore []state.Restore) (state.Backend, error)

// Must is f that fails the test on error.
func Must(t testing.TB, f NewFunc, cfg state.Config, restore []state.Restore) state.Backend {
	t.Helper()
	b, err := f(t, cfg, restore)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Typed are the states Fill writes: one of each kind, one namespaced.
type Typed struct {
	V  *state.Value[int64]
	L  *state.List[string]
	M  *state.Map[string, int64]
	R  *state.Reducing[int64]
	WV *state.Value[int64] // written in two namespaces
}

// Register registers the states of Typed.
func Register(t testing.TB, b state.Backend) Typed {
	t.Helper()
	var s Typed
	var err error
	if s.V, err = state.NewValue(b, "v", state.Int64Codec); err != nil {
		t.Fatal(err)
	}
	if s.L, err = state.NewList(b, "l", state.StringCodec); err != nil {
		t.Fatal(err)
	}
	if s.M, err = state.NewMap(b, "m", state.StringCodec, state.Int64Codec); err != nil {
		t.Fatal(err)
	}
	if s.R, err = state.NewReducing(b, "r", state.Int64Codec, func(a, b int64) (int64, error) { return a + b, nil }); err != nil {
		t.Fatal(err)
	}
	if s.WV, err = state.NewValue(b, "wv", state.Int64Codec); err != nil {
		t.Fatal(err)
	}
	return s
}

// Key is the k-th test key.
func Key(k int) []byte { return fmt.Appendf(nil, "key-%d", k) }

// SetKey makes the k-th test key current.
func SetKey(b state.Backend, k int) {
	key := Key(k)
	b.SetCurrentKey(key, KeyGroupOf(key))
}

// Sub is a backend with the key groups it holds.
type Sub struct {
	B  state.Backend
	KG state.KeyGroupRange
}

// Fill writes n keys into the backends that own them: per key, 6 entries
// (one per state, two namespaces of wv) and a seventh for even keys.
func Fill(t testing.TB, n int, subs ...Sub) {
	t.Helper()
	for k := range n {
		key := Key(k)
		kg := KeyGroupOf(key)
		var b state.Backend
		for _, s := range subs {
			if s.KG.Contains(kg) {
				b = s.B
			}
		}
		b.SetCurrentKey(key, kg)
		s := Register(t, b)
		Check(t, s.V.Set(int64(k)))
		Check(t, s.L.Add(fmt.Sprint("a", k)))
		Check(t, s.L.Add(fmt.Sprint("b", k)))
		Check(t, s.M.Put("x", int64(k)))
		Check(t, s.M.Put(fmt.Sprint("y", k%3), int64(-k)))
		Check(t, s.R.Add(int64(k)))
		Check(t, s.R.Add(1))
		s.WV.SetNamespace([]byte("w1"))
		Check(t, s.WV.Set(int64(k)))
		if k%2 == 0 {
			s.WV.SetNamespace([]byte("w2"))
			Check(t, s.WV.Set(int64(2*k)))
		}
	}
}

// Entries is the number of entries Fill(n) writes.
func Entries(n int) int { return n*6 + (n+1)/2 }

// Check fails the test on err.
func Check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Written is a key-group stream written to memory.
type Written struct {
	Name string
	Data []byte
	H    *state.StreamHandle
}

// Restore is w as a snapshot to restore from.
func (w Written) Restore() state.Restore {
	return state.Restore{Name: w.Name, Handle: w.H, Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(w.Data)), nil
	}}
}

// TakeSnapshot snapshots b and writes the canonical stream.
func TakeSnapshot(t testing.TB, b state.Backend, name string) Written {
	t.Helper()
	s, err := b.Snapshot(state.SnapshotInfo{ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	return Write(t, s, name)
}

// Write writes s as a key-group stream.
func Write(t testing.TB, s state.Snapshot, name string) Written {
	t.Helper()
	var buf bytes.Buffer
	h, err := s.Write(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	return Written{Name: name, Data: buf.Bytes(), H: h}
}

// Dump lists every entry of a written snapshot, one line each, sorted; a
// list's value is shown as its elements.
func Dump(t testing.TB, w Written) []string {
	t.Helper()
	sr, err := state.NewStreamReader(bytes.NewReader(w.Data), w.Name, w.H)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = sr.ReadKeyGroups(w.H.KeyGroups, func(e *state.Entry) error {
		v := fmt.Sprintf("%x", e.Value)
		if e.State.Kind == state.KindList {
			var els []string
			_ = state.Elements(e.Value, func(el []byte) error { els = append(els, string(el)); return nil })
			v = strings.Join(els, ",")
		}
		out = append(out, fmt.Sprintf("kg=%d %s key=%s ns=%s uk=%s v=%s", e.KeyGroup, e.State.Name, e.Key, e.Namespace, e.UserKey, v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// DumpOf dumps b's state through a canonical snapshot.
func DumpOf(t testing.TB, b state.Backend) []string {
	t.Helper()
	return Dump(t, TakeSnapshot(t, b, "dump"))
}

// CheckKeyGroups fails the test if a line of dump is of a key group outside kgs.
func CheckKeyGroups(t testing.TB, dump []string, kgs state.KeyGroupRange) {
	t.Helper()
	for _, line := range dump {
		var kg int
		fmt.Sscanf(line, "kg=%d", &kg)
		if !kgs.Contains(kg) {
			t.Fatalf("a backend of key groups %s holds %s", kgs, line)
		}
	}
}

// CheckTyped checks, through the typed states, what Fill wrote for key k.
func CheckTyped(t testing.TB, b state.Backend, k int) {
	t.Helper()
	s := Register(t, b)
	SetKey(b, k)
	if v, ok, err := s.V.Get(); v != int64(k) || !ok || err != nil {
		t.Errorf("value of key-%d: %d %v %v", k, v, ok, err)
	}
	if l, _ := s.L.Get(); !slices.Equal(l, []string{fmt.Sprint("a", k), fmt.Sprint("b", k)}) {
		t.Errorf("list of key-%d: %q", k, l)
	}
	if v, _, _ := s.M.Get(fmt.Sprint("y", k%3)); v != int64(-k) {
		t.Errorf("map of key-%d: %d", k, v)
	}
	if v, _, _ := s.R.Get(); v != int64(k+1) {
		t.Errorf("reducing of key-%d: %d", k, v)
	}
	if k%2 == 0 {
		s.WV.SetNamespace([]byte("w2"))
		if v, _, _ := s.WV.Get(); v != int64(2*k) {
			t.Errorf("namespaced value of key-%d: %d", k, v)
		}
	}
}
