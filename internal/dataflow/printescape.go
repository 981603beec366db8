package dataflow

import (
	"fmt"
	"unicode/utf8"
)

// appendPrintLine renders a record as appendTextLine does, with control characters escaped,
// so one record is always exactly one line. A record is data from anywhere; printed raw, a
// newline in it would start a line of its own in whatever reads the output, such as the
// TaskManager's log (a forged "level=ERROR ..." line), and an escape sequence would drive
// the terminal.
func appendPrintLine(dst []byte, r Record) []byte {
	start := len(dst)
	dst = appendTextLine(dst, r)
	if !needsEscape(dst[start:]) {
		return dst
	}
	line := append([]byte(nil), dst[start:]...)
	return appendEscaped(dst[:start], line)
}

func needsEscape(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if escapedRune(r, n) {
			return true
		}
		i += n
	}
	return false
}

// escapedRune: C0 and C1 controls, DEL, the Unicode line and paragraph separators, the
// bidirectional overrides and isolates (which reorder what a reader sees), invalid UTF-8.
func escapedRune(r rune, size int) bool {
	switch {
	case r == utf8.RuneError && size <= 1:
		return true
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

func appendEscaped(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case !escapedRune(r, n):
			dst = append(dst, b[i:i+n]...)
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r == utf8.RuneError:
			dst = fmt.Appendf(dst, `\x%02x`, b[i])
		default:
			dst = fmt.Appendf(dst, `\u%04x`, r)
		}
		i += n
	}
	return dst
}

// EscapeLine returns s with control characters escaped as print sinks escape them, so it is
// one line that cannot drive a terminal. Print sinks' lines come back unchanged; whoever
// passes on lines from another process (the JobManager, the CLI) escapes them again, since
// that process may not be the one it should be.
func EscapeLine(s string) string {
	b := []byte(s)
	if !needsEscape(b) {
		return s
	}
	return string(appendEscaped(nil, b))
}
