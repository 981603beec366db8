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
func (g *GeneratorOptions) NewOperator() Operator {
	return sourced(func(rc *RuntimeContext) source { return newGenerator(g, rc.Subtask, rc.Parallelism) })
}

// generatorSource emits ids subtask, subtask+p, ... so the subtasks together emit each id once.
type generatorSource struct {
	count, keys  int64
	rate         float64 // per subtask
	subtask, par int64
	keyNames     []string // precomputed "key-N" to avoid formatting per record
}

func newGenerator(o *GeneratorOptions, subtask, par int) *generatorSource {
	g := &generatorSource{count: o.Count, keys: o.Keys, subtask: int64(subtask), par: int64(par)}
	if o.Rate > 0 {
		g.rate = o.Rate / float64(par)
	}
	if g.keys <= 1<<16 {
		g.keyNames = make([]string, g.keys)
		for i := range g.keyNames {
			g.keyNames[i] = "key-" + strconv.Itoa(i)
		}
	}
	return g
}

func (g *generatorSource) run(ctx context.Context, out collector) error {
	rec := make(Record, 3)
	start := time.Now()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var n int64
	for id := g.subtask; g.count == 0 || id < g.count; id += g.par {
		if n&255 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if g.rate > 0 {
			// Pace against the start time rather than sleeping per record, so timer slack
			// does not accumulate; sleeping only when 2 ms ahead keeps timer calls rare.
			due := start.Add(time.Duration(float64(n) / g.rate * float64(time.Second)))
			if wait := time.Until(due); wait > 2*time.Millisecond {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			}
		}
		k := id % g.keys
		var key string
		if g.keyNames != nil {
			key = g.keyNames[k]
		} else {
			key = "key-" + strconv.FormatInt(k, 10)
		}
		rec[0], rec[1], rec[2] = Int(id), String(key), Int(id)
		if err := out.collect(rec); err != nil {
			return err
		}
		n++
		if id > math.MaxInt64-g.par {
			break
		}
	}
	return out.finish()
}
