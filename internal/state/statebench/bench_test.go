package statebench

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/hashmap"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
	"github.com/sluice-dev/sluice/internal/state/pebblestate"
	"github.com/sluice-dev/sluice/internal/state/statetest"
)

const (
	benchKeys = 1 << 20 // "1 M keys"
	benchMax  = 128     // pipeline.max-parallelism's default
)

// keySet is 1 Mi keys of 8 bytes with their key groups, built once.
var keySet = func() func() ([][]byte, []int) {
	var keys [][]byte
	var kgs []int
	return func() ([][]byte, []int) {
		if keys == nil {
			keys = make([][]byte, benchKeys)
			kgs = make([]int, benchKeys)
			for i := range keys {
				keys[i] = binary.BigEndian.AppendUint64(nil, uint64(i)*0x9e3779b97f4a7c15)
				kgs[i] = keygroup.Of(keygroup.Hash(keys[i]), benchMax)
			}
		}
		return keys, kgs
	}
}()

func newBackend(b *testing.B, f state.Factory, incremental bool) state.Backend {
	cfg := state.Config{
		Operator: "bench", KeyGroups: state.KeyGroupRange{First: 0, Last: benchMax - 1}, MaxParallelism: benchMax,
		WorkDir: filepath.Join(b.TempDir(), "work"), Incremental: incremental,
	}
	be, err := f.New(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be
}

// filled holds a value state with one int64 for each of the 1 Mi keys.
func filled(b *testing.B, f state.Factory, incremental bool) (state.Backend, *state.Value[int64]) {
	keys, kgs := keySet()
	be := newBackend(b, f, incremental)
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

var backends = []struct {
	name string
	f    state.Factory
}{{"hashmap", hashmap.Factory{}}, {"pebble", pebblestate.Factory{}}}

// BenchmarkValueState is the keyed access of a running aggregate among 1
// Mi keys: set the current key, read its value, write the new one.
func BenchmarkValueState(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st, v := filled(b, be.f, false)
			keys, kgs := keySet()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := (i * 7919) & (benchKeys - 1) // not in insertion order
				st.SetCurrentKey(keys[k], kgs[k])
				n, ok, err := v.Get()
				if !ok || err != nil {
					b.Fatal(ok, err)
				}
				if err := v.Set(n + 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSnapshot1MKeys is one checkpoint of a value state of 1 Mi keys
// in 128 key groups, synchronous and asynchronous parts, written to a
// checkpoint directory: hashmap's key-group stream, pebble's files in
// full, and pebble's incremental checkpoint after 1% of the keys changed
// since the last completed one. It reports the bytes written and the
// synchronous pause.
func BenchmarkSnapshot1MKeys(b *testing.B) {
	type run struct {
		name        string
		f           state.Factory
		incremental bool
	}
	for _, r := range []run{{"hashmap", hashmap.Factory{}, false}, {"pebble-full", pebblestate.Factory{}, false}, {"pebble-incremental", pebblestate.Factory{}, true}} {
		b.Run(r.name, func(b *testing.B) {
			st, v := filled(b, r.f, r.incremental)
			keys, kgs := keySet()
			root := b.TempDir()
			id := int64(0)
			checkpoint := func() (written int64, pause time.Duration) {
				id++
				start := time.Now()
				s, err := st.Snapshot(state.SnapshotInfo{ID: id})
				if err != nil {
					b.Fatal(err)
				}
				pause = time.Since(start)
				defer s.Release()
				dir := &statetest.Dir{Root: root, ID: id}
				if fs, ok := s.(state.FileSnapshot); ok {
					if _, err := fs.WriteFiles(context.Background(), dir, "1-0"); err != nil {
						b.Fatal(err)
					}
				} else {
					w, err := dir.Create("1-0-keyed")
					if err != nil {
						b.Fatal(err)
					}
					if _, err := s.Write(context.Background(), w); err != nil {
						b.Fatal(err)
					}
					if _, err := w.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				st.NotifyCheckpointComplete(id)
				return dir.Written(), pause
			}
			if r.incremental {
				checkpoint() // the base
			}
			var written int64
			var pause time.Duration
			b.ResetTimer()
			for i := range b.N {
				if r.incremental {
					b.StopTimer()
					for k := i % 100; k < benchKeys; k += 100 {
						st.SetCurrentKey(keys[k], kgs[k])
						if err := v.Set(-int64(k)); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
				w, p := checkpoint()
				written += w
				pause += p
			}
			b.ReportMetric(float64(written)/float64(b.N), "bytes/op")
			b.ReportMetric(float64(pause.Microseconds())/1000/float64(b.N), "pause-ms/op")
		})
	}
}
