// Package diag is the shape of a security self-check's results: the
// packages that own a piece of security (kerberos, tlsconf) diagnose their
// own configuration and return findings, and `sluice security check`
// prints them. Keeping the checks beside the code that loads the material
// means the check cannot drift from what the processes do.
package diag

import (
	"fmt"
	"io"
)

// Level is how a finding counts.
type Level int

// Levels, in increasing severity.
const (
	// Skip: the piece is not configured, nothing to check.
	Skip Level = iota
	// OK: checked and fine.
	OK
	// Warn: works today, needs attention (an expiry, a risky setting).
	Warn
	// Fail: the piece does not work, or start-up refuses it.
	Fail
)

// Tag is the fixed-width label a checklist line starts with.
func (l Level) Tag() string {
	return [...]string{"[SKIP]", "[ OK ]", "[WARN]", "[FAIL]"}[l]
}

// Finding is one checked thing.
type Finding struct {
	Level Level
	// Subject names what was checked (a file, a key, a KDC); it may be
	// empty when Message says it.
	Subject string
	// Message says what was found.
	Message string
	// Fix says what to do; set for Fail and, where useful, Warn.
	Fix string
}

// String is the checklist line: "[FAIL] subject: message -> fix: fix".
func (f Finding) String() string {
	s := f.Level.Tag() + " "
	if f.Subject != "" {
		s += f.Subject + ": "
	}
	s += f.Message
	if f.Fix != "" {
		s += " -> fix: " + f.Fix
	}
	return s
}

// Findings collects findings; its methods read like the checklist.
type Findings []Finding

// OKf adds a passed check.
func (fs *Findings) OKf(subject, format string, a ...any) {
	*fs = append(*fs, Finding{Level: OK, Subject: subject, Message: fmt.Sprintf(format, a...)})
}

// Skipf adds a check that did not apply.
func (fs *Findings) Skipf(subject, format string, a ...any) {
	*fs = append(*fs, Finding{Level: Skip, Subject: subject, Message: fmt.Sprintf(format, a...)})
}

// Warnf adds a warning with an optional fix.
func (fs *Findings) Warnf(subject, fix, format string, a ...any) {
	*fs = append(*fs, Finding{Level: Warn, Subject: subject, Message: fmt.Sprintf(format, a...), Fix: fix})
}

// Failf adds a failed check with its fix.
func (fs *Findings) Failf(subject, fix, format string, a ...any) {
	*fs = append(*fs, Finding{Level: Fail, Subject: subject, Message: fmt.Sprintf(format, a...), Fix: fix})
}

// Failed counts the failed findings.
func (fs Findings) Failed() int {
	n := 0
	for _, f := range fs {
		if f.Level == Fail {
			n++
		}
	}
	return n
}

// Print writes one line per finding.
func (fs Findings) Print(w io.Writer) error {
	for _, f := range fs {
		if _, err := fmt.Fprintln(w, f.String()); err != nil {
			return err
		}
	}
	return nil
}
