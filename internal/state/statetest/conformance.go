package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
)

// Run is the conformance suite of a keyed state backend: every backend
// passes the same cases, with the same errors, so that the task and its
// operators cannot tell them apart (docs/architecture.md §5.1).
func Run(t *testing.T, f NewFunc) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, NewFunc)
	}{
		{"Register", testRegister},
		{"Access", testAccess},
		{"Value", testValue},
		{"List", testList},
		{"Map", testMap},
		{"Keys", testKeys},
		{"RoundTrip", testRoundTrip},
		{"Rescale", testRescale},
		{"RestoreRefuses", testRestoreRefuses},
		{"UnregisteredStateSurvives", testUnregisteredSurvives},
		{"SnapshotIsPointInTime", testPointInTime},
		{"SnapshotWriteOnceAndRelease", testWriteOnce},
		{"ConfigChecked", testConfigChecked},
		{"Closed", testClosed},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, f) })
	}
}

func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v, want one containing %q", what, err, want)
	}
}

func testRegister(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(All), nil)
	ids := map[state.ID]bool{}
	for k := state.KindValue; k <= state.KindTimers; k++ {
		name := "s-" + k.String()
		id, err := b.Register(name, k)
		Check(t, err)
		if id == 0 || ids[id] {
			t.Errorf("%s: id %d is 0 or taken", name, id)
		}
		ids[id] = true
		again, err := b.Register(name, k)
		if again != id || err != nil {
			t.Errorf("%s registered again: %d %v, want %d", name, again, err, id)
		}
	}
	_, err := b.Register("s-value", state.KindMap)
	wantErr(t, "value registered as map", err, `operator sum: state "s-value" was registered as value state and cannot be registered as map state`)
	_, err = b.Register("", state.KindValue)
	wantErr(t, "empty name", err, "state name")
	_, err = b.Register(strings.Repeat("n", state.MaxNameLen+1), state.KindValue)
	wantErr(t, "long name", err, "state name")
	_, err = b.Register("bad", state.Kind(42))
	wantErr(t, "bad kind", err, "invalid kind")
}

func testAccess(t *testing.T, f NewFunc) {
	kgs := RangeOf(0, 2)
	b := Must(t, f, Config(kgs), nil)
	id, err := b.Register("v", state.KindValue)
	Check(t, err)
	lid, err := b.Register("l", state.KindList)
	Check(t, err)
	_, _, err = b.Get(id, nil, nil)
	wantErr(t, "Get without a key", err, "no current key")

	// A key of a key group outside the range: every access fails.
	var out int
	for k := 0; ; k++ {
		if !kgs.Contains(KeyGroupOf(Key(k))) {
			out = k
			break
		}
	}
	SetKey(b, out)
	if !bytes.Equal(b.CurrentKey(), Key(out)) {
		t.Errorf("CurrentKey %q, want %q", b.CurrentKey(), Key(out))
	}
	const msg = "outside this subtask's key groups"
	_, _, err = b.Get(id, nil, nil)
	wantErr(t, "Get", err, msg)
	wantErr(t, "Put", b.Put(id, nil, nil, []byte("x")), msg)
	wantErr(t, "Append", b.Append(lid, nil, []byte("x")), msg)
	wantErr(t, "Delete", b.Delete(id, nil, nil), msg)
	wantErr(t, "Clear", b.Clear(id, nil), msg)
	wantErr(t, "Iterate", b.Iterate(id, nil, func(_, _ []byte) error { return nil }), msg)

	SetKey(b, 0)
	for k := 0; !kgs.Contains(KeyGroupOf(Key(k))); k++ {
		SetKey(b, k+1)
	}
	_, _, err = b.Get(99, nil, nil)
	wantErr(t, "unknown id", err, "unknown state id 99")
	wantErr(t, "Keys of an unknown id", b.Keys(99, func([]byte, int) error { return nil }), "unknown state id 99")
	wantErr(t, "user key of a value", b.Put(id, nil, []byte("u"), []byte("x")), `state "v" is value state: it has no user keys`)
	wantErr(t, "Append to a value", b.Append(id, nil, []byte("x")), `state "v" is value state: only list states take Append`)
	wantErr(t, "malformed list", b.Put(lid, nil, nil, []byte{5, 'a'}), "malformed list")
	wantErr(t, "long namespace", b.Put(id, make([]byte, state.MaxKeyLen+1), nil, nil), "longer than")
}

