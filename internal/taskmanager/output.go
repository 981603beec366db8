package taskmanager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// Bounds of a task's output forwarding. The buffer bounds what a task holds while the
// JobManager is slow or away; a batch stays well under gRPC's 4 MiB message limit.
const (
	outputBufferLines = 10000
	outputBufferBytes = 2 << 20
	outputBatchLines  = 1000
	outputBatchBytes  = 512 << 10
	outputMaxLine     = 64 << 10
	outputFlushEvery  = 200 * time.Millisecond
	outputSendTimeout = 5 * time.Second
)

// outputSender sends a batch of printed lines to the JobManager.
type outputSender func(ctx context.Context, o *controlpb.TaskOutput) error

// taskOutput is the stdout of one task's print sinks. It writes what they print to the
// TaskManager's stdout (its .out, as in Flink) and forwards the lines to the JobManager,
// which keeps them for clients that follow the job (sluice run). Write only appends to a
// bounded buffer: a goroutine sends batches every outputFlushEvery, so no record waits for
// an RPC. When the buffer is full, or a send fails, lines are dropped and counted, never
// waited for: a slow JobManager must not slow the job. The lines come escaped from the print
// sink, one record per line.
type taskOutput struct {
	stdout io.Writer
	send   outputSender

	mu      sync.Mutex
	lines   []string
	bytes   int
	dropped int64
	partial []byte // the start of a line whose newline has not come yet

	start sync.Once
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

func newTaskOutput(stdout io.Writer, send outputSender) *taskOutput {
	return &taskOutput{stdout: stdout, send: send, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Write writes p to the TaskManager's stdout and queues its lines for the JobManager.
func (o *taskOutput) Write(p []byte) (int, error) {
	n, err := o.stdout.Write(p)
	if o.send == nil {
		return n, err // not forwarded (sluice local)
	}
	o.mu.Lock()
	full := o.queueLocked(p)
	o.mu.Unlock()
	o.start.Do(func() { go o.run() })
	if full {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return n, err
}

// queueLocked splits p into lines and queues them; it reports whether a batch is ready.
func (o *taskOutput) queueLocked(p []byte) bool {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(o.partial) < outputMaxLine {
				o.partial = append(o.partial, p[:min(len(p), outputMaxLine-len(o.partial))]...)
			}
			break
		}
		line := string(p[:i])
		if len(o.partial) > 0 {
			line = string(o.partial) + line
			o.partial = o.partial[:0]
		}
		o.pushLocked(line)
		p = p[i+1:]
	}
	return len(o.lines) >= outputBatchLines || o.bytes >= outputBatchBytes
}

func (o *taskOutput) pushLocked(line string) {
	if !utf8.ValidString(line) {
		// Only a line cut at the bound or left unfinished: print sinks write valid UTF-8,
		// and a control-plane message must be.
		line = strings.ToValidUTF8(line, "\uFFFD")
	}
	if len(line) > outputMaxLine {
		cut := outputMaxLine
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut] + "… [cut]"
	}
	o.lines = append(o.lines, line)
	o.bytes += len(line)
	for len(o.lines) > outputBufferLines || o.bytes > outputBufferBytes {
		o.bytes -= len(o.lines[0])
		o.lines[0] = ""
		o.lines = o.lines[1:]
		o.dropped++
	}
}

// run sends batches until close.
func (o *taskOutput) run() {
	defer close(o.done)
	t := time.NewTicker(outputFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
		case <-o.wake:
		}
		o.flush()
	}
}

// take removes the next batch from the buffer, with the count of lines dropped before it.
func (o *taskOutput) take() ([]string, int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, size := 0, 0
	for n < len(o.lines) && n < outputBatchLines {
		l := len(o.lines[n])
		if n > 0 && size+l > outputBatchBytes {
			break
		}
		size += l
		n++
	}
	batch := make([]string, n)
	copy(batch, o.lines[:n])
	clear(o.lines[:n])
	o.lines = o.lines[n:]
	o.bytes -= size
	dropped := o.dropped
	o.dropped = 0
	return batch, dropped
}

// flush sends what is queued, batch by batch. A batch that cannot be sent is dropped and
// counted in the next one.
func (o *taskOutput) flush() {
	for {
		batch, dropped := o.take()
		if len(batch) == 0 && dropped == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), outputSendTimeout)
		err := o.send(ctx, &controlpb.TaskOutput{Lines: batch, Dropped: dropped})
		cancel()
		if err != nil {
			o.mu.Lock()
			o.dropped += dropped + int64(len(batch))
			o.mu.Unlock()
			return
		}
	}
}

// close stops forwarding after sending what is queued, an unfinished last line included.
// The task calls it before it reports its end, so a client that sees the job end has seen
// all of its output.
func (o *taskOutput) close() {
	started := true
	o.start.Do(func() { started = false })
	if !started {
		return // nothing was ever printed
	}
	close(o.stop)
	<-o.done
	o.mu.Lock()
	if len(o.partial) > 0 {
		o.pushLocked(string(o.partial))
		o.partial = nil
	}
	o.mu.Unlock()
	o.flush()
}

// newTaskOutput is the stdout of task t's print sinks: the TaskManager's stdout, and the
// JobManager, which accepts the lines only from the TaskManager t is deployed on (unless
// Options.LocalOutput).
func (tm *TaskManager) newTaskOutput(t *runningTask) *taskOutput {
	if tm.localOutput {
		return newTaskOutput(tm.stdout, nil)
	}
	var warn sync.Once
	return newTaskOutput(tm.stdout, func(ctx context.Context, o *controlpb.TaskOutput) error {
		tm.mu.Lock()
		client := tm.jm
		tm.mu.Unlock()
		if client == nil {
			return errNotConnected
		}
		o.TaskmanagerId, o.JobId, o.Attempt, o.Vertex, o.Subtask = tm.id, t.job, int32(t.attempt), int32(t.vertex), int32(t.subtask)
		_, err := client.ReportOutput(ctx, o)
		if err != nil {
			warn.Do(func() {
				tm.log.Warn("printed lines not forwarded to the jobmanager; they are dropped and counted (they stay in this taskmanager's stdout)",
					"job", t.job, "attempt", t.attempt, "vertex", t.vertex, "subtask", t.subtask, "err", err)
			})
		}
		return err
	})
}

var errNotConnected = errors.New("not connected to the jobmanager")
