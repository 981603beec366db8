package dataflow

import (
	"context"
	"strconv"
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

// generatorSource emits (id, key-(id mod keys), id) for the ids of its splits, as
// numberedSource divides them.
type generatorSource struct {
	numberedSource
	opts     *GeneratorOptions
	keys     int64
	keyNames []string // precomputed "key-N" to avoid formatting per record
	out      Output
	rec      Record
	el       Element
}

func (g *generatorSource) Open(_ context.Context, rc *RuntimeContext) error {
	o := g.opts
	if err := g.open(rc, o.Count, o.Rate); err != nil {
		return err
	}
	g.keys, g.out = o.Keys, rc.Output
	if g.keys <= 1<<16 {
		g.keyNames = make([]string, g.keys)
		for i := range g.keyNames {
			g.keyNames[i] = "key-" + strconv.Itoa(i)
		}
	}
	g.rec = make(Record, 3)
	g.el = Element{Record: g.rec, Timestamp: NoTimestamp}
	return nil
}

// Poll implements Source.
func (g *generatorSource) Poll(context.Context) (PollStatus, error) { return g.poll(g.emit) }

// emit emits record id.
func (g *generatorSource) emit(id int64) error {
	k := id % g.keys
	var key string
	if g.keyNames != nil {
		key = g.keyNames[k]
	} else {
		key = "key-" + strconv.FormatInt(k, 10)
	}
	g.rec[0], g.rec[1], g.rec[2] = Int(id), String(key), Int(id)
	return g.out.Collect(&g.el)
}
