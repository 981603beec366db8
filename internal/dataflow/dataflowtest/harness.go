package dataflowtest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// Subtask runs one subtask of a plan's vertex, fed by a Gate the test writes to, its output
// recorded in Out, its checkpoints coordinated by a Coordinator.
type Subtask struct {
	Gate *Gate   // nil for a source vertex
	Out  *Output // everything the subtask sent, in order
	Mail *dataflow.Mailbox
	// Metrics are the subtask's counters (records, watermarks, late records dropped).
	Metrics *dataflow.VertexMetrics

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start runs subtask of vertex in a goroutine with c's checkpointing (c may be nil: no
// checkpointing). The test's cleanup cancels it and waits for it.
func Start(t testing.TB, p *dataflow.Plan, vertex, subtask int, c *Coordinator) *Subtask {
	t.Helper()
	v := p.Vertices[vertex]
	st := &Subtask{Out: &Output{}, done: make(chan struct{})}
	files, err := p.LocalFiles()
	if err != nil {
		t.Fatal(err)
	}
	st.Metrics = new(dataflow.VertexMetrics)
	tio := dataflow.TaskIO{Outputs: map[int][]dataflow.RecordWriter{}, Files: files, Metrics: st.Metrics}
	if !v.Source {
		st.Gate = NewGate(p.InputChannels(vertex))
		tio.Input = st.Gate
	}
	for _, id := range v.OutEdges {
		e := p.Edges[id]
		ws := make([]dataflow.RecordWriter, p.Vertices[e.Target].Parallelism)
		for i := range ws {
			ws[i] = &writer{out: st.Out, edge: id, target: i}
		}
		tio.Outputs[id] = ws
	}
	if c != nil {
		c.Wire(vertex, subtask, &tio)
		st.Mail = tio.Mailbox
	} else {
		st.Mail = dataflow.NewMailbox()
		tio.Mailbox = st.Mail
	}
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	go func() {
		defer close(st.done)
		st.err = p.RunSubtask(ctx, vertex, subtask, tio)
	}()
	t.Cleanup(func() {
		cancel()
		<-st.done
	})
	return st
}

// Wait waits for the subtask to return, at most d, and returns its error.
func (s *Subtask) Wait(d time.Duration) error {
	select {
	case <-s.done:
		return s.err
	case <-time.After(d):
		return fmt.Errorf("subtask still running after %v", d)
	}
}

// Kill cancels the subtask (a failure of its process) and waits for it to return.
func (s *Subtask) Kill() {
	s.cancel()
	<-s.done
}

// Done is closed when the subtask returned.
func (s *Subtask) Done() <-chan struct{} { return s.done }

// Item is one element a subtask sent.
type Item struct {
	Edge, Target int
	Record       dataflow.Record // nil for events and the end of the partition
	Timestamp    int64           // the record's event time when Timed
	Timed        bool            // the record was sent with a timestamp
	Event        *event.Event
	End          bool // the writer was closed (END_OF_PARTITION)
}

func (it Item) String() string {
	switch {
	case it.Event != nil:
		return it.Event.String()
	case it.End:
		return "END"
	}
	return it.Record.String()
}

// Output records what a subtask sends, over all its writers, in order.
type Output struct {
	mu      sync.Mutex
	items   []Item
	changed chan struct{}
}

func (o *Output) add(it Item) {
	o.mu.Lock()
	o.items = append(o.items, it)
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	o.mu.Unlock()
}

// Items returns what was sent so far.
func (o *Output) Items() []Item {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Item(nil), o.items...)
}

// Lines returns what was sent to target 0 of every edge (records as text, events by
// name), the view of a subtask with one target.
func (o *Output) Lines() []string {
	var out []string
	for _, it := range o.Items() {
		if it.Target == 0 {
			out = append(out, it.String())
		}
	}
	return out
}

// Records returns the records sent, over all targets, as text.
func (o *Output) Records() []string {
	var out []string
	for _, it := range o.Items() {
		if it.Record != nil {
			out = append(out, it.Record.String())
		}
	}
	return out
}

// WaitFor waits at most d until cond holds for the items sent so far.
func (o *Output) WaitFor(d time.Duration, cond func([]Item) bool) error {
	deadline := time.After(d)
	for {
		o.mu.Lock()
		ok := cond(o.items)
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		ch := o.changed
		o.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("output after %v: %s", d, strings.Join(o.Lines(), " | "))
		}
	}
}

type writer struct {
	out          *Output
	edge, target int
}

func (w *writer) WriteRecord(b []byte) error {
	var r dataflow.Record
	if err := dataflow.DecodeRecord(append([]byte(nil), b...), &r); err != nil {
		return err
	}
	w.out.add(Item{Edge: w.edge, Target: w.target, Record: r})
	return nil
}

func (w *writer) WriteTimedRecord(b []byte) error {
	ts, rec, err := dataflow.SplitTimestamp(b)
	if err != nil {
		return err
	}
	var r dataflow.Record
	if err := dataflow.DecodeRecord(append([]byte(nil), rec...), &r); err != nil {
		return err
	}
	w.out.add(Item{Edge: w.edge, Target: w.target, Record: r, Timestamp: ts, Timed: true})
	return nil
}

func (w *writer) WriteEvent(p []byte) error {
	e, err := event.Decode(p)
	if err != nil {
		return err
	}
	w.out.add(Item{Edge: w.edge, Target: w.target, Event: &e})
	return nil
}

func (w *writer) Close() error {
	w.out.add(Item{Edge: w.edge, Target: w.target, End: true})
	return nil
}