func testValue(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(All), nil)
	id, err := b.Register("v", state.KindValue)
	Check(t, err)
	SetKey(b, 1)
	if _, ok, err := b.Get(id, nil, nil); ok || err != nil {
		t.Fatalf("Get of nothing: %v %v", ok, err)
	}
	Check(t, b.Put(id, nil, nil, []byte("one")))
	Check(t, b.Put(id, []byte("ns"), nil, []byte("one-ns")))
	SetKey(b, 2)
	Check(t, b.Put(id, nil, nil, []byte("two")))
	in := []byte("reused")
	Check(t, b.Put(id, nil, nil, in))
	in[0] = 'X' // the backend keeps a copy
	get := func(k int, ns string) string {
		t.Helper()
		SetKey(b, k)
		var n []byte
		if ns != "" {
			n = []byte(ns)
		}
		v, ok, err := b.Get(id, n, nil)
		Check(t, err)
		if !ok {
			return "-"
		}
		return string(v)
	}
	for _, c := range []struct {
		k    int
		ns   string
		want string
	}{{1, "", "one"}, {1, "ns", "one-ns"}, {2, "", "reused"}, {2, "ns", "-"}, {3, "", "-"}} {
		if got := get(c.k, c.ns); got != c.want {
			t.Errorf("key %d ns %q: %q, want %q", c.k, c.ns, got, c.want)
		}
	}
	var seen []string
	SetKey(b, 1)
	Check(t, b.Iterate(id, nil, func(uk, v []byte) error {
		if uk != nil {
			t.Errorf("a value's user key: %q", uk)
		}
		seen = append(seen, string(v))
		return nil
	}))
	if !slices.Equal(seen, []string{"one"}) {
		t.Errorf("Iterate of a value: %q", seen)
	}
	Check(t, b.Delete(id, nil, nil))
	Check(t, b.Delete(id, nil, nil)) // deleting nothing is no error
	if got := get(1, ""); got != "-" {
		t.Errorf("after Delete: %q", got)
	}
	if got := get(1, "ns"); got != "one-ns" {
		t.Errorf("Delete removed another namespace: %q", got)
	}
	Check(t, b.Clear(id, []byte("ns")))
	if got := get(1, "ns"); got != "-" {
		t.Errorf("after Clear: %q", got)
	}
	errStop := errors.New("stop")
	SetKey(b, 2)
	if err := b.Iterate(id, nil, func(_, _ []byte) error { return errStop }); !errors.Is(err, errStop) {
		t.Errorf("Iterate's callback error: %v", err)
	}
}

func testList(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(All), nil)
	id, err := b.Register("l", state.KindList)
	Check(t, err)
	SetKey(b, 1)
	elements := func() []string {
		t.Helper()
		var out []string
		Check(t, b.Iterate(id, nil, func(uk, v []byte) error {
			if uk != nil {
				t.Errorf("a list element's user key: %q", uk)
			}
			out = append(out, string(v))
			return nil
		}))
		return out
	}
	if got := elements(); len(got) != 0 {
		t.Errorf("empty list: %q", got)
	}
	for _, e := range []string{"a", "", "ccc"} {
		Check(t, b.Append(id, nil, []byte(e)))
	}
	if got := elements(); !slices.Equal(got, []string{"a", "", "ccc"}) {
		t.Errorf("after Append: %q", got)
	}
	v, ok, err := b.Get(id, nil, nil)
	Check(t, err)
	want := state.AppendElement(state.AppendElement(state.AppendElement(nil, []byte("a")), nil), []byte("ccc"))
	if !ok || !bytes.Equal(v, want) {
		t.Errorf("Get of a list: %x %v, want %x", v, ok, want)
	}
	Check(t, b.Put(id, nil, nil, state.AppendElement(nil, []byte("z"))))
	Check(t, b.Append(id, nil, []byte("y")))
	if got := elements(); !slices.Equal(got, []string{"z", "y"}) {
		t.Errorf("after Put and Append: %q", got)
	}
	Check(t, b.Append(id, []byte("w"), []byte("other")))
	Check(t, b.Clear(id, nil))
	if got := elements(); len(got) != 0 {
		t.Errorf("after Clear: %q", got)
	}
	Check(t, b.Append(id, nil, []byte("again")))
	if got := elements(); !slices.Equal(got, []string{"again"}) {
		t.Errorf("Append after Clear: %q", got)
	}
	var ns []string
	Check(t, b.Iterate(id, []byte("w"), func(_, v []byte) error { ns = append(ns, string(v)); return nil }))
	if !slices.Equal(ns, []string{"other"}) {
		t.Errorf("other namespace: %q", ns)
	}
}

