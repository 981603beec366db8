package hashmap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/statetest"
)

// TODO(keygroup): use keygroup.Of and keygroup.RangeOf once that package
// lands; these stand-ins have the same shape.
func keyGroupOf(key []byte, maxParallelism int) int {
	h := fnv.New32a()
	h.Write(key)
	return int(h.Sum32() % uint32(maxParallelism))
}

func rangeOf(subtask, parallelism, maxParallelism int) state.KeyGroupRange {
	return state.KeyGroupRange{
		First: (subtask*maxParallelism + parallelism - 1) / parallelism,
		Last:  ((subtask+1)*maxParallelism - 1) / parallelism,
	}
}

const testMax = 16

func newTestBackend(t testing.TB, kgs state.KeyGroupRange, restore []state.Restore) *Backend {
	t.Helper()
	b, err := Factory{}.New(context.Background(), state.Config{
		Operator: "sum", KeyGroups: kgs, MaxParallelism: testMax,
		KeyGroupOf: func(k []byte) int { return keyGroupOf(k, testMax) },
	}, restore)
	if err != nil {
		t.Fatal(err)
	}
	return b.(*Backend)
}

// typed are the states the tests fill: one of each kind, one namespaced.
type typed struct {
	v  *state.Value[int64]
	l  *state.List[string]
	m  *state.Map[string, int64]
	r  *state.Reducing[int64]
	wv *state.Value[int64] // written in two namespaces
}

func register(t testing.TB, b state.Backend) typed {
	t.Helper()
	var s typed
	var err error
	if s.v, err = state.NewValue(b, "v", state.Int64Codec); err != nil {
		t.Fatal(err)
	}
	if s.l, err = state.NewList(b, "l", state.StringCodec); err != nil {
		t.Fatal(err)
	}
	if s.m, err = state.NewMap(b, "m", state.StringCodec, state.Int64Codec); err != nil {
		t.Fatal(err)
	}
	if s.r, err = state.NewReducing(b, "r", state.Int64Codec, func(a, b int64) (int64, error) { return a + b, nil }); err != nil {
		t.Fatal(err)
	}
	if s.wv, err = state.NewValue(b, "wv", state.Int64Codec); err != nil {
		t.Fatal(err)
	}
	return s
}

func setKey(b state.Backend, k int) {
	key := fmt.Appendf(nil, "key-%d", k)
	b.SetCurrentKey(key, keyGroupOf(key, testMax))
}

// fill writes n keys into the backends that own them (by key group).
func fill(t testing.TB, n int, backends ...*Backend) {
	t.Helper()
	for k := range n {
		key := fmt.Appendf(nil, "key-%d", k)
		kg := keyGroupOf(key, testMax)
		var b *Backend
		for _, c := range backends {
			if c.cfg.KeyGroups.Contains(kg) {
				b = c
			}
		}
		b.SetCurrentKey(key, kg)
		s := register(t, b)
		check(t, s.v.Set(int64(k)))
		check(t, s.l.Add(fmt.Sprint("a", k)))
		check(t, s.l.Add(fmt.Sprint("b", k)))
		check(t, s.m.Put("x", int64(k)))
		check(t, s.m.Put(fmt.Sprint("y", k%3), int64(-k)))
		check(t, s.r.Add(int64(k)))
		check(t, s.r.Add(1))
		s.wv.SetNamespace([]byte("w1"))
		check(t, s.wv.Set(int64(k)))
		if k%2 == 0 {
			s.wv.SetNamespace([]byte("w2"))
			check(t, s.wv.Set(int64(2*k)))
		}
	}
}

// The snapshot helpers are the conformance suite's (internal/state/statetest).
var (
	check        = statetest.Check
	takeSnapshot = statetest.TakeSnapshot
	write        = statetest.Write
	dump         = statetest.Dump
)

