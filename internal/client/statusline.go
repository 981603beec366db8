package client

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// Terminal control: back to the start of the line, and erase to its end.
const (
	carriageReturn = "\r"
	eraseToEOL     = "\x1b[K"
)

// StatusLine is one line of progress a terminal shows in place: each Show replaces the
// previous line. Records printed meanwhile go above it: Clear it, write them, Show again.
// Only for a terminal: in a file or a pipe the redraws are garbage.
type StatusLine struct {
	w io.Writer
	// width returns the terminal's columns (0: unknown); a longer line would wrap and
	// leave a copy of itself at every redraw.
	width func() int
	shown string
}

// NewStatusLine draws on w, a terminal whose width width returns.
func NewStatusLine(w io.Writer, width func() int) *StatusLine {
	if width == nil {
		width = func() int { return 0 }
	}
	return &StatusLine{w: w, width: width}
}

// Show draws text in place of the line shown, unless it is that line already.
func (s *StatusLine) Show(text string) {
	text = fit(text, s.width())
	if text == s.shown {
		return
	}
	fmt.Fprint(s.w, carriageReturn+text+eraseToEOL)
	s.shown = text
}

// Clear erases the line shown, leaving the cursor at the start of the empty line.
func (s *StatusLine) Clear() {
	if s.shown == "" {
		return
	}
	fmt.Fprint(s.w, carriageReturn+eraseToEOL)
	s.shown = ""
}

// fit makes text one line of at most width-1 columns (the last column would make some
// terminals wrap): whatever came from the JobManager is escaped, then cut.
func fit(text string, width int) string {
	text = dataflow.EscapeLine(text)
	if width <= 1 || utf8.RuneCountInString(text) < width {
		return text
	}
	r := []rune(text)[:width-2]
	return string(r) + "…"
}

// StatusText is the status line of a job: its state, the records its vertices read and
// wrote, the time since it was submitted, and why it waits, when the JobManager says so.
func StatusText(j *Job, elapsed time.Duration) string {
	var in, out int64
	for _, v := range j.Vertices {
		in += v.Metrics.ReadRecords
		out += v.Metrics.WriteRecords
	}
	parts := []string{j.State}
	if j.PendingReason != "" {
		parts = append(parts, j.PendingReason)
	} else {
		parts = append(parts, fmt.Sprintf("records in %s, out %s", groupDigits(in), groupDigits(out)))
	}
	parts = append(parts, clock(elapsed))
	return strings.Join(parts, " · ")
}

// groupDigits writes n with thousands separated: 1,234,567.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// clock is an elapsed time as m:ss, or h:mm:ss from an hour on.
func clock(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
