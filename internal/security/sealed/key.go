package sealed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/sluice-dev/sluice/internal/security/filemode"
)

// KeyFileKey is the configuration key naming the cluster's sealing key.
const KeyFileKey = "state.checkpoints.encryption.key-file"

// KeySize is the size of a sealing key: AES-256.
const KeySize = 32

// Key is a cluster's checkpoint sealing key. The zero Key is not usable.
type Key struct {
	k  [KeySize]byte
	id [idSize]byte
}

const idSize = 8

// NewKey makes a Key of exactly KeySize bytes.
func NewKey(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("sealing key: %d bytes, want %d", len(b), KeySize)
	}
	k := &Key{}
	copy(k.k[:], b)
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte("sluice key id"))
	copy(k.id[:], m.Sum(nil))
	return k, nil
}

// ID is the key's public identifier (hex of the first 8 bytes of
// HMAC-SHA256(key, "sluice key id")): written in the clear in every sealed
// file and in _metadata, so a file sealed with another key is reported as
// such rather than as tampered with, and processes can compare keys without
// sending them.
func (k *Key) ID() string { return hex.EncodeToString(k.id[:]) }

// String never shows the key.
func (k *Key) String() string { return "sealing key " + k.ID() }

// geteuid is replaced in tests, to see a file of ours as another user's.
var geteuid = os.Geteuid

// LoadKey reads the key file named by state.checkpoints.encryption.key-file:
// exactly 32 raw bytes (as `head -c 32 /dev/urandom`), a regular file that
// neither group nor others may read or write, owned by the process's user
// or root. The mode is checked on the
// opened file, so a link to a key is judged by the key it reaches.
func LoadKey(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", KeyFileKey, path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", KeyFileKey, path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file: the key must be a file of %d random bytes", KeyFileKey, path, KeySize)
	}
	if perm := st.Mode().Perm(); !filemode.Private(path, st) {
		return nil, fmt.Errorf("%s %s: mode %04o lets group or others access the checkpoint key: run chmod 600 %s (%s)", KeyFileKey, path, perm, path, filemode.Hint)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != geteuid() && sys.Uid != 0 {
		// Another (non-root) user owns the key: they can read and change it
		// whatever its mode.
		return nil, fmt.Errorf("%s %s: owned by uid %d, not by this process's user (%d) or root: another user can read or replace the checkpoint key; chown it to the cluster's user", KeyFileKey, path, sys.Uid, geteuid())
	}
	// A key file is tiny; reading a bounded prefix keeps a wrong path (a
	// large file) from being read whole.
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", KeyFileKey, path, err)
	}
	if len(b) != KeySize {
		hint := ""
		if len(b) == 2*KeySize || len(b) == 2*KeySize+1 {
			hint = " (it looks like hex text: the key is raw bytes)"
		}
		return nil, fmt.Errorf("%s %s: %d bytes, want exactly %d raw bytes%s: create it with head -c %d /dev/urandom > %s && chmod 600 %s",
			KeyFileKey, path, st.Size(), KeySize, hint, KeySize, path, path)
	}
	return NewKey(b)
}
