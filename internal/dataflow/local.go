package dataflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// RunLocal runs every subtask of the plan in this process, connected by Go channels, and
// returns when all have finished. The first failure cancels the others and is returned. It is
// the reference executor for tests; the TaskManager uses RunSubtask with network channels.
// Files are opened as a TaskManager opens them: only the job's declared paths, relative ones
// taken against the working directory, no symlinks.
func RunLocal(ctx context.Context, p *Plan, stdout io.Writer) error {
	return RunLocalWith(ctx, p, LocalOptions{Stdout: stdout})
}

// LocalOptions are the options of RunLocalWith.
type LocalOptions struct {
	Stdout io.Writer // for print sinks without a path; nil discards
	// Task, when set, adjusts each subtask's TaskIO before the subtask starts (from the
	// goroutine calling RunLocalWith): tests wire mailboxes and checkpointing here.
	Task func(vertex, subtask int, tio *TaskIO)
}

// RunLocalWith is RunLocal with options.
func RunLocalWith(ctx context.Context, p *Plan, opts LocalOptions) error {
	stdout := opts.Stdout
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
			gates[v.ID][i] = newLocalGate(p.InputChannels(v.ID))
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
				ch := p.ChannelIndex(id, s)
				for _, t := range p.Targets(id, s) {
					ws[t] = gates[e.Target][t].writer(ctx, ch)
				}
				tio.Outputs[id] = ws
			}
			if opts.Task != nil {
				opts.Task(v.ID, s, &tio)
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

// LocalFiles grants the plan's own declared paths, as the JobManager would at submit
// (relative ones taken against the working directory): what RunLocal and test harnesses
// give TaskIO.Files.
func (p *Plan) LocalFiles() (*JobFiles, error) { return p.localFiles() }

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

// localMsg is one element of one channel of a local gate.
type localMsg struct {
	ch   int32
	kind event.DeliveryKind
	b    []byte
}

// localGate is RunLocal's input gate: every producer's writer sends into one Go channel,
// each message carrying the producer's channel index. Blocking is done in the consumer
// goroutine, as the network gate does it: a message of a blocked channel is held until
// Unblock, so a blocked producer keeps sending into the shared channel until its buffer
// fills (RunLocal has no per-channel credits).
type localGate struct {
	ch       chan localMsg
	channels int // producers
	open     int // producers that have not closed yet; only the consumer goroutine touches it

	blocked  []bool
	nblocked int
	held     [][]localMsg // per blocked channel, in arrival order
	ready    []localMsg   // released by Unblock, served before the channel
}

func newLocalGate(channels int) *localGate {
	return &localGate{ch: make(chan localMsg, 256), channels: channels, open: channels,
		blocked: make([]bool, channels), held: make([][]localMsg, channels)}
}

// NextDelivery implements InputGate.
func (g *localGate) NextDelivery(ctx context.Context, wake <-chan struct{}) (event.Delivery, error) {
	for {
		if g.open <= 0 {
			return event.Delivery{}, io.EOF
		}
		var m localMsg
		if len(g.ready) > 0 {
			m = g.ready[0]
			g.ready = g.ready[1:]
		} else {
			select {
			case m = <-g.ch:
			default:
				select {
				case <-ctx.Done():
					return event.Delivery{}, ctx.Err()
				case <-wake:
					return event.Delivery{}, event.ErrWoken
				case m = <-g.ch:
				}
			}
			if g.nblocked > 0 && g.blocked[m.ch] {
				g.held[m.ch] = append(g.held[m.ch], m)
				continue
			}
		}
		if m.kind == event.DeliverEnd {
			g.open--
		}
		return event.Delivery{Channel: m.ch, Kind: m.kind, Data: m.b}, nil
	}
}

// Channels implements InputGate.
func (g *localGate) Channels() int { return g.channels }

// Block implements InputGate.
func (g *localGate) Block(ch int) {
	if g.blocked[ch] {
		return
	}
	g.blocked[ch] = true
	g.nblocked++
	// Released elements of ch not yet served go back to being held, in order.
	kept := g.ready[:0]
	for _, m := range g.ready {
		if int(m.ch) == ch {
			g.held[ch] = append(g.held[ch], m)
		} else {
			kept = append(kept, m)
		}
	}
	g.ready = kept
}

// Unblock implements InputGate.
func (g *localGate) Unblock(ch int) {
	if !g.blocked[ch] {
		return
	}
	g.blocked[ch] = false
	g.nblocked--
	g.ready = append(g.ready, g.held[ch]...)
	g.held[ch] = nil
}

// writer is the RecordWriter of channel ch of the gate, numbered as Plan.InputLayout says,
// so a two-input head knows the input of each channel.
func (g *localGate) writer(ctx context.Context, ch int) *localWriter {
	return &localWriter{ctx: ctx, gate: g, ch: int32(ch)}
}

type localWriter struct {
	ctx  context.Context
	gate *localGate
	ch   int32
}

func (w *localWriter) send(kind event.DeliveryKind, b []byte) error {
	select {
	case w.gate.ch <- localMsg{ch: w.ch, kind: kind, b: b}:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

// WriteRecord copies b: the caller reuses its buffer.
func (w *localWriter) WriteRecord(b []byte) error {
	return w.send(event.DeliverRecord, append([]byte(nil), b...))
}

// WriteTimedRecord copies b: the caller reuses its buffer.
func (w *localWriter) WriteTimedRecord(b []byte) error {
	return w.send(event.DeliverTimedRecord, append([]byte(nil), b...))
}

// WriteEvent copies the payload after checking it, as the network writer does.
func (w *localWriter) WriteEvent(payload []byte) error {
	if _, err := event.Decode(payload); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return w.send(event.DeliverEvent, append([]byte(nil), payload...))
}

func (w *localWriter) Close() error { return w.send(event.DeliverEnd, nil) }

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
