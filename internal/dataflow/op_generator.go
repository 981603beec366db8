package dataflow

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/internal/state"
)

// TypeGenerator emits (id, key, value) records: a source for tests and benchmarks.
const TypeGenerator = "generator"

func init() {
	Register(OperatorType{Name: TypeGenerator, New: func() Definition { return new(GeneratorOptions) }})
}

// GeneratorOptions are the options of a generator.
type GeneratorOptions struct {
	Count int64   `yaml:"count"` // 0: unbounded
	Rate  float64 `yaml:"rate"`  // records a second over all subtasks; 0: unlimited
	Keys  int64   `yaml:"keys"`  // distinct keys; 0 means 10
}

// Check implements Definition.
func (g *GeneratorOptions) Check(op *OperatorSpec) (Shape, error) {
	if g.Count < 0 {
		return Shape{}, op.errf("count", "must be >= 0 (0 = unbounded)")
	}
	if g.Rate < 0 {
		return Shape{}, op.errf("rate", "must be >= 0 (0 = unlimited)")
	}
	if g.Keys < 0 {
		return Shape{}, op.errf("keys", "must be >= 1")
	}
	if g.Keys == 0 {
		g.Keys = 10
	}
	return Shape{Bounded: g.Count > 0}, nil
}

// Plan implements Definition.
func (g *GeneratorOptions) Plan(*PlanContext) (Schema, error) {
	return Schema{{Name: "id", Kind: KindInt}, {Name: "key", Kind: KindString}, {Name: "value", Kind: KindInt}}, nil
}

// Access implements Definition: a generator touches nothing outside.
func (g *GeneratorOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (g *GeneratorOptions) NewOperator() Operator { return &generatorSource{opts: g} }

// generatorBatch is how many records one Poll emits at most: the task checks for
// cancellation and mail between two batches.
const generatorBatch = 256

// generatorSplits is the name of the generator's split list state: one entry per split it
// reads, (split, S, next id), so that splits move whole when a job is restored at another
// parallelism.
const generatorSplits = "splits"

// generatorSource divides the ids into S = max-parallelism splits, split k holding the ids
// k, k+S, k+2S, ..., and emits the ids of its splits round-robin over the splits in order:
// on a fresh start its contiguous range [F, L] gives F, F+1, ..., L, S+F, ..., increasing
// ids. So the subtasks together emit each id once at any parallelism, one subtask emits 0,
// 1, 2, ..., and a restored subtask resumes each split it is given at that split's next id.
type generatorSource struct {
	NoInput
	opts     *GeneratorOptions
	count    int64
	keys     int64
	rate     float64  // per subtask
	splits   int64    // S
	keyNames []string // precomputed "key-N" to avoid formatting per record
	out      Output
	list     *state.ListState

	own  []genSplit // the splits read, in split order
	cur  int        // the split whose id comes next
	live int        // splits not yet exhausted
	n    int64      // records emitted by this subtask in this run, for pacing

	start time.Time
	rec   Record
	el    Element

	// Pacing: when ahead of its rate, Poll answers PollIdle and a timer makes Available
	// ready at the next record's due time.
	timer *time.Timer
	ready chan struct{}
}

// genSplit is one split and the next id it emits; done once it has no more.
type genSplit struct {
	split, next int64
	done        bool
}

func (g *generatorSource) Open(_ context.Context, rc *RuntimeContext) error {
	o := g.opts
	g.count, g.keys, g.splits = o.Count, o.Keys, int64(rc.maxParallelism())
	g.out = rc.Output
	list, err := rc.ListState(generatorSplits, state.Split)
	if err != nil {
		return err
	}
	g.list = list
	if rc.restoredList(generatorSplits) {
		for _, e := range list.Entries() {
			sp, err := decodeSplitPosition(e, g.splits, 1)
			if err != nil {
				return fmt.Errorf("restore from checkpoint %d: %w", rc.Restored, err)
			}
			g.own = append(g.own, genSplit{split: sp.split, next: sp.pos[0]})
		}
		slices.SortFunc(g.own, func(a, b genSplit) int { return cmp.Compare(a.split, b.split) })
	} else {
		own := rc.Splits()
		for k := int64(own.First); k <= int64(own.Last); k++ {
			g.own = append(g.own, genSplit{split: k, next: k})
		}
	}
	for i := range g.own {
		sp := &g.own[i]
		sp.done = g.count != 0 && sp.next >= g.count
		if !sp.done {
			g.live++
		}
	}
	if o.Rate > 0 {
		// The subtask's share of the ids is its share of the splits.
		g.rate = o.Rate * float64(len(g.own)) / float64(g.splits)
		g.ready = make(chan struct{}, 1)
	}
	if g.keys <= 1<<16 {
		g.keyNames = make([]string, g.keys)
		for i := range g.keyNames {
			g.keyNames[i] = "key-" + strconv.Itoa(i)
		}
	}
	g.rec = make(Record, 3)
	g.el = Element{Record: g.rec, Timestamp: NoTimestamp}
	g.start = time.Now()
	return nil
}

// Poll implements Source.
func (g *generatorSource) Poll(context.Context) (PollStatus, error) {
	for range generatorBatch {
		if g.live == 0 {
			return PollEnd, nil
		}
		if g.rate > 0 {
			// Pace against the start time rather than sleeping per record, so timer slack
			// does not accumulate; waiting only when 2 ms ahead keeps timer calls rare.
			due := g.start.Add(time.Duration(float64(g.n) / g.rate * float64(time.Second)))
			if wait := time.Until(due); wait > 2*time.Millisecond {
				g.wakeAfter(wait)
				return PollIdle, nil
			}
		}
		for g.own[g.cur].done {
			g.cur = (g.cur + 1) % len(g.own)
		}
		sp := &g.own[g.cur]
		id := sp.next
		k := id % g.keys
		var key string
		if g.keyNames != nil {
			key = g.keyNames[k]
		} else {
			key = "key-" + strconv.FormatInt(k, 10)
		}
		g.rec[0], g.rec[1], g.rec[2] = Int(id), String(key), Int(id)
		if err := g.out.Collect(&g.el); err != nil {
			return PollEnd, err
		}
		g.n++
		if id > math.MaxInt64-g.splits || (g.count != 0 && id+g.splits >= g.count) {
			sp.done = true
			g.live--
		} else {
			sp.next = id + g.splits
		}
		if g.cur++; g.cur == len(g.own) {
			g.cur = 0
		}
	}
	return PollMore, nil
}

// SnapshotState implements Snapshotter: one entry per split, its next id (an exhausted
// split keeps the id after its last, so it stays exhausted after a restore).
func (g *generatorSource) SnapshotState(CheckpointInfo) (func(context.Context) error, error) {
	entries := make([][]byte, len(g.own))
	for i, sp := range g.own {
		next := sp.next
		if sp.done {
			next = math.MaxInt64
		}
		entries[i] = appendSplitPosition(nil, sp.split, g.splits, next)
	}
	g.list.Update(entries)
	return nil, nil
}

// wakeAfter makes Available ready after d.
func (g *generatorSource) wakeAfter(d time.Duration) {
	if g.timer == nil {
		g.timer = time.AfterFunc(d, func() {
			select {
			case g.ready <- struct{}{}:
			default:
			}
		})
		return
	}
	g.timer.Reset(d)
}

// Available implements Source: ready when a paced generator's next record is due.
func (g *generatorSource) Available() <-chan struct{} { return g.ready }

func (g *generatorSource) Finish() error { return nil }

func (g *generatorSource) Close() error {
	if g.timer != nil {
		g.timer.Stop()
	}
	return nil
}
