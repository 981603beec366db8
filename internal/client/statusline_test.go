package client

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/restapi"
)

// TestStatusLineRedrawsInPlace: the line is drawn with a carriage return and erased to its
// end, drawn again only when it changes, cut to the terminal's width, and cleared.
func TestStatusLineRedrawsInPlace(t *testing.T) {
	var term bytes.Buffer
	width := 0
	s := NewStatusLine(&term, func() int { return width })
	s.Show("RUNNING · records in 1, out 0 · 0:01")
	if got := term.String(); got != "\rRUNNING · records in 1, out 0 · 0:01\x1b[K" {
		t.Fatalf("first draw %q", got)
	}
	term.Reset()
	s.Show("RUNNING · records in 1, out 0 · 0:01")
	if term.Len() != 0 {
		t.Errorf("an unchanged line was drawn again: %q", term.String())
	}
	s.Clear()
	if got := term.String(); got != "\r\x1b[K" {
		t.Errorf("clear %q", got)
	}
	term.Reset()
	s.Clear()
	if term.Len() != 0 {
		t.Errorf("clearing nothing wrote %q", term.String())
	}
	// A narrow terminal: the line is cut to width-1 columns, so it never wraps.
	width = 12
	s.Show("CREATED · waiting for 4 slots, 2 available")
	line := strings.TrimSuffix(strings.TrimPrefix(term.String(), "\r"), "\x1b[K")
	if n := len([]rune(line)); n != 11 || !strings.HasSuffix(line, "…") {
		t.Errorf("width 12: %q (%d columns)", line, n)
	}
	// Text from the JobManager cannot drive the terminal.
	term.Reset()
	width = 0
	s.Show("RUNNING \x1b[2J\x1b]0;owned\x07")
	if strings.ContainsAny(strings.TrimSuffix(strings.TrimPrefix(term.String(), "\r"), "\x1b[K"), "\x1b\x07") {
		t.Errorf("control characters reached the terminal: %q", term.String())
	}
}

func TestStatusText(t *testing.T) {
	j := &Job{State: "RUNNING", Vertices: []Vertex{
		{Metrics: restapi.IOMetrics{ReadRecords: 0, WriteRecords: 1234567}},
		{Metrics: restapi.IOMetrics{ReadRecords: 1234567, WriteRecords: 12}},
	}}
	if got, want := StatusText(j, 83*time.Second), "RUNNING · records in 1,234,567, out 1,234,579 · 1:23"; got != want {
		t.Errorf("running: %q, want %q", got, want)
	}
	j = &Job{State: "CREATED", PendingReason: "waiting for 4 slots, 2 available of 2"}
	if got, want := StatusText(j, 2*time.Hour+3*time.Second), "CREATED · waiting for 4 slots, 2 available of 2 · 2:00:03"; got != want {
		t.Errorf("waiting: %q, want %q", got, want)
	}
}
