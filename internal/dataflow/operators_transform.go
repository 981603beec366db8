package dataflow

import (
	"context"
	"fmt"
	"slices"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/traits"
)

// opErr names the operator in an error raised while processing a record.
func opErr(name string, err error) error { return fmt.Errorf("operator %q: %w", name, err) }

type filterOp struct {
	name string
	expr *celExpr
	act  *activation
	next collector
}

func (f *filterOp) collect(r Record) error {
	v, err := f.act.eval(f.expr, r)
	if err != nil {
		return opErr(f.name, err)
	}
	b, ok := v.(types.Bool)
	if !ok {
		return opErr(f.name, fmt.Errorf("filter %q gave %v, want a bool", f.expr.src, v))
	}
	if !b {
		return nil
	}
	return f.next.collect(r)
}

func (f *filterOp) finish() error { return f.next.finish() }
func (f *filterOp) abort()        { f.next.abort() }

type mapOp struct {
	name  string
	exprs []*celExpr
	act   *activation
	out   Record
	next  collector
}

func (m *mapOp) collect(r Record) error {
	for i, e := range m.exprs {
		v, err := m.act.eval(e, r)
		if err != nil {
			return opErr(m.name, err)
		}
		if m.out[i], err = fromCEL(v); err != nil {
			return opErr(m.name, fmt.Errorf("%q: %w", e.src, err))
		}
	}
	return m.next.collect(m.out)
}

func (m *mapOp) finish() error { return m.next.finish() }
func (m *mapOp) abort()        { m.next.abort() }

type flatMapOp struct {
	name   string
	expr   *celExpr
	act    *activation
	fields []string // set: elements are maps with these keys
	out    Record
	next   collector
}

func (f *flatMapOp) collect(r Record) error {
	v, err := f.act.eval(f.expr, r)
	if err != nil {
		return opErr(f.name, err)
	}
	l, err := listOf(v)
	if err != nil {
		return opErr(f.name, fmt.Errorf("%q: %w", f.expr.src, err))
	}
	n, ok := l.Size().(types.Int)
	if !ok {
		return opErr(f.name, fmt.Errorf("%q: list without size", f.expr.src))
	}
	for i := types.Int(0); i < n; i++ {
		el := l.Get(i)
		if f.fields == nil {
			if f.out[0], err = fromCEL(el); err != nil {
				return opErr(f.name, fmt.Errorf("%q element %d: %w", f.expr.src, i, err))
			}
		} else {
			m, ok := el.(traits.Mapper)
			if !ok {
				return opErr(f.name, fmt.Errorf("%q element %d is a %v, want a map with keys %v", f.expr.src, i, el.Type(), f.fields))
			}
			for j, k := range f.fields {
				fv, found := m.Find(types.String(k))
				if !found {
					f.out[j] = Null()
					continue
				}
				if f.out[j], err = fromCEL(fv); err != nil {
					return opErr(f.name, fmt.Errorf("%q element %d key %s: %w", f.expr.src, i, k, err))
				}
			}
		}
		if err := f.next.collect(f.out); err != nil {
			return err
		}
	}
	return nil
}

func (f *flatMapOp) finish() error { return f.next.finish() }
func (f *flatMapOp) abort()        { f.next.abort() }

// keyFunc extracts the key of a key_by from a record of its input.
type keyFunc struct {
	idx  int // field index, or -1 for an expression
	expr *celExpr
	act  *activation
	name string
}

func newKeyFunc(ctx context.Context, kb *opInfo) *keyFunc {
	k := &keyFunc{idx: kb.keyIdx, expr: kb.expr, name: kb.spec.Name}
	if kb.expr != nil {
		k.act = newActivation(ctx, kb.schema)
	}
	return k
}

func (k *keyFunc) key(r Record) (Value, error) {
	if k.idx >= 0 {
		return r[k.idx], nil
	}
	v, err := k.act.eval(k.expr, r)
	if err != nil {
		return Value{}, opErr(k.name, err)
	}
	out, err := fromCEL(v)
	if err != nil {
		return Value{}, opErr(k.name, err)
	}
	return out, nil
}

// aggState is the running aggregate of one key.
type aggState struct {
	key    Value
	count  int64 // records seen
	n      int64 // non-null values folded
	isum   int64
	fsum   float64
	float  bool // a float was summed: the sum is a float
	minmax Value
}

// aggregateOp folds records per key. On bounded input it emits each key's final value when the
// input ends (sorted by key, so output is deterministic); on unbounded input there is no end, so
// it emits the updated value after every record, like Flink's keyed reduce.
type aggregateOp struct {
	name     string
	function string
	field    int
	bounded  bool
	key      *keyFunc
	state    map[string]*aggState
	keyBuf   []byte
	out      Record
	next     collector
}

func (a *aggregateOp) collect(r Record) error {
	k, err := a.key.key(r)
	if err != nil {
		return err
	}
	a.keyBuf = appendValue(a.keyBuf[:0], k)
	st := a.state[string(a.keyBuf)]
	if st == nil {
		st = &aggState{key: k.Clone()} // k may alias the input buffer
		a.state[string(a.keyBuf)] = st
	}
	st.count++
	if a.field >= 0 {
		if err := a.fold(st, r[a.field]); err != nil {
			return opErr(a.name, err)
		}
	}
	if a.bounded {
		return nil
	}
	a.result(st)
	return a.next.collect(a.out)
}

func (a *aggregateOp) fold(st *aggState, v Value) error {
	if v.kind == KindNull {
		return nil
	}
	switch a.function {
	case "sum", "avg":
		switch v.kind {
		case KindInt:
			st.isum += v.AsInt()
			st.fsum += v.AsFloat()
		case KindFloat:
			st.float = true
			st.fsum += v.AsFloat()
		default:
			return fmt.Errorf("%s of a %s value %q", a.function, v.kind, v.Text())
		}
	case "min":
		if st.n == 0 || compareValues(v, st.minmax) < 0 {
			st.minmax = v.Clone()
		}
	case "max":
		if st.n == 0 || compareValues(v, st.minmax) > 0 {
			st.minmax = v.Clone()
		}
	}
	st.n++
	return nil
}

func (a *aggregateOp) result(st *aggState) {
	a.out[0] = st.key
	switch a.function {
	case "count":
		a.out[1] = Int(st.count)
	case "sum":
		if st.float {
			a.out[1] = Float(st.fsum)
		} else {
			a.out[1] = Int(st.isum)
		}
	case "avg":
		if st.n == 0 {
			a.out[1] = Null()
		} else {
			a.out[1] = Float(st.fsum / float64(st.n))
		}
	default:
		if st.n == 0 {
			a.out[1] = Null()
		} else {
			a.out[1] = st.minmax
		}
	}
}

func (a *aggregateOp) finish() error {
	if a.bounded {
		all := make([]*aggState, 0, len(a.state))
		for _, st := range a.state {
			all = append(all, st)
		}
		slices.SortFunc(all, func(x, y *aggState) int { return compareValues(x.key, y.key) })
		for _, st := range all {
			a.result(st)
			if err := a.next.collect(a.out); err != nil {
				return err
			}
		}
	}
	return a.next.finish()
}

func (a *aggregateOp) abort() { a.next.abort() }
