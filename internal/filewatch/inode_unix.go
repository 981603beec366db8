//go:build unix

package filewatch

import (
	"os"
	"syscall"
)

// Inode is the inode number of fi: a file replaced by rename (as config
// management and Kubernetes do) gets a new one even when its size and
// coarse modification time are unchanged.
func Inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
