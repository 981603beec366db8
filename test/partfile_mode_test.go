package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPartFileModes: a file sink's hidden in-progress part files are 0600
// (not readable by others before they are committed), and a committed part
// file has the mode output files always had: 0644 under the TaskManager's
// umask.
func TestPartFileModes(t *testing.T) {
	c, _ := checkpointCluster(t, 1, false)
	spec := filepath.Join(t.TempDir(), "counting.yaml")
	if err := os.WriteFile(spec, []byte(countingSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	id := runDetached(t, c, spec, "-p", "1", "--param", "output="+out, "-D", "execution.checkpointing.interval=500 ms")
	umask := syscall.Umask(0o022)
	syscall.Umask(umask)
	published := os.FileMode(0o644 &^ umask)

	hidden, committed := 0, 0
	c.waitFor(60*time.Second, "an in-progress and a committed part file", func() bool {
		entries, err := os.ReadDir(out)
		if err != nil {
			return false // not created yet
		}
		for _, e := range entries {
			fi, err := os.Lstat(filepath.Join(out, e.Name()))
			if err != nil {
				continue // committed or removed meanwhile
			}
			m := fi.Mode().Perm()
			if strings.HasPrefix(e.Name(), ".") {
				hidden++
				if m != 0o600 {
					t.Fatalf("in-progress part file %s: mode %04o, want 0600", e.Name(), m)
				}
				continue
			}
			committed++
			if m != published {
				t.Fatalf("committed part file %s: mode %04o, want %04o (0644 under umask %04o)", e.Name(), m, published, umask)
			}
		}
		return hidden > 0 && committed > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, stderr, code := c.sluice(ctx, "cancel", id); code != 0 {
		t.Fatalf("cancel: exit %d: %s", code, stderr)
	}
	waitJobState(t, c, id, "CANCELED", 30*time.Second)
}
