package state

// Reducing folds the values added for a key and namespace into one with a
// reduce function (Flink's ReducingState).
type Reducing[T any] struct {
	scoped
	c      Codec[T]
	reduce func(a, b T) (T, error)
}

// NewReducing registers a reducing state named name in b.
func NewReducing[T any](b Backend, name string, c Codec[T], reduce func(a, b T) (T, error)) (*Reducing[T], error) {
	s, err := register(b, name, KindReducing)
	if err != nil {
		return nil, err
	}
	return &Reducing[T]{scoped: s, c: c, reduce: reduce}, nil
}

// Get returns the reduced value; ok is false when nothing was added.
func (r *Reducing[T]) Get() (v T, ok bool, err error) {
	b, ok, err := r.b.Get(r.id, r.ns, nil)
	if err != nil || !ok {
		return v, false, r.wrap(err)
	}
	v, err = r.c.Decode(b)
	return v, err == nil, r.wrap(err)
}

// Add folds v into the value.
func (r *Reducing[T]) Add(v T) error {
	cur, ok, err := r.Get()
	if err != nil {
		return err
	}
	if ok {
		if v, err = r.reduce(cur, v); err != nil {
			return r.wrap(err)
		}
	}
	r.buf = r.c.Append(r.buf[:0], v)
	return r.wrap(r.b.Put(r.id, r.ns, nil, r.buf))
}
