package dataflow

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// rescopingProbe records the backend's current key for every record, then scopes the backend
// to another key, as an operator reading other keys' state (the aggregate's Finish) does.
type rescopingProbe struct {
	rc   *RuntimeContext
	seen *[]probeSeen
}

func (k *rescopingProbe) Open(_ context.Context, rc *RuntimeContext) error { k.rc = rc; return nil }
func (k *rescopingProbe) Process(_ int, e *Element) error {
	b := k.rc.KeyedState()
	kb := append([]byte(nil), b.CurrentKey()...)
	*k.seen = append(*k.seen, probeSeen{record: e.Record[1].Text(), keyBytes: kb,
		keyGroup: keygroup.Of(keygroup.Hash(kb), k.rc.MaxParallelism)})
	if e.Record[0].AsInt()%2 == 0 {
		other := appendValue(nil, String("elsewhere"))
		b.SetCurrentKey(other, keygroup.Of(keygroup.Hash(other), k.rc.MaxParallelism))
	}
	return nil
}
func (k *rescopingProbe) Finish() error { return nil }
func (k *rescopingProbe) Close() error  { return nil }

type rescopingDef struct {
	Definition
	seen *[]probeSeen
}

func (d rescopingDef) NewOperator() Operator { return &rescopingProbe{seen: d.seen} }

// runGate delivers runs of records of one key, so that the task sees the same key again and
// again (the case where it does not rescope the backend), then END_OF_DATA.
type runGate struct {
	noBlocking
	recs [][]byte
	n    int
}

func (g *runGate) NextDelivery(context.Context, <-chan struct{}) (event.Delivery, error) {
	return tailDelivery(&g.n, len(g.recs), false, func(k int) []byte { return g.recs[k] })
}

func (g *runGate) Channels() int { return 1 }

// TestKeyedRunsOfOneKey: records of one key in a row keep the backend on that key, even when
// the operator scoped the backend to another key in between; and a new key rescopes it.
func TestKeyedRunsOfOneKey(t *testing.T) {
	spec := "name: j\noperators:\n  - {name: g, type: generator, count: 200, keys: 31}\n" +
		"  - {name: k, type: key_by, input: g, key: key}\n" +
		"  - {name: a, type: aggregate, input: k, function: count}\n"
	pl := planMax(t, spec, 1, 128)
	var seen []probeSeen
	for _, oi := range pl.ops {
		if oi.spec.Name == "a" {
			oi.def = rescopingDef{oi.def, &seen}
		}
	}
	var gate runGate
	for i := range 60 {
		key := fmt.Sprint("key-", (i/4)%5) // runs of 4, keys coming back later
		gate.recs = append(gate.recs, AppendRecord(nil, Record{Int(int64(i)), String(key), Int(int64(i))}))
	}
	if err := pl.RunSubtask(context.Background(), 1, 0, TaskIO{Input: &gate}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(gate.recs) {
		t.Fatalf("probe saw %d records, gate sent %d", len(seen), len(gate.recs))
	}
	for i, s := range seen {
		want := appendValue(nil, String(s.record))
		if string(s.keyBytes) != string(want) || s.keyGroup != keygroup.Of(keygroup.Hash(want), 128) {
			t.Fatalf("record %d of key %s: backend on key %q (key group %d), want %q", i, s.record, s.keyBytes, s.keyGroup, want)
		}
	}
}
