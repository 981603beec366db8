package dataflow

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// keyProbe is a keyed operator recording, for every record, its CurrentKey, the backend's
// current key and the key group of that key.
type keyProbe struct {
	rc   *RuntimeContext
	seen *[]probeSeen
}

type probeSeen struct {
	subtask   int
	key       string // CurrentKey().Text()
	record    string // the record's key field
	keyBytes  []byte
	keyGroup  int
	stateless bool // KeyedState() was nil
}

func (k *keyProbe) Open(_ context.Context, rc *RuntimeContext) error { k.rc = rc; return nil }
func (k *keyProbe) Process(_ int, e *Element) error {
	b := k.rc.KeyedState()
	s := probeSeen{subtask: k.rc.Subtask, key: k.rc.CurrentKey().Text(), record: e.Record[1].Text(), stateless: b == nil}
	if b != nil {
		s.keyBytes = append([]byte(nil), b.CurrentKey()...)
		s.keyGroup = keygroup.Of(keygroup.Hash(s.keyBytes), k.rc.MaxParallelism)
	}
	*k.seen = append(*k.seen, s)
	return nil
}
func (k *keyProbe) Finish() error { return nil }
func (k *keyProbe) Close() error  { return nil }

// TestKeyedOperatorCurrentKey: a keyed operator (an aggregate's plan with a probe operator in
// its place) sees, before each Process, CurrentKey equal to the record's key, and the backend's
// current key is the key's encoding, whose key group is within the subtask's range.
func TestKeyedOperatorCurrentKey(t *testing.T) {
	for _, m := range []int{7, 128} {
		for p := 1; p <= 4; p++ {
			spec := "name: j\noperators:\n  - {name: g, type: generator, count: 200, keys: 31}\n" +
				"  - {name: k, type: key_by, input: g, key: key}\n" +
				"  - {name: a, type: aggregate, input: k, function: count}\n"
			pl := planMax(t, spec, p, m)
			var seen []probeSeen
			for _, oi := range pl.ops {
				if oi.spec.Name == "a" {
					oi.def = probeDef{oi.def, &seen}
				}
			}
			for st := range p {
				seen = seen[:0]
				var gate localGateFromGenerator
				gate.init(t, pl, st, p, m)
				if err := pl.RunSubtask(context.Background(), 1, st, TaskIO{Input: &gate}); err != nil {
					t.Fatal(err)
				}
				r := keygroup.RangeOf(st, p, m)
				for _, s := range seen {
					if s.stateless || s.key != s.record || string(s.keyBytes) != string(appendValue(nil, String(s.record))) || !r.Contains(s.keyGroup) {
						t.Fatalf("max %d p %d subtask %d: %+v (range %v)", m, p, st, s, r)
					}
				}
				if len(seen) != gate.sent {
					t.Fatalf("max %d p %d subtask %d: probe saw %d records, gate sent %d", m, p, st, len(seen), gate.sent)
				}
			}
		}
	}
}

// probeDef plans as the aggregate it wraps but runs a keyProbe.
type probeDef struct {
	Definition
	seen *[]probeSeen
}

func (d probeDef) NewOperator() Operator { return &keyProbe{seen: d.seen} }

// localGateFromGenerator delivers to one subtask the generator records whose key the hash edge
// routes to it, then END_OF_DATA.
type localGateFromGenerator struct {
	noBlocking
	recs [][]byte
	sent int
	n    int
}

func (g *localGateFromGenerator) init(t *testing.T, _ *Plan, subtask, p, m int) {
	for i := range 200 {
		key := "key-" + fmt.Sprint(i%31)
		if keyTarget(appendValue(nil, String(key)), p, m) == subtask {
			g.recs = append(g.recs, AppendRecord(nil, Record{Int(int64(i)), String(key), Int(int64(i))}))
		}
	}
	g.sent = len(g.recs)
}

func (g *localGateFromGenerator) NextDelivery(context.Context, <-chan struct{}) (event.Delivery, error) {
	return tailDelivery(&g.n, len(g.recs), false, func(k int) []byte { return g.recs[k] })
}

func (g *localGateFromGenerator) Channels() int { return 1 }
