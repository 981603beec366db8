//go:build !unix

package tlsconf

import "os"

// fileID is 0 where inodes are not available.
func fileID(os.FileInfo) uint64 { return 0 }
