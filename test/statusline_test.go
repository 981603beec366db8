package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal (Linux): a process writing to slave writes to a terminal,
// and the test reads what that terminal shows from master.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pseudo-terminal number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pseudo-terminal's slave: %v", err)
	}
	return m, s
}

// screen is what a pseudo-terminal showed, read by its own goroutine until the master closes.
type screen struct {
	mu   sync.Mutex
	text strings.Builder
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text.String()
}

var statusRedraw = regexp.MustCompile("\r[^\r\n]*\x1b\\[K")

// TestRunStatusLineOnTerminal: on a terminal, sluice run keeps one status line that says why
// the job waits ("waiting for 4 slots, 2 available"), then its progress, redrawn in place
// (carriage return, erase to end of line); records printed by the job appear as whole lines
// above it, and the line is gone when the job has ended.
func TestRunStatusLineOnTerminal(t *testing.T) {
	c := startCluster(t, 1, 2, "slot.request.timeout=2 min")
	master, slave := openPTY(t)
	scr := &screen{}
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			scr.mu.Lock()
			scr.text.Write(buf[:n])
			scr.mu.Unlock()
			if err != nil {
				return // EIO once every writer closed the slave, or the master closed
			}
		}
	}()
	t.Cleanup(func() { master.Close(); <-read })

	input := filepath.Join(repoRoot(t), "examples/data/gettysburg.txt")
	cmd := exec.Command(sluiceBin, "run", "examples/wordcount.yaml", "-p", "4", "--param", "input="+input, "--jobmanager", c.restURL)
	cmd.Dir = repoRoot(t)
	cmd.Stdout, cmd.Stderr = slave, slave
	inOwnGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close() // the process holds it now
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		killGroup(cmd, syscall.SIGKILL)
		<-exited
	})

	c.waitFor(30*time.Second, "the status line saying why the job waits", func() bool {
		return strings.Contains(scr.String(), "waiting for 4 slots, 2 available")
	})
	if !regexpMatch("\rCREATED · waiting for 4 slots, 2 available[^\r\n]*\x1b\\[K", scr.String()) {
		t.Errorf("the reason is not drawn as a status line (\\r ... erase to end of line): %q", scr.String())
	}
	c.addTM()
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("sluice run: %v\n%q", waitErr, scr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("sluice run did not end within 60s after the slots came:\n%q", scr.String())
	}
	c.waitFor(10*time.Second, "the terminal's last output", func() bool {
		select {
		case <-read:
			return true
		default:
			return false
		}
	})
	raw := strings.ReplaceAll(scr.String(), "\r\n", "\n") // the terminal's newline translation
	shown := statusRedraw.ReplaceAllString(raw, "")
	var counts []string
	for _, l := range strings.Split(shown, "\n") {
		if regexpMatch(`^[a-z]+ [0-9]+$`, l) {
			counts = append(counts, l)
		}
	}
	equalLines(t, sortedLines(strings.Join(counts, "\n")), referenceCounts(t, input))
	if strings.ContainsAny(shown, "\r\x1b") {
		t.Errorf("records or messages are mixed with status-line drawing: %q", shown)
	}
	if !regexpMatch(`(?m)^Job [0-9a-f]+ FINISHED$`, shown) {
		t.Errorf("no final state line: %q", shown)
	}
	// The status line is erased before the final state is printed.
	if i := strings.LastIndex(raw, "\x1b[K"); i < 0 || strings.Contains(raw[i:], "·") {
		t.Errorf("a status line is left on the terminal: %q", raw[max(i, 0):])
	}
}
