package state

import "fmt"

// scoped is what every typed state has: its backend, id, name and the
// namespace its accesses use.
type scoped struct {
	b    Backend
	id   ID
	name string
	ns   []byte
	buf  []byte // encoding scratch: backends do not retain what they are given
}

func register(b Backend, name string, kind Kind) (scoped, error) {
	id, err := b.Register(name, kind)
	if err != nil {
		return scoped{}, err
	}
	return scoped{b: b, id: id, name: name}, nil
}

// SetNamespace scopes the following accesses to ns (a window, say); nil is
// the default namespace.
func (s *scoped) SetNamespace(ns []byte) { s.ns = append(s.ns[:0], ns...) }

// Clear removes the state of the current key in the current namespace.
func (s *scoped) Clear() error { return s.wrap(s.b.Clear(s.id, s.ns)) }

// ID is the state's id in its backend.
func (s *scoped) ID() ID { return s.id }

func (s *scoped) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("state %q: %w", s.name, err)
}