func testMap(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(All), nil)
	id, err := b.Register("m", state.KindMap)
	Check(t, err)
	entries := func(k int, ns string) []string {
		t.Helper()
		SetKey(b, k)
		var out []string
		Check(t, b.Iterate(id, []byte(ns), func(uk, v []byte) error {
			out = append(out, string(uk)+"="+string(v))
			return nil
		}))
		slices.Sort(out)
		return out
	}
	SetKey(b, 1)
	for _, uk := range []string{"a", "b", "c", ""} {
		Check(t, b.Put(id, nil, []byte(uk), []byte("v"+uk)))
	}
	Check(t, b.Put(id, []byte("n"), []byte("a"), []byte("in-n")))
	SetKey(b, 2)
	Check(t, b.Put(id, nil, []byte("a"), []byte("key2")))
	SetKey(b, 1)
	if v, ok, err := b.Get(id, nil, []byte("b")); string(v) != "vb" || !ok || err != nil {
		t.Errorf("Get b: %q %v %v", v, ok, err)
	}
	if v, ok, err := b.Get(id, nil, nil); string(v) != "v" || !ok || err != nil {
		t.Errorf("Get of the empty user key: %q %v %v", v, ok, err)
	}
	if _, ok, err := b.Get(id, nil, []byte("zz")); ok || err != nil {
		t.Errorf("Get of a missing user key: %v %v", ok, err)
	}
	if got := entries(1, ""); !slices.Equal(got, []string{"=v", "a=va", "b=vb", "c=vc"}) {
		t.Errorf("entries: %q", got)
	}
	SetKey(b, 1)
	Check(t, b.Delete(id, nil, []byte("b")))
	Check(t, b.Delete(id, nil, []byte("missing")))
	if got := entries(1, ""); !slices.Equal(got, []string{"=v", "a=va", "c=vc"}) {
		t.Errorf("after Delete: %q", got)
	}
	SetKey(b, 1)
	Check(t, b.Clear(id, nil))
	if got := entries(1, ""); len(got) != 0 {
		t.Errorf("after Clear: %q", got)
	}
	if got := entries(1, "n"); !slices.Equal(got, []string{"a=in-n"}) {
		t.Errorf("Clear reached another namespace: %q", got)
	}
	if got := entries(2, ""); !slices.Equal(got, []string{"a=key2"}) {
		t.Errorf("Clear reached another key: %q", got)
	}
}

func testKeys(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(All), nil)
	Fill(t, 100, Sub{b, All})
	s := Register(t, b)
	for _, id := range []state.ID{s.V.ID(), s.M.ID(), s.WV.ID(), s.L.ID()} {
		seen := map[string]int{}
		Check(t, b.Keys(id, func(key []byte, kg int) error {
			if kg != KeyGroupOf(key) {
				t.Errorf("key %s reported in key group %d", key, kg)
			}
			seen[string(key)]++
			return nil
		}))
		if len(seen) != 100 {
			t.Errorf("state %d: %d keys, want 100", id, len(seen))
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("state %d: key %s visited %d times", id, k, n)
			}
		}
	}
	// A state without entries has no keys.
	empty, err := b.Register("empty", state.KindValue)
	Check(t, err)
	Check(t, b.Keys(empty, func(key []byte, _ int) error {
		t.Errorf("key %s of an empty state", key)
		return nil
	}))
}

func testRoundTrip(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(All), nil)
	Fill(t, 500, Sub{b, All})
	w := TakeSnapshot(t, b, "chk-1/2-0-keyed")
	want := Dump(t, w)
	if len(want) != Entries(500) {
		t.Fatalf("snapshot has %d entries, want %d", len(want), Entries(500))
	}
	r := Must(t, f, Config(All), []state.Restore{w.Restore()})
	if got := DumpOf(t, r); !slices.Equal(got, want) {
		t.Fatalf("restored state differs:\n got %d entries %.300v\nwant %d entries %.300v", len(got), got, len(want), want)
	}
	CheckTyped(t, r, 42)
	CheckTyped(t, r, 7)
}

func testRescale(t *testing.T, f NewFunc) {
	old := []Sub{{Must(t, f, Config(RangeOf(0, 2)), nil), RangeOf(0, 2)}, {Must(t, f, Config(RangeOf(1, 2)), nil), RangeOf(1, 2)}}
	Fill(t, 1000, old...)
	var handles []state.Restore
	var whole []string
	for i, s := range old {
		w := TakeSnapshot(t, s.B, fmt.Sprintf("chk-1/2-%d-keyed", i))
		handles = append(handles, w.Restore())
		whole = append(whole, Dump(t, w)...)
	}
	slices.Sort(whole)
	if len(whole) != Entries(1000) {
		t.Fatalf("%d entries, want %d", len(whole), Entries(1000))
	}
	for _, p := range []int{4, 1, 3} {
		t.Run(fmt.Sprintf("2to%d", p), func(t *testing.T) {
			var union []string
			for i := range p {
				kgs := RangeOf(i, p)
				part := DumpOf(t, Must(t, f, Config(kgs), handles))
				CheckKeyGroups(t, part, kgs)
				union = append(union, part...)
			}
			slices.Sort(union)
			if !slices.Equal(union, whole) {
				t.Errorf("union of the %d parts: %d entries, the whole: %d", p, len(union), len(whole))
			}
		})
	}
}

