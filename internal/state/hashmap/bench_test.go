package hashmap

import (
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
)

const (
	benchKeys = 1 << 20 // "1 M keys"
	benchMax  = 128     // pipeline.max-parallelism's default
)

// benchKeySet is 1 Mi keys of 8 bytes with their key groups, shared by the
// benchmarks so that each builds it once.
var benchKeySet = func() func() ([][]byte, []int) {
	var keys [][]byte
	var kgs []int
	return func() ([][]byte, []int) {
		if keys == nil {
			keys = make([][]byte, benchKeys)
			kgs = make([]int, benchKeys)
			for i := range keys {
				keys[i] = binary.BigEndian.AppendUint64(nil, uint64(i)*0x9e3779b97f4a7c15)
				kgs[i] = keyGroupOf(keys[i], benchMax)
			}
		}
		return keys, kgs
	}
}()

func benchBackend(b *testing.B) *Backend {
	be, err := Factory{}.New(context.Background(), state.Config{Operator: "bench", KeyGroups: state.KeyGroupRange{First: 0, Last: benchMax - 1}, MaxParallelism: benchMax}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return be.(*Backend)
}

// filledValueBackend holds a value state with one int64 for each of the 1 Mi keys.
func filledValueBackend(b *testing.B) (*Backend, *state.Value[int64]) {
	keys, kgs := benchKeySet()
	be := benchBackend(b)
	v, err := state.NewValue(be, "acc", state.Int64Codec)
	if err != nil {
		b.Fatal(err)
	}
	for i, k := range keys {
		be.SetCurrentKey(k, kgs[i])
		if err := v.Set(int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	return be, v
}

// BenchmarkValueState is one keyed access of a value state among 1 Mi
// keys: set the current key, then read or update its value.
func BenchmarkValueState(b *testing.B) {
	b.Run("hashmap/get", func(b *testing.B) {
		be, v := filledValueBackend(b)
		keys, kgs := benchKeySet()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := i & (benchKeys - 1)
			be.SetCurrentKey(keys[k], kgs[k])
			if _, ok, err := v.Get(); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("hashmap/update", func(b *testing.B) {
		be, v := filledValueBackend(b)
		keys, kgs := benchKeySet()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := i & (benchKeys - 1)
			be.SetCurrentKey(keys[k], kgs[k])
			if err := v.Set(int64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// update-after-snapshot is the first write of each key after a
	// checkpoint: the entry is copied, not written in place.
	b.Run("hashmap/update-after-snapshot", func(b *testing.B) {
		be, v := filledValueBackend(b)
		keys, kgs := benchKeySet()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := i & (benchKeys - 1)
			if k == 0 {
				b.StopTimer()
				s, _ := be.Snapshot(state.SnapshotInfo{ID: int64(i)})
				s.Release()
				b.StartTimer()
			}
			be.SetCurrentKey(keys[k], kgs[k])
			if err := v.Set(int64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMapState puts and gets user keys of a map state: 1 Mi entries,
// 16 user keys under each of 64 Ki keys.
func BenchmarkMapState(b *testing.B) {
	const perKey = 16
	keys, kgs := benchKeySet()
	userKeys := make([]string, perKey)
	for j := range userKeys {
		userKeys[j] = string(rune('a' + j))
	}
	fill := func(b *testing.B) (*Backend, *state.Map[string, int64]) {
		be := benchBackend(b)
		m, err := state.NewMap(be, "m", state.StringCodec, state.Int64Codec)
		if err != nil {
			b.Fatal(err)
		}
		for i := range benchKeys / perKey {
			be.SetCurrentKey(keys[i], kgs[i])
			for _, u := range userKeys {
				if err := m.Put(u, int64(i)); err != nil {
					b.Fatal(err)
				}
			}
		}
		return be, m
	}
	b.Run("hashmap/put", func(b *testing.B) {
		be, m := fill(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := (i / perKey) & (benchKeys/perKey - 1)
			be.SetCurrentKey(keys[k], kgs[k])
			if err := m.Put(userKeys[i%perKey], int64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hashmap/get", func(b *testing.B) {
		be, m := fill(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := (i / perKey) & (benchKeys/perKey - 1)
			be.SetCurrentKey(keys[k], kgs[k])
			if _, ok, err := m.Get(userKeys[i%perKey]); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkSnapshot1MKeys is a checkpoint of a value state of 1 Mi keys in
// 128 key groups. "hashmap" is the synchronous part, the task's pause
// (target: at most 30 ms per million keys on the reference machine);
// "hashmap-cow" is that pause plus one write in every key group, which
// clones every key group's map: the copying the pause defers, paid by the
// first write to each key group; "hashmap-write" is the asynchronous part,
// writing the key-group stream.
func BenchmarkSnapshot1MKeys(b *testing.B) {
	b.Run("hashmap", func(b *testing.B) {
		be, _ := filledValueBackend(b)
		b.ResetTimer()
		for i := range b.N {
			s, err := be.Snapshot(state.SnapshotInfo{ID: int64(i)})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			s.Release()
			b.StartTimer()
		}
	})
	b.Run("hashmap-cow", func(b *testing.B) {
		be, v := filledValueBackend(b)
		keys, kgs := benchKeySet()
		first := make([]int, benchMax) // a key of each key group
		for i := len(keys) - 1; i >= 0; i-- {
			first[kgs[i]] = i
		}
		b.ResetTimer()
		for i := range b.N {
			s, err := be.Snapshot(state.SnapshotInfo{ID: int64(i)})
			if err != nil {
				b.Fatal(err)
			}
			for _, k := range first {
				be.SetCurrentKey(keys[k], kgs[k])
				if err := v.Set(int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			s.Release()
			b.StartTimer()
		}
	})
	b.Run("hashmap-write", func(b *testing.B) {
		be, _ := filledValueBackend(b)
		b.ResetTimer()
		for i := range b.N {
			s, err := be.Snapshot(state.SnapshotInfo{ID: int64(i)})
			if err != nil {
				b.Fatal(err)
			}
			h, err := s.Write(context.Background(), io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(h.Size)
			s.Release()
		}
	})
}