type written = statetest.Written

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	all := state.KeyGroupRange{First: 0, Last: testMax - 1}
	b := newTestBackend(t, all, nil)
	fill(t, 500, b)
	w := takeSnapshot(t, b, "chk-1/2-0-keyed")
	want := dump(t, w)
	if len(want) != 500*6+250 {
		t.Fatalf("snapshot has %d entries, want %d", len(want), 500*6+250)
	}

	r := newTestBackend(t, all, []state.Restore{w.Restore()})
	if got := dump(t, takeSnapshot(t, r, "again")); !slices.Equal(got, want) {
		t.Fatalf("restored state differs:\n got %d entries %.300v\nwant %d entries %.300v", len(got), got, len(want), want)
	}
	// And it reads back through the typed states.
	s := register(t, r)
	setKey(r, 42)
	if v, ok, err := s.v.Get(); v != 42 || !ok || err != nil {
		t.Errorf("value of key-42: %d %v %v", v, ok, err)
	}
	if l, _ := s.l.Get(); !slices.Equal(l, []string{"a42", "b42"}) {
		t.Errorf("list of key-42: %q", l)
	}
	if v, _, _ := s.m.Get("y0"); v != -42 {
		t.Errorf("map of key-42: %d", v)
	}
	if v, _, _ := s.r.Get(); v != 43 {
		t.Errorf("reducing of key-42: %d", v)
	}
	s.wv.SetNamespace([]byte("w2"))
	if v, _, _ := s.wv.Get(); v != 84 {
		t.Errorf("namespaced value of key-42: %d", v)
	}
}

// TestRescale restores the snapshots of 2 subtasks at parallelism 4 and 1:
// every new subtask gets exactly the keys of its key groups, and together
// they hold every entry once.
func TestRescale(t *testing.T) {
	old := []*Backend{newTestBackend(t, rangeOf(0, 2, testMax), nil), newTestBackend(t, rangeOf(1, 2, testMax), nil)}
	fill(t, 1000, old...)
	var handles []state.Restore
	var whole []string
	for i, b := range old {
		w := takeSnapshot(t, b, fmt.Sprintf("chk-1/2-%d-keyed", i))
		handles = append(handles, w.Restore())
		whole = append(whole, dump(t, w)...)
	}
	slices.Sort(whole)
	for _, p := range []int{4, 1, 3} {
		t.Run(fmt.Sprintf("2to%d", p), func(t *testing.T) {
			var union []string
			for i := range p {
				kgs := rangeOf(i, p, testMax)
				nb := newTestBackend(t, kgs, handles)
				part := dump(t, takeSnapshot(t, nb, "part"))
				for _, line := range part {
					var kg int
					fmt.Sscanf(line, "kg=%d", &kg)
					if !kgs.Contains(kg) {
						t.Fatalf("subtask %d of %d (key groups %s) restored %s", i, p, kgs, line)
					}
				}
				union = append(union, part...)
			}
			slices.Sort(union)
			if !slices.Equal(union, whole) {
				t.Errorf("union of the %d parts: %d entries, the whole: %d", p, len(union), len(whole))
			}
		})
	}
}

// TestSnapshotIsPointInTime writes a snapshot while the task goes on
// changing every kind of state (run with -race): the snapshot holds the
// state as it was when it was taken.
func TestSnapshotIsPointInTime(t *testing.T) {
	b := newTestBackend(t, state.KeyGroupRange{First: 0, Last: testMax - 1}, nil)
	fill(t, 2000, b)
	// An earlier snapshot, then changes, so that the one under test sees
	// entries of several epochs.
	old, err := b.Snapshot(state.SnapshotInfo{ID: 1})
	check(t, err)
	old.Release()
	s := register(t, b)
	for k := range 500 {
		setKey(b, k)
		check(t, s.v.Set(int64(k*10)))
		check(t, s.l.Add("c"))
		check(t, s.m.Put("z", 1))
	}

	snap, err := b.Snapshot(state.SnapshotInfo{ID: 2})
	check(t, err)
	defer snap.Release()
	reference, err := b.Snapshot(state.SnapshotInfo{ID: 3}) // nothing changes between the two
	check(t, err)
	want := dump(t, write(t, reference, "reference"))
	reference.Release()

	var wg sync.WaitGroup
	var got written
	var werr error
	wg.Go(func() {
		var buf bytes.Buffer
		h, err := snap.Write(context.Background(), &buf)
		got, werr = written{Name: "concurrent", Data: buf.Bytes(), H: h}, err
	})
	for round := range 3 {
		for k := range 2500 {
			setKey(b, k)
			check(t, s.v.Set(int64(-k-round))) // twice per key: once copied, then in place
			check(t, s.l.Add("d"))
			check(t, s.m.Put("x", 0))
			check(t, s.m.Delete("y1"))
			check(t, s.r.Add(100))
			s.wv.SetNamespace([]byte("w1"))
			if k%3 == 0 {
				check(t, s.wv.Clear())
			}
			s.wv.SetNamespace(nil)
		}
	}
	wg.Wait()
	check(t, werr)
	if g := dump(t, got); !slices.Equal(g, want) {
		t.Fatalf("snapshot written while the state changed differs from the state at the snapshot (%d vs %d entries)", len(g), len(want))
	}
	// The changes are there for the next snapshot.
	setKey(b, 7)
	if v, _, _ := s.v.Get(); v != -9 {
		t.Errorf("value after the changes: %d, want -9", v)
	}
}

