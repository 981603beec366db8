// Package filemode decides whether a file holding a secret (a key, a
// keytab, a token) is private enough to use.
//
// A secret file must not be readable by group or others: whoever reads it
// holds the secret. One exception is made, for Kubernetes: a Secret volume
// of a pod with an fsGroup (what a non-root container needs to read its
// Secrets at all) is written by the kubelet owned by root, group fsGroup,
// with the group-read bit added to the Secret's mode (0400 becomes 0440),
// and mounted read-only. Refusing that would force sluice to run as root.
// So a file is also accepted when all of these hold:
//   - it is owned by root and the process is not root (the owner is not
//     who reads it: the kubelet wrote it);
//   - its mode is at most 0440: nobody may write it, others may not read it;
//   - its group is one of the process's groups, and not root's group: the
//     only other readers are the pod's own containers (the fsGroup);
//   - it lies on a read-only file system (the mount of the Secret volume).
//
// A file on a host that merely looks like that (group-readable, owned by
// root, on a writable disk) is still refused.
package filemode

import (
	"io/fs"
)

// Private reports whether the file at path (whose FileInfo is fi) may hold
// a secret: no permission bits for group or others, or a kubelet-mounted
// Secret file as the package comment describes.
func Private(path string, fi fs.FileInfo) bool {
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return true
	}
	return mountedSecret(path, fi)
}

// Hint is what an error about a group-readable secret file adds, so the
// user of a pod learns the accepted form.
const Hint = "in a Kubernetes pod a Secret file owned by root, group the pod's fsGroup, mode 0440 or stricter, on a read-only mount is accepted"

// owner is what mountedSecret knows of a file and the process.
type owner struct {
	uid, gid  uint32
	perm      fs.FileMode
	procUID   int
	procGIDs  []int
	readOnlyF bool
}

// accepted is the rule of the package comment, apart from the system calls.
func (o owner) accepted() bool {
	if o.uid != 0 || o.procUID == 0 {
		return false
	}
	if o.perm&^0o440 != 0 {
		return false
	}
	if o.gid == 0 {
		return false
	}
	member := false
	for _, g := range o.procGIDs {
		if g >= 0 && uint32(g) == o.gid {
			member = true
		}
	}
	return member && o.readOnlyF
}