// stream writes a key-group stream of All holding entries {key, ns, user
// key, value}; the value "wrong group" files the key under the next key group.
func stream(t *testing.T, states []state.StateInfo, entries ...[4]string) Written {
	var buf bytes.Buffer
	sw, err := state.NewStreamWriter(&buf, All, states)
	Check(t, err)
	last := -1
	for _, e := range entries {
		kg := KeyGroupOf([]byte(e[0]))
		if e[3] == "wrong group" {
			kg = (kg + 1) % Max
		}
		if kg != last {
			Check(t, sw.BeginKeyGroup(kg))
			last = kg
		}
		var uk []byte
		if e[2] != "" {
			uk = []byte(e[2])
		}
		Check(t, sw.Entry(1, []byte(e[0]), []byte(e[1]), uk, []byte(e[3])))
	}
	h, err := sw.Finish()
	Check(t, err)
	return Written{Name: "chk-3/1-0-keyed", Data: buf.Bytes(), H: h}
}

func testRestoreRefuses(t *testing.T, f NewFunc) {
	value := []state.StateInfo{{ID: 1, Name: "acc", Kind: state.KindValue}}
	list := []state.StateInfo{{ID: 1, Name: "acc", Kind: state.KindList}}
	mapped := []state.StateInfo{{ID: 1, Name: "acc", Kind: state.KindMap}}
	for _, tt := range []struct {
		name    string
		restore []state.Restore
		want    string
	}{
		{"duplicate value", []state.Restore{stream(t, value, [4]string{"k", "", "", "1"}, [4]string{"k", "", "", "2"}).Restore()}, "duplicate entry"},
		{"duplicate map entry", []state.Restore{stream(t, mapped, [4]string{"k", "", "u", "1"}, [4]string{"k", "", "u", "2"}).Restore()}, "duplicate entry"},
		{"duplicate across files", []state.Restore{stream(t, value, [4]string{"k", "", "", "1"}).Restore(), stream(t, value, [4]string{"k", "", "", "1"}).Restore()}, "duplicate entry"},
		{"key in the wrong key group", []state.Restore{stream(t, value, [4]string{"k", "", "", "wrong group"}).Restore()}, "is filed under key group"},
		{"malformed list", []state.Restore{stream(t, list, [4]string{"k", "", "", "\x05ab"}).Restore()}, "malformed list"},
		{"kinds differ between files", []state.Restore{stream(t, value).Restore(), stream(t, list).Restore()}, `state "acc" is list state there but value state in another file`},
		{"open fails", []state.Restore{{Name: "chk-3/1-0-keyed", Handle: &state.StreamHandle{Format: state.StreamFormat}, Open: func(context.Context) (io.ReadCloser, error) {
			return nil, errors.New("authentication failed")
		}}}, "open keyed state file chk-3/1-0-keyed: authentication failed"},
		{"truncated", []state.Restore{func() state.Restore {
			w := stream(t, value, [4]string{"k", "", "", "1"})
			w.Data = w.Data[:len(w.Data)-3]
			return w.Restore()
		}()}, "truncated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f(t, Config(All), tt.restore)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "restore keyed state of sum subtask 0") {
				t.Errorf("error %v, want one naming the operator and %q", err, tt.want)
			}
		})
	}
	// A restored state keeps its kind.
	b := Must(t, f, Config(All), []state.Restore{stream(t, value, [4]string{"k", "", "", "\x02"}).Restore()})
	if _, err := state.NewMap(b, "acc", state.StringCodec, state.StringCodec); err == nil || !strings.Contains(err.Error(), `state "acc" was restored as value state and cannot be registered as map state`) {
		t.Errorf("restored value registered as a map: %v", err)
	}
	v, err := state.NewValue(b, "acc", state.Int64Codec)
	Check(t, err)
	b.SetCurrentKey([]byte("k"), KeyGroupOf([]byte("k")))
	if got, ok, err := v.Get(); got != 1 || !ok || err != nil {
		t.Errorf("restored value: %d %v %v", got, ok, err)
	}
}

