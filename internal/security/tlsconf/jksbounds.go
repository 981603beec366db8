package tlsconf

import (
	"encoding/binary"
	"errors"
)

// checkJKSBounds walks a JKS file's structure and checks every length
// against the bytes that are really there. keystore-go allocates what a
// length field says before reading, so a corrupt 4-byte length would
// otherwise ask for 4 GiB.
func checkJKSBounds(data []byte) error {
	errTrunc := errors.New("truncated or corrupt JKS store")
	r := data
	u16 := func() (int, bool) {
		if len(r) < 2 {
			return 0, false
		}
		v := binary.BigEndian.Uint16(r)
		r = r[2:]
		return int(v), true
	}
	u32 := func() (uint32, bool) {
		if len(r) < 4 {
			return 0, false
		}
		v := binary.BigEndian.Uint32(r)
		r = r[4:]
		return v, true
	}
	skip := func(n uint64) bool {
		if uint64(len(r)) < n {
			return false
		}
		r = r[n:]
		return true
	}
	blob := func() bool { n, ok := u32(); return ok && skip(uint64(n)) }
	str := func() bool { n, ok := u16(); return ok && skip(uint64(n)) }
	if !skip(4) { // magic
		return errTrunc
	}
	version, ok := u32()
	if !ok {
		return errTrunc
	}
	cert := func() bool {
		if version == 2 && !str() {
			return false
		}
		return blob()
	}
	count, ok := u32()
	if !ok {
		return errTrunc
	}
	for i := uint32(0); i < count; i++ {
		tag, ok := u32()
		if !ok || !str() || !skip(8) { // alias, creation time
			return errTrunc
		}
		switch tag {
		case 1: // private key entry
			if !blob() {
				return errTrunc
			}
			n, ok := u32()
			if !ok {
				return errTrunc
			}
			for j := uint32(0); j < n; j++ {
				if !cert() {
					return errTrunc
				}
			}
		case 2: // trusted certificate entry
			if !cert() {
				return errTrunc
			}
		default:
			return errTrunc
		}
	}
	if len(r) != 20 { // SHA-1 digest
		return errTrunc
	}
	return nil
}
