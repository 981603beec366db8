package filemode

import (
	"os"
	"path/filepath"
	"testing"
)

// The exception for kubelet-mounted Secret files is exactly that: each
// condition alone turns it off.
func TestMountedSecretRule(t *testing.T) {
	pod := owner{uid: 0, gid: 9999, perm: 0o440, procUID: 9999, procGIDs: []int{9999}, readOnlyF: true}
	if !pod.accepted() {
		t.Fatal("a root-owned 0440 file of the pod's fsGroup on a read-only mount is refused")
	}
	for name, change := range map[string]func(o *owner){
		"owned by the process's user": func(o *owner) { o.uid = 9999 },
		"process is root":             func(o *owner) { o.procUID = 0 },
		"group-writable":              func(o *owner) { o.perm = 0o460 },
		"readable by others":          func(o *owner) { o.perm = 0o444 },
		"group is root's":             func(o *owner) { o.gid = 0; o.procGIDs = []int{0} },
		"group not the process's":     func(o *owner) { o.gid = 1234 },
		"writable file system":        func(o *owner) { o.readOnlyF = false },
		"executable":                  func(o *owner) { o.perm = 0o550 },
	} {
		o := pod
		o.procGIDs = append([]int(nil), pod.procGIDs...)
		change(&o)
		if o.accepted() {
			t.Errorf("%s: accepted", name)
		}
	}
	stricter := pod
	stricter.perm = 0o040
	if !stricter.accepted() {
		t.Error("a stricter mode (0040) is refused")
	}
}

// Private accepts 0600 and 0400 files, and refuses a group-readable file on
// an ordinary (writable) disk, whoever owns it.
func TestPrivate(t *testing.T) {
	dir := t.TempDir()
	for mode, want := range map[os.FileMode]bool{0o600: true, 0o400: true, 0o640: false, 0o440: false, 0o604: false} {
		p := filepath.Join(dir, mode.String())
		if err := os.WriteFile(p, []byte("k"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := Private(p, fi); got != want {
			t.Errorf("mode %04o: Private = %v, want %v", mode, got, want)
		}
	}
}
