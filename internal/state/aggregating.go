package state

// Aggregator folds inputs into an accumulator and derives a result from it
// (Flink's AggregateFunction).
type Aggregator[In, Acc, Out any] interface {
	Create() Acc
	Add(acc Acc, in In) (Acc, error)
	Result(acc Acc) Out
}

// Aggregating keeps an accumulator per key and namespace (Flink's
// AggregatingState).
type Aggregating[In, Acc, Out any] struct {
	scoped
	c Codec[Acc]
	a Aggregator[In, Acc, Out]
}

// NewAggregating registers an aggregating state named name in b; c encodes
// the accumulator.
func NewAggregating[In, Acc, Out any](b Backend, name string, c Codec[Acc], a Aggregator[In, Acc, Out]) (*Aggregating[In, Acc, Out], error) {
	s, err := register(b, name, KindAggregating)
	if err != nil {
		return nil, err
	}
	return &Aggregating[In, Acc, Out]{scoped: s, c: c, a: a}, nil
}

func (g *Aggregating[In, Acc, Out]) acc() (acc Acc, ok bool, err error) {
	b, ok, err := g.b.Get(g.id, g.ns, nil)
	if err != nil || !ok {
		return acc, false, g.wrap(err)
	}
	acc, err = g.c.Decode(b)
	return acc, err == nil, g.wrap(err)
}

// Get returns the result of the accumulator; ok is false when nothing was added.
func (g *Aggregating[In, Acc, Out]) Get() (out Out, ok bool, err error) {
	acc, ok, err := g.acc()
	if err != nil || !ok {
		return out, false, err
	}
	return g.a.Result(acc), true, nil
}

// Add folds in into the accumulator, creating it first if needed.
func (g *Aggregating[In, Acc, Out]) Add(in In) error {
	acc, ok, err := g.acc()
	if err != nil {
		return err
	}
	if !ok {
		acc = g.a.Create()
	}
	if acc, err = g.a.Add(acc, in); err != nil {
		return g.wrap(err)
	}
	g.buf = g.c.Append(g.buf[:0], acc)
	return g.wrap(g.b.Put(g.id, g.ns, nil, g.buf))
}
