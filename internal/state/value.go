package state

// Value is one value per key and namespace (Flink's ValueState).
type Value[T any] struct {
	scoped
	c Codec[T]
}

// NewValue registers a value state named name in b.
func NewValue[T any](b Backend, name string, c Codec[T]) (*Value[T], error) {
	s, err := register(b, name, KindValue)
	if err != nil {
		return nil, err
	}
	return &Value[T]{scoped: s, c: c}, nil
}

// Get returns the current key's value; ok is false when it has none.
func (v *Value[T]) Get() (val T, ok bool, err error) {
	b, ok, err := v.b.Get(v.id, v.ns, nil)
	if err != nil || !ok {
		return val, false, v.wrap(err)
	}
	val, err = v.c.Decode(b)
	return val, err == nil, v.wrap(err)
}

// Set replaces the current key's value.
func (v *Value[T]) Set(val T) error {
	v.buf = v.c.Append(v.buf[:0], val)
	return v.wrap(v.b.Put(v.id, v.ns, nil, v.buf))
}