func TestSnapshotWriteOnceAndRelease(t *testing.T) {
	b := newTestBackend(t, state.KeyGroupRange{First: 0, Last: 3}, nil)
	s, err := b.Snapshot(state.SnapshotInfo{ID: 5})
	check(t, err)
	write(t, s, "x")
	if _, err := s.Write(context.Background(), io.Discard); err == nil {
		t.Error("second Write succeeded")
	}
	s2, _ := b.Snapshot(state.SnapshotInfo{ID: 6})
	s2.Release()
	if _, err := s2.Write(context.Background(), io.Discard); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("Write after Release: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s3, _ := b.Snapshot(state.SnapshotInfo{ID: 7})
	if _, err := s3.Write(ctx, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a canceled context: %v", err)
	}
}

func TestKeys(t *testing.T) {
	b := newTestBackend(t, state.KeyGroupRange{First: 0, Last: testMax - 1}, nil)
	fill(t, 100, b)
	s := register(t, b)
	for _, id := range []state.ID{s.v.ID(), s.m.ID(), s.wv.ID()} {
		seen := map[string]int{}
		check(t, b.Keys(id, func(key []byte, kg int) error {
			if kg != keyGroupOf(key, testMax) {
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
}

func TestRestoreRefuses(t *testing.T) {
	all := state.KeyGroupRange{First: 0, Last: testMax - 1}
	stream := func(states []state.StateInfo, entries ...[4]string) written {
		var buf bytes.Buffer
		sw, err := state.NewStreamWriter(&buf, all, states)
		check(t, err)
		last := -1
		for _, e := range entries {
			kg := keyGroupOf([]byte(e[0]), testMax)
			if e[3] == "wrong group" {
				kg = (kg + 1) % testMax
			}
			if kg != last {
				check(t, sw.BeginKeyGroup(kg))
				last = kg
			}
			var uk []byte
			if e[2] != "" {
				uk = []byte(e[2])
			}
			check(t, sw.Entry(1, []byte(e[0]), []byte(e[1]), uk, []byte(e[3])))
		}
		h, err := sw.Finish()
		check(t, err)
		return written{Name: "chk-3/1-0-keyed", Data: buf.Bytes(), H: h}
	}
	value := []state.StateInfo{{ID: 1, Name: "acc", Kind: state.KindValue}}
	list := []state.StateInfo{{ID: 1, Name: "acc", Kind: state.KindList}}
	mapped := []state.StateInfo{{ID: 1, Name: "acc", Kind: state.KindMap}}
	for _, tt := range []struct {
		name    string
		restore []state.Restore
		want    string
	}{
		{"duplicate value", []state.Restore{stream(value, [4]string{"k", "", "", "1"}, [4]string{"k", "", "", "2"}).Restore()}, "duplicate entry"},
		{"duplicate map entry", []state.Restore{stream(mapped, [4]string{"k", "", "u", "1"}, [4]string{"k", "", "u", "2"}).Restore()}, "duplicate entry"},
		{"duplicate across files", []state.Restore{stream(value, [4]string{"k", "", "", "1"}).Restore(), stream(value, [4]string{"k", "", "", "1"}).Restore()}, "duplicate entry"},
		{"key in the wrong key group", []state.Restore{stream(value, [4]string{"k", "", "", "wrong group"}).Restore()}, "is filed under key group"},
		{"malformed list", []state.Restore{stream(list, [4]string{"k", "", "", "\x05ab"}).Restore()}, "malformed list"},
		{"kinds differ between files", []state.Restore{stream(value).Restore(), stream(list).Restore()}, `state "acc" is list state there but value state in another file`},
		{"open fails", []state.Restore{{Name: "chk-3/1-0-keyed", Handle: &state.StreamHandle{}, Open: func(context.Context) (io.ReadCloser, error) {
			return nil, errors.New("authentication failed")
		}}}, "open keyed state file chk-3/1-0-keyed: authentication failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.New(context.Background(), state.Config{
				Operator: "sum", KeyGroups: all, KeyGroupOf: func(k []byte) int { return keyGroupOf(k, testMax) },
			}, tt.restore)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "restore keyed state of sum subtask 0") {
				t.Errorf("error %v, want one naming the operator and %q", err, tt.want)
			}
		})
	}
	// A restored state keeps its kind.
	b := newTestBackend(t, all, []state.Restore{stream(value, [4]string{"k", "", "", "\x02"}).Restore()})
	if _, err := state.NewMap(b, "acc", state.StringCodec, state.StringCodec); err == nil || !strings.Contains(err.Error(), `state "acc" was restored as value state and cannot be registered as map state`) {
		t.Errorf("restored value registered as a map: %v", err)
	}
	v, err := state.NewValue(b, "acc", state.Int64Codec)
	check(t, err)
	b.SetCurrentKey([]byte("k"), keyGroupOf([]byte("k"), testMax))
	if got, ok, err := v.Get(); got != 1 || !ok || err != nil {
		t.Errorf("restored value: %d %v %v", got, ok, err)
	}
}

// TestUnregisteredStateSurvivesSnapshots: a restored state no operator
// registers again is kept in later snapshots (as Flink keeps it) rather
// than silently dropped.
func TestUnregisteredStateSurvivesSnapshots(t *testing.T) {
	all := state.KeyGroupRange{First: 0, Last: testMax - 1}
	b := newTestBackend(t, all, nil)
	fill(t, 10, b)
	w := takeSnapshot(t, b, "one")
	r := newTestBackend(t, all, []state.Restore{w.Restore()})
	if got := dump(t, takeSnapshot(t, r, "two")); !slices.Equal(got, dump(t, w)) {
		t.Error("a restored, unregistered state was dropped")
	}
}

func TestIncrementalIsLoggedAsIgnored(t *testing.T) {
	var log bytes.Buffer
	_, err := Factory{}.New(context.Background(), state.Config{
		Operator: "sum", KeyGroups: state.KeyGroupRange{First: 0, Last: 1}, Incremental: true,
		Logger: slog.New(slog.NewTextHandler(&log, nil)),
	}, nil)
	check(t, err)
	if !strings.Contains(log.String(), "state.backend.incremental: the hashmap backend ignores it") {
		t.Errorf("log: %q", log.String())
	}
}

func TestConfigChecked(t *testing.T) {
	for _, cfg := range []state.Config{
		{Operator: "sum", KeyGroups: state.KeyGroupRange{First: 3, Last: 2}},
		{Operator: "sum", KeyGroups: state.KeyGroupRange{First: 0, Last: 200}, MaxParallelism: 128},
	} {
		if _, err := (Factory{}).New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "state backend of sum") {
			t.Errorf("%+v: %v", cfg.KeyGroups, err)
		}
	}
}

// TestSnapshotPauseIsIndependentOfKeys: the synchronous part of a snapshot
// copies no key and clones no map (that waits for the first write to each
// key group), so its allocations do not grow with the keys or key groups.
func TestSnapshotPauseIsIndependentOfKeys(t *testing.T) {
	b := newTestBackend(t, state.KeyGroupRange{First: 0, Last: testMax - 1}, nil)
	fill(t, 5000, b)
	allocs := testing.AllocsPerRun(20, func() {
		s, err := b.Snapshot(state.SnapshotInfo{ID: 1})
		check(t, err)
		s.Release()
	})
	// One snapshot, its table list, and one slice of map references per state.
	if allocs > 2+5 {
		t.Errorf("Snapshot allocates %.0f times for 5 states, 16 key groups and 5000 keys; want at most 7", allocs)
	}
}
