package dataflow

import (
	"context"
	"math"
	"strconv"
	"time"
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
	return Schema{{"id", KindInt}, {"key", KindString}, {"value", KindInt}}, nil
}

// Access implements Definition: a generator touches nothing outside.
func (g *GeneratorOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (g *GeneratorOptions) NewOperator() Operator { return &generatorSource{opts: g} }

// generatorBatch is how many records one Poll emits at most: the task checks for
// cancellation and mail between two batches.
const generatorBatch = 256

// generatorSource divides the ids into S = max-parallelism splits, split k holding the ids
// k, k+S, k+2S, ..., and emits the ids of the subtask's contiguous range of splits [F, L] in
// increasing order: F, F+1, ..., L, S+F, ... So the subtasks together emit each id once at any
// parallelism, and one subtask emits 0, 1, 2, ...
type generatorSource struct {
	NoInput
	opts        *GeneratorOptions
	count, keys int64
	rate        float64  // per subtask
	splits      int64    // S
	first, last int64    // the subtask's splits
	keyNames    []string // precomputed "key-N" to avoid formatting per record
	out         Output

	id, n int64 // the next id, and how many were emitted
	done  bool  // the last id was emitted
	start time.Time
	rec   Record
	el    Element

	// Pacing: when ahead of its rate, Poll answers PollIdle and a timer makes Available
	// ready at the next record's due time.
	timer *time.Timer
	ready chan struct{}
}

func (g *generatorSource) Open(_ context.Context, rc *RuntimeContext) error {
	o := g.opts
	own := rc.Splits()
	g.count, g.keys, g.splits = o.Count, o.Keys, int64(rc.maxParallelism())
	g.first, g.last = int64(own.First), int64(own.Last)
	g.out, g.id = rc.Output, g.first
	if o.Rate > 0 {
		// The subtask's share of the ids is its share of the splits.
		g.rate = o.Rate * float64(own.Len()) / float64(g.splits)
		g.ready = make(chan struct{}, 1)
	}
	if g.keys <= 1<<16 {
		g.keyNames = make([]string, g.keys)
		for i := range g.keyNames {
			g.keyNames[i] = "key-" + strconv.Itoa(i)
		}
	}
	g.rec = make(Record, 3)
	g.el.Record = g.rec
	g.start = time.Now()
	return nil
}

// Poll implements Source.
func (g *generatorSource) Poll(context.Context) (PollStatus, error) {
	for range generatorBatch {
		if g.done || (g.count != 0 && g.id >= g.count) {
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
		k := g.id % g.keys
		var key string
		if g.keyNames != nil {
			key = g.keyNames[k]
		} else {
			key = "key-" + strconv.FormatInt(k, 10)
		}
		g.rec[0], g.rec[1], g.rec[2] = Int(g.id), String(key), Int(g.id)
		if err := g.out.Collect(&g.el); err != nil {
			return PollEnd, err
		}
		g.n++
		g.advance()
	}
	return PollMore, nil
}

// advance moves id to the subtask's next id: the next split in its range, or the first split
// of the range in the next round of S.
func (g *generatorSource) advance() {
	step := int64(1)
	if g.id%g.splits == g.last {
		step = g.splits - (g.last - g.first)
	}
	if g.id > math.MaxInt64-step {
		g.done = true
		return
	}
	g.id += step
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