// testUnregisteredSurvives: a restored state no operator registers again
// is kept in later snapshots (as Flink keeps it) rather than dropped.
func testUnregisteredSurvives(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(All), nil)
	Fill(t, 10, Sub{b, All})
	w := TakeSnapshot(t, b, "one")
	r := Must(t, f, Config(All), []state.Restore{w.Restore()})
	if got := DumpOf(t, r); !slices.Equal(got, Dump(t, w)) {
		t.Error("a restored, unregistered state was dropped")
	}
}

// testPointInTime writes a snapshot while the task goes on changing every
// kind of state (run with -race): the snapshot holds the state as it was.
func testPointInTime(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(All), nil)
	Fill(t, 2000, Sub{b, All})
	old, err := b.Snapshot(state.SnapshotInfo{ID: 1})
	Check(t, err)
	old.Release()
	s := Register(t, b)
	for k := range 500 {
		SetKey(b, k)
		Check(t, s.V.Set(int64(k*10)))
		Check(t, s.L.Add("c"))
		Check(t, s.M.Put("z", 1))
	}
	snap, err := b.Snapshot(state.SnapshotInfo{ID: 2})
	Check(t, err)
	defer snap.Release()
	reference, err := b.Snapshot(state.SnapshotInfo{ID: 3})
	Check(t, err)
	want := Dump(t, Write(t, reference, "reference"))
	reference.Release()

	var wg sync.WaitGroup
	var got Written
	var werr error
	wg.Go(func() {
		var buf bytes.Buffer
		h, err := snap.Write(context.Background(), &buf)
		got, werr = Written{Name: "concurrent", Data: buf.Bytes(), H: h}, err
	})
	for round := range 3 {
		for k := range 2500 {
			SetKey(b, k)
			Check(t, s.V.Set(int64(-k-round)))
			Check(t, s.L.Add("d"))
			Check(t, s.M.Put("x", 0))
			Check(t, s.M.Delete("y1"))
			Check(t, s.R.Add(100))
			s.WV.SetNamespace([]byte("w1"))
			if k%3 == 0 {
				Check(t, s.WV.Clear())
			}
			s.WV.SetNamespace(nil)
		}
	}
	wg.Wait()
	Check(t, werr)
	if g := Dump(t, got); !slices.Equal(g, want) {
		t.Fatalf("snapshot written while the state changed differs from the state at the snapshot (%d vs %d entries)", len(g), len(want))
	}
	SetKey(b, 7)
	if v, _, _ := s.V.Get(); v != -9 {
		t.Errorf("value after the changes: %d, want -9", v)
	}
}

func testWriteOnce(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(state.KeyGroupRange{First: 0, Last: 3}), nil)
	s, err := b.Snapshot(state.SnapshotInfo{ID: 5})
	Check(t, err)
	Write(t, s, "x")
	if _, err := s.Write(context.Background(), io.Discard); err == nil {
		t.Error("second Write succeeded")
	}
	s.Release()
	s2, err := b.Snapshot(state.SnapshotInfo{ID: 6})
	Check(t, err)
	s2.Release()
	s2.Release() // twice is harmless
	if _, err := s2.Write(context.Background(), io.Discard); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("Write after Release: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s3, err := b.Snapshot(state.SnapshotInfo{ID: 7})
	Check(t, err)
	defer s3.Release()
	if _, err := s3.Write(ctx, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a canceled context: %v", err)
	}
}

func testConfigChecked(t *testing.T, f NewFunc) {
	for _, cfg := range []state.Config{
		{Operator: "sum", KeyGroups: state.KeyGroupRange{First: 3, Last: 2}},
		{Operator: "sum", KeyGroups: state.KeyGroupRange{First: 0, Last: 200}, MaxParallelism: 128},
	} {
		if _, err := f(t, cfg, nil); err == nil || !strings.Contains(err.Error(), "state backend of sum") {
			t.Errorf("%+v: %v", cfg.KeyGroups, err)
		}
	}
}

func testClosed(t *testing.T, f NewFunc) {
	b := Must(t, f, Config(All), nil)
	id, err := b.Register("v", state.KindValue)
	Check(t, err)
	SetKey(b, 1)
	Check(t, b.Put(id, nil, nil, []byte("x")))
	Check(t, b.Close())
	Check(t, b.Close()) // twice is harmless
	if _, _, err := b.Get(id, nil, nil); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := b.Snapshot(state.SnapshotInfo{ID: 1}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Snapshot after Close: %v", err)
	}
}
