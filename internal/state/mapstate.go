package state

// Map is a map per key and namespace (Flink's MapState).
type Map[K, V any] struct {
	scoped
	kc   Codec[K]
	vc   Codec[V]
	kbuf []byte
}

// NewMap registers a map state named name in b.
func NewMap[K, V any](b Backend, name string, kc Codec[K], vc Codec[V]) (*Map[K, V], error) {
	s, err := register(b, name, KindMap)
	if err != nil {
		return nil, err
	}
	return &Map[K, V]{scoped: s, kc: kc, vc: vc}, nil
}

// Get returns the value under k; ok is false when there is none.
func (m *Map[K, V]) Get(k K) (v V, ok bool, err error) {
	m.kbuf = m.kc.Append(m.kbuf[:0], k)
	b, ok, err := m.b.Get(m.id, m.ns, m.kbuf)
	if err != nil || !ok {
		return v, false, m.wrap(err)
	}
	v, err = m.vc.Decode(b)
	return v, err == nil, m.wrap(err)
}

// Put sets the value under k.
func (m *Map[K, V]) Put(k K, v V) error {
	m.kbuf = m.kc.Append(m.kbuf[:0], k)
	m.buf = m.vc.Append(m.buf[:0], v)
	return m.wrap(m.b.Put(m.id, m.ns, m.kbuf, m.buf))
}

// Delete removes k.
func (m *Map[K, V]) Delete(k K) error {
	m.kbuf = m.kc.Append(m.kbuf[:0], k)
	return m.wrap(m.b.Delete(m.id, m.ns, m.kbuf))
}

// Range calls fn for each entry, in no particular order, until fn returns an
// error. fn must not modify the map.
func (m *Map[K, V]) Range(fn func(K, V) error) error {
	return m.wrap(m.b.Iterate(m.id, m.ns, func(uk, ub []byte) error {
		k, err := m.kc.Decode(uk)
		if err != nil {
			return err
		}
		v, err := m.vc.Decode(ub)
		if err != nil {
			return err
		}
		return fn(k, v)
	}))
}
