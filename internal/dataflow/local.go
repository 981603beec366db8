package dataflow

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
)

// RunLocal runs every subtask of the plan in this process, connected by Go channels, and
// returns when all have finished. The first failure cancels the others and is returned. It is
// the reference executor for tests; the TaskManager uses RunSubtask with network channels.
// Files are opened as a TaskManager opens them: only the job's declared paths, relative ones
// taken against the working directory, no symlinks.
func RunLocal(ctx context.Context, p *Plan, stdout io.Writer) error {
	files, err := p.localFiles()
	if err != nil {
		return err
	}
	if len(p.Deferred()) > 0 {
		// Plan as a TaskManager does, reading csv headers through the job's grants.
		opts := p.opts
		opts.CSVHeader = files.CSVHeader
		if p, err = p.spec.PlanWith(opts); err != nil {
			return err
		}
	}
	if err := p.Compile(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if stdout == nil {
		stdout = io.Discard
	}
	out := &lockedWriter{w: stdout}

	// One gate per subtask; every producer writing to it closes its own channel once.
	gates := make([][]*localGate, len(p.Vertices))
	for _, v := range p.Vertices {
		gates[v.ID] = make([]*localGate, v.Parallelism)
		for i := range gates[v.ID] {
			gates[v.ID][i] = &localGate{ch: make(chan localMsg, 256), open: p.InputChannels(v.ID)}
		}
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, v := range p.Vertices {
		for s := 0; s < v.Parallelism; s++ {
			tio := TaskIO{Outputs: map[int][]RecordWriter{}, Stdout: out, Metrics: new(VertexMetrics), Files: files}
			if !v.Source {
				tio.Input = gates[v.ID][s]
			}
			for _, id := range v.OutEdges {
				e := p.Edges[id]
				ws := make([]RecordWriter, p.Vertices[e.Target].Parallelism)
				for _, t := range p.Targets(id, s) {
					ws[t] = &localWriter{ctx: ctx, gate: gates[e.Target][t]}
				}
				tio.Outputs[id] = ws
			}
			wg.Add(1)
			go func(vertex, subtask int, tio TaskIO) {
				defer wg.Done()
				if err := p.RunSubtask(ctx, vertex, subtask, tio); err != nil {
					mu.Lock()
					// Cancellations caused by the first failure are not news.
					if firstErr == nil || (errors.Is(firstErr, context.Canceled) && !errors.Is(err, context.Canceled)) {
						firstErr = err
					}
					mu.Unlock()
					cancel()
				}
			}(v.ID, s, tio)
		}
	}
	wg.Wait()
	return firstErr
}

// localFiles grants the plan's own declared paths, as the JobManager would at submit.
func (p *Plan) localFiles() (*JobFiles, error) {
	if p.spec == nil {
		return nil, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	acc, err := p.spec.FileAccesses(nil, wd)
	if err != nil {
		return nil, err
	}
	return NewJobFiles(acc, nil)
}

type localMsg struct {
	b   []byte
	eof bool
}

type localGate struct {
	ch   chan localMsg
	open int // producers that have not closed yet; only the consumer goroutine touches it
}

func (g *localGate) Next(ctx context.Context) ([]byte, error) {
	for g.open > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case m := <-g.ch:
			if m.eof {
				g.open--
				continue
			}
			return m.b, nil
		}
	}
	return nil, io.EOF
}

type localWriter struct {
	ctx  context.Context
	gate *localGate
}

func (w *localWriter) send(m localMsg) error {
	select {
	case w.gate.ch <- m:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

// WriteRecord copies b: the caller reuses its buffer.
func (w *localWriter) WriteRecord(b []byte) error {
	return w.send(localMsg{b: append([]byte(nil), b...)})
}

func (w *localWriter) Close() error { return w.send(localMsg{eof: true}) }

// lockedWriter serialises writes of concurrent print subtasks.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
