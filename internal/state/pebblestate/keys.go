package pebblestate

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/internal/state"
)

// Keys of state entries (docs/architecture.md §5.3):
//
//	key group (u16 BE) | state id (u16 BE) | uvarint len | key | uvarint len | namespace | user key
//
// The key group leads, so that a key group's entries, and a range of key
// groups, are one contiguous range of the database: restoring at another
// parallelism iterates ranges, never the whole database. Lengths make the
// prefix of (key, namespace) unambiguous, so a map's user keys are exactly
// the keys under that prefix.
//
// The backend's own records sit under the key group 0xFFFF, above every key
// group (pipeline.max-parallelism is at most 32768), outside every range a
// snapshot or restore iterates.

const metaGroup = 0xFFFF

// statesKey holds the registry of states: their ids are in every key, so a
// database restored alone, or copied into another backend at a rescale,
// needs it to know what the ids are.
var statesKey = append(groupKey(metaGroup), 0, 1)

// appendPrefix appends the key of (key, ns) in state id and key group kg:
// a value-like state's entry, or the prefix of a map's entries.
func appendPrefix(dst []byte, kg int, id state.ID, key, ns []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(kg))
	dst = binary.BigEndian.AppendUint16(dst, uint16(id))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(ns)))
	return append(dst, ns...)
}

// groupKey is the first key of key group kg (and, for kg = Last+1, the
// bound after a range).
func groupKey(kg int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(kg)) }

// stateKey is the first key of state id in key group kg.
func stateKey(kg int, id state.ID) []byte {
	return binary.BigEndian.AppendUint16(groupKey(kg), uint16(id))
}

// prefixEnd is the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xFF: no bound
}

// parsedKey is an entry's key split into its fields, which alias the key.
type parsedKey struct {
	kg      int
	id      state.ID
	key, ns []byte
	userKey []byte
}

var errBadKey = errors.New("malformed state key")

func parseKey(k []byte) (parsedKey, error) {
	var p parsedKey
	if len(k) < 4 {
		return p, errBadKey
	}
	p.kg = int(binary.BigEndian.Uint16(k))
	p.id = state.ID(binary.BigEndian.Uint16(k[2:]))
	rest := k[4:]
	for _, f := range []*[]byte{&p.key, &p.ns} {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return p, errBadKey
		}
		*f = rest[w : w+int(n)]
		rest = rest[w+int(n):]
	}
	p.userKey = rest
	return p, nil
}

// withID rewrites the state id of an entry's key (a restore maps the ids
// of the snapshot to the backend's).
func withID(dst, k []byte, id state.ID) []byte {
	dst = append(dst[:0], k...)
	binary.BigEndian.PutUint16(dst[2:], uint16(id))
	return dst
}

// encodeStates is the registry's value: uvarint count, then per state
// uvarint id, uvarint len, name, u8 kind.
func encodeStates(states []state.StateInfo) []byte {
	b := binary.AppendUvarint(nil, uint64(len(states)))
	for _, s := range states {
		b = binary.AppendUvarint(b, uint64(s.ID))
		b = binary.AppendUvarint(b, uint64(len(s.Name)))
		b = append(b, s.Name...)
		b = append(b, byte(s.Kind))
	}
	return b
}

func decodeStates(b []byte) ([]state.StateInfo, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > state.MaxStates {
		return nil, fmt.Errorf("state registry: bad count")
	}
	b = b[w:]
	out := make([]state.StateInfo, 0, min(n, 64))
	ids := map[state.ID]bool{}
	names := map[string]bool{}
	for range n {
		id, w := binary.Uvarint(b)
		if w <= 0 || id == 0 || id > state.MaxStates {
			return nil, fmt.Errorf("state registry: bad state id")
		}
		b = b[w:]
		l, w := binary.Uvarint(b)
		if w <= 0 || l == 0 || l > state.MaxNameLen || l >= uint64(len(b)-w) {
			return nil, fmt.Errorf("state registry: bad state name")
		}
		s := state.StateInfo{ID: state.ID(id), Name: string(b[w : w+int(l)]), Kind: state.Kind(b[w+int(l)])}
		b = b[w+int(l)+1:]
		if !s.Kind.Valid() || ids[s.ID] || names[s.Name] {
			return nil, fmt.Errorf("state registry: state %q: bad kind or declared twice", s.Name)
		}
		ids[s.ID], names[s.Name] = true, true
		out = append(out, s)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("state registry: data after the last state")
	}
	return out, nil
}
