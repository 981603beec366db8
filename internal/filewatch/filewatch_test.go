package filewatch

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestReload: Reload applies the file now even when its stat did not
// change (so Poll would not), reports a failure and keeps what is in
// force, and is safe beside Poll.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	write := func(s string) {
		st, err := os.Stat(path)
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err == nil { // keep the mtime: only Reload may notice
			os.Chtimes(path, st.ModTime(), st.ModTime())
		}
	}
	write("one")
	var mu sync.Mutex
	cur := ""
	w := &Watcher{Path: path,
		Read: func() ([]byte, Stat, error) {
			fi, err := os.Stat(path)
			if err != nil {
				return nil, Stat{}, err
			}
			data, err := os.ReadFile(path)
			return data, StatOf(fi), err
		},
		Apply: func(data []byte) error {
			if string(data) == "bad" {
				return errors.New("bad content")
			}
			mu.Lock()
			cur = string(data)
			mu.Unlock()
			return nil
		}}
	data, st, _ := w.Read()
	w.Apply(data)
	w.Loaded(data, st)

	write("two")
	w.Poll()
	if cur != "one" {
		t.Fatalf("Poll applied a change its stat did not show: %q", cur)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Poll() }()
	if err := w.Reload(); err != nil || cur != "two" {
		t.Fatalf("Reload: %v, in force %q", err, cur)
	}
	wg.Wait()
	write("bad")
	if err := w.Reload(); err == nil || cur != "two" {
		t.Fatalf("Reload of bad content: %v, in force %q (want an error and two kept)", err, cur)
	}
	os.Remove(path)
	if err := w.Reload(); err == nil {
		t.Fatal("Reload of a missing file reported no error")
	}
}
