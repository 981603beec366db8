package state

// List is a list of values per key and namespace (Flink's ListState).
type List[T any] struct {
	scoped
	c Codec[T]
}

// NewList registers a list state named name in b.
func NewList[T any](b Backend, name string, c Codec[T]) (*List[T], error) {
	s, err := register(b, name, KindList)
	if err != nil {
		return nil, err
	}
	return &List[T]{scoped: s, c: c}, nil
}

// Get returns the current key's elements in the order they were added
// (nil when it has none).
func (l *List[T]) Get() ([]T, error) {
	var out []T
	err := l.b.Iterate(l.id, l.ns, func(_, e []byte) error {
		v, err := l.c.Decode(e)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, l.wrap(err)
}

// Add appends one element.
func (l *List[T]) Add(v T) error {
	l.buf = l.c.Append(l.buf[:0], v)
	return l.wrap(l.b.Append(l.id, l.ns, l.buf))
}

// Update replaces the elements; an empty list clears the state.
func (l *List[T]) Update(vs []T) error {
	if len(vs) == 0 {
		return l.Clear()
	}
	l.buf = l.buf[:0]
	var elem []byte
	for _, v := range vs {
		elem = l.c.Append(elem[:0], v)
		l.buf = AppendElement(l.buf, elem)
	}
	return l.wrap(l.b.Put(l.id, l.ns, nil, l.buf))
}
