//go:build !unix

package filewatch

import "os"

// Inode is 0 where inodes are not available.
func Inode(os.FileInfo) uint64 { return 0 }
