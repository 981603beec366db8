//go:build unix

package tlsconf

import (
	"os"
	"syscall"
)

// fileID is the inode of fi: a file replaced by rename (as config
// management and Kubernetes do) gets a new one even when its size and
// coarse mtime are unchanged.
func fileID(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