// Gate is an input gate the test writes to: records, barriers, cancel barriers, end of data
// and end of partition per channel. It blocks channels as the network gate does, holding a
// blocked channel's elements in order until Unblock.
type Gate struct {
	in       chan event.Delivery
	channels int
	open     int

	// Touched by the task goroutine only.
	blocked []bool
	held    [][]event.Delivery
	ready   []event.Delivery

	mu        sync.Mutex
	isBlocked []bool // a copy of blocked for the test
	blocks    int    // Block calls that blocked a channel
}

// NewGate returns a gate of n channels.
func NewGate(n int) *Gate {
	return &Gate{in: make(chan event.Delivery, 1024), channels: n, open: n, blocked: make([]bool, n),
		held: make([][]event.Delivery, n), isBlocked: make([]bool, n)}
}

// Send queues a delivery.
func (g *Gate) Send(d event.Delivery) { g.in <- d }

// TimedRecord queues a record with event time ts on channel ch.
func (g *Gate) TimedRecord(ch int, ts int64, vals ...dataflow.Value) {
	g.Send(event.Delivery{Channel: int32(ch), Kind: event.DeliverTimedRecord, Data: dataflow.AppendTimedRecord(nil, ts, dataflow.Record(vals))})
}

// Watermark queues WATERMARK ts on channel ch.
func (g *Gate) Watermark(ch int, ts int64) {
	g.Event(ch, event.Event{Kind: event.KindWatermark, Watermark: ts})
}

// Idle queues WATERMARK_STATUS IDLE (idle true) or ACTIVE on channel ch.
func (g *Gate) Idle(ch int, idle bool) {
	st := event.Active
	if idle {
		st = event.Idle
	}
	g.Event(ch, event.Event{Kind: event.KindWatermarkStatus, Status: st})
}

// Record queues a record on channel ch.
func (g *Gate) Record(ch int, vals ...dataflow.Value) {
	g.Send(event.Delivery{Channel: int32(ch), Kind: event.DeliverRecord, Data: dataflow.AppendRecord(nil, dataflow.Record(vals))})
}

// Event queues an event on channel ch.
func (g *Gate) Event(ch int, e event.Event) {
	g.Send(event.Delivery{Channel: int32(ch), Kind: event.DeliverEvent, Data: event.Append(nil, e)})
}

// Barrier queues BARRIER id (a checkpoint) on channel ch.
func (g *Gate) Barrier(ch int, id int64) {
	g.Event(ch, event.Event{Kind: event.KindBarrier, Barrier: event.Barrier{ID: id, Timestamp: time.Now().UnixMilli()}})
}

// Cancel queues CANCEL_BARRIER id on channel ch.
func (g *Gate) Cancel(ch int, id int64) {
	g.Event(ch, event.Event{Kind: event.KindCancelBarrier, Barrier: event.Barrier{ID: id}})
}

// EndOfData queues END_OF_DATA on channel ch.
func (g *Gate) EndOfData(ch int) { g.Event(ch, event.Event{Kind: event.KindEndOfData}) }

// End ends channel ch's partition.
func (g *Gate) End(ch int) { g.Send(event.Delivery{Channel: int32(ch), Kind: event.DeliverEnd}) }

// Blocked reports whether the task has blocked channel ch.
func (g *Gate) Blocked(ch int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.isBlocked[ch]
}

// Blocks counts the Block calls that blocked a channel.
func (g *Gate) Blocks() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocks
}

// WaitBlocked waits at most d until channel ch is blocked (want true) or not.
func (g *Gate) WaitBlocked(ch int, want bool, d time.Duration) error {
	deadline := time.Now().Add(d)
	for g.Blocked(ch) != want {
		if time.Now().After(deadline) {
			return fmt.Errorf("channel %d blocked %t after %v, want %t", ch, !want, d, want)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// NextDelivery implements dataflow.InputGate.
func (g *Gate) NextDelivery(ctx context.Context, wake <-chan struct{}) (event.Delivery, error) {
	for {
		if g.open <= 0 {
			return event.Delivery{}, io.EOF
		}
		var d event.Delivery
		if len(g.ready) > 0 {
			d = g.ready[0]
			g.ready = g.ready[1:]
		} else {
			select {
			case d = <-g.in:
			default:
				select {
				case d = <-g.in:
				case <-wake:
					return event.Delivery{}, event.ErrWoken
				case <-ctx.Done():
					return event.Delivery{}, ctx.Err()
				}
			}
			if g.blocked[d.Channel] {
				g.held[d.Channel] = append(g.held[d.Channel], d)
				continue
			}
		}
		if d.Kind == event.DeliverEnd {
			g.open--
		}
		return d, nil
	}
}

// Channels implements dataflow.InputGate.
func (g *Gate) Channels() int { return g.channels }

// Block implements dataflow.InputGate.
func (g *Gate) Block(ch int) {
	if g.blocked[ch] {
		return
	}
	g.blocked[ch] = true
	kept := g.ready[:0]
	for _, d := range g.ready {
		if int(d.Channel) == ch {
			g.held[ch] = append(g.held[ch], d)
		} else {
			kept = append(kept, d)
		}
	}
	g.ready = kept
	g.mu.Lock()
	g.isBlocked[ch] = true
	g.blocks++
	g.mu.Unlock()
}

// Unblock implements dataflow.InputGate.
func (g *Gate) Unblock(ch int) {
	if !g.blocked[ch] {
		return
	}
	g.blocked[ch] = false
	g.ready = append(g.ready, g.held[ch]...)
	g.held[ch] = nil
	g.mu.Lock()
	g.isBlocked[ch] = false
	g.mu.Unlock()
}

var _ dataflow.InputGate = (*Gate)(nil)
