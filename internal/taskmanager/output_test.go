package taskmanager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// fakeJM records the batches a taskOutput sends, failing while fail is set.
type fakeJM struct {
	mu      sync.Mutex
	fail    bool
	lines   []string
	dropped int64
	batches int
}

func (f *fakeJM) send(ctx context.Context, o *controlpb.TaskOutput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("jobmanager away")
	}
	f.batches++
	f.lines = append(f.lines, o.Lines...)
	f.dropped += o.Dropped
	return nil
}

func (f *fakeJM) snapshot() ([]string, int64, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...), f.dropped, f.batches
}

// TestTaskOutputForwards: what a print sink writes reaches the TaskManager's stdout and, in
// batches, the JobManager; close sends the rest, an unfinished last line included.
func TestTaskOutputForwards(t *testing.T) {
	var stdout bytes.Buffer
	jm := &fakeJM{}
	o := newTaskOutput(&stdout, jm.send)
	for i := 0; i < 2500; i++ {
		fmt.Fprintf(o, "record %d\n", i)
	}
	o.Write([]byte("half a li"))
	o.Write([]byte("ne\nno newline"))
	// Batches go out while the task runs, not only at its end.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if lines, _, _ := jm.snapshot(); len(lines) >= 2500 {
			break
		}
		if time.Now().After(deadline) {
			lines, _, _ := jm.snapshot()
			t.Fatalf("after 10s the JobManager has %d of 2501 lines", len(lines))
		}
		time.Sleep(10 * time.Millisecond)
	}
	o.close()
	lines, dropped, batches := jm.snapshot()
	if len(lines) != 2502 || lines[0] != "record 0" || lines[2499] != "record 2499" || lines[2500] != "half a line" || lines[2501] != "no newline" {
		t.Fatalf("%d lines sent: first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if dropped != 0 || batches < 3 {
		t.Errorf("dropped %d, %d batches (want none dropped, batches of at most %d lines)", dropped, batches, outputBatchLines)
	}
	if !strings.HasPrefix(stdout.String(), "record 0\nrecord 1\n") || !strings.HasSuffix(stdout.String(), "half a line\nno newline") {
		t.Errorf("the TaskManager's stdout lacks the records")
	}
}

// TestTaskOutputBounded: while the JobManager does not take lines, the task's buffer keeps
// at most outputBufferLines, and what it drops (or fails to send) is counted in the next
// batch that goes through.
func TestTaskOutputBounded(t *testing.T) {
	jm := &fakeJM{fail: true}
	o := newTaskOutput(&bytes.Buffer{}, jm.send)
	total := outputBufferLines + 500
	for i := 0; i < total; i++ {
		fmt.Fprintf(o, "r%d\n", i)
		if i%1000 == 0 {
			o.mu.Lock()
			n := len(o.lines)
			o.mu.Unlock()
			if n > outputBufferLines {
				t.Fatalf("%d lines buffered, bound %d", n, outputBufferLines)
			}
		}
	}
	jm.mu.Lock()
	jm.fail = false
	jm.mu.Unlock()
	o.close()
	lines, dropped, _ := jm.snapshot()
	if int64(len(lines))+dropped != int64(total) {
		t.Errorf("%d lines sent + %d dropped, want %d", len(lines), dropped, total)
	}
	if dropped == 0 || len(lines) == 0 || lines[len(lines)-1] != fmt.Sprintf("r%d", total-1) {
		t.Errorf("want the newest lines sent and the rest counted: %d sent, %d dropped", len(lines), dropped)
	}

	// A huge record is cut, not sent whole, and stays valid UTF-8.
	jm2 := &fakeJM{}
	o2 := newTaskOutput(&bytes.Buffer{}, jm2.send)
	o2.Write([]byte(strings.Repeat("é", outputMaxLine) + "\n"))
	o2.close()
	lines, _, _ = jm2.snapshot()
	if len(lines) != 1 || len(lines[0]) > outputMaxLine+16 || !strings.HasSuffix(lines[0], "[cut]") {
		t.Errorf("huge record: %d lines, %d bytes", len(lines), len(lines[0]))
	}
}

// TestTaskOutputIdle: a task that prints nothing starts no goroutine and sends nothing.
func TestTaskOutputIdle(t *testing.T) {
	jm := &fakeJM{}
	o := newTaskOutput(&bytes.Buffer{}, jm.send)
	o.close()
	if _, _, batches := jm.snapshot(); batches != 0 {
		t.Errorf("%d batches for a task that printed nothing", batches)
	}
}

// TestTaskOutputLocal: without a sender (sluice local) the lines go to stdout only.
func TestTaskOutputLocal(t *testing.T) {
	var stdout bytes.Buffer
	o := newTaskOutput(&stdout, nil)
	fmt.Fprintf(o, "a 1\nb 2\n")
	o.close()
	if stdout.String() != "a 1\nb 2\n" || len(o.lines) != 0 {
		t.Errorf("stdout %q, %d lines queued", stdout.String(), len(o.lines))
	}
}
