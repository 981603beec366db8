package filemode

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func mountedSecret(path string, fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return false
	}
	groups, _ := os.Getgroups()
	groups = append(groups, os.Getegid())
	return owner{
		uid: st.Uid, gid: st.Gid, perm: fi.Mode().Perm(),
		procUID: os.Geteuid(), procGIDs: groups,
		readOnlyF: sfs.Flags&unix.ST_RDONLY != 0,
	}.accepted()
}
