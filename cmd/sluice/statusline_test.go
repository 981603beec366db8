package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestNoStatusLineOffTerminal: sluice run draws no status line when stdout or stderr is a
// pipe, a buffer or a file (or /dev/null, a character device but no terminal).
func TestNoStatusLineOffTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, pair := range map[string][2]io.Writer{
		"buffers": {&bytes.Buffer{}, &bytes.Buffer{}}, "file": {f, f}, "devnull": {null, null}, "pipe": {w, w},
	} {
		if s := statusLine(pair[0], pair[1]); s != nil {
			t.Errorf("%s: a status line", name)
		}
	}
}
