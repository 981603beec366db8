package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// ChannelID names one producer->consumer channel of a running job.
type ChannelID struct {
	Job     string // job id (hex string, <= 64 bytes)
	Attempt int    // execution attempt of the job (restarts increment it)
	Edge    int    // id of the edge in the job graph
	Source  int    // producer subtask index
	Target  int    // consumer subtask index
	Vertex  int    // consumer vertex id
}

func (id ChannelID) String() string {
	return fmt.Sprintf("%s/%d edge %d: %d->%d (vertex %d)", id.Job, id.Attempt, id.Edge, id.Source, id.Target, id.Vertex)
}

// gateID is the input gate the channel feeds.
func (id ChannelID) gateID() GateID {
	return GateID{Job: id.Job, Attempt: id.Attempt, Vertex: id.Vertex, Subtask: id.Target}
}

// GateID names the input gate of one consumer subtask.
type GateID struct {
	Job     string
	Attempt int
	Vertex  int
	Subtask int
}

func (id GateID) String() string {
	return fmt.Sprintf("%s/%d vertex %d subtask %d", id.Job, id.Attempt, id.Vertex, id.Subtask)
}

// ErrGateClosed is returned by InputGate.Next and NextDelivery after Close or
// UnregisterJob.
var ErrGateClosed = errors.New("input gate closed")

var errGateClosed = ErrGateClosed

// delivery is one element of a channel for the gate: a buffer of records, an
// event, or the end of the channel (err is io.EOF for end of partition).
type delivery struct {
	ch    *inputChannel
	buf   []byte
	err   error
	event bool // buf is one event payload, validated by event.Decode
	timed bool // buf holds timed records (a DATA_TIMED frame)
}

// taken is a delivery the consumer took from the queue but has not handed
// out: pos is where the records of a partly read buffer resume.
type taken struct {
	d   delivery
	pos int
}

// GateInput is one in-edge of a gate: its channels are consecutive indexes,
// in the order of the layout, so that producer and consumer compute the same
// index of a channel from the plan.
type GateInput struct {
	Edge     int
	Channels int  // source parallelism, 1 for a forward edge
	Forward  bool // the channel's Source is the consumer's own subtask
	Input    int  // logical input of the operator (0; 0 or 1 for joins)
}

// InputGate is the input of one consumer subtask: the union of all channels
// into it. Next, NextDelivery, Block, Unblock and Input are called from one
// goroutine (the task); Close from any.
type InputGate struct {
	id       GateID
	srv      *Server
	expected int
	layout   []GateInput // nil: one group of expected channels, indexed in order of connection
	// queue holds at most CreditsPerChannel elements plus one final one per
	// channel, so the connection readers never block on it.
	queue     chan delivery
	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	channels map[channelKey]*inputChannel

	// Owned by the goroutine calling Next or NextDelivery.
	cur   []byte             // records (or an event, with pos == len) of curCh
	pos   int                // next record in cur
	kind  event.DeliveryKind // of the records in cur: DeliverRecord or DeliverTimedRecord
	curCh *inputChannel      // owner of cur, which is released on the next call
	ended int
	err   error
	// Blocking. A blocked channel's elements wait in held[ch] in their
	// order; Unblock moves them to ready, which is served before the queue.
	// Invariant: no element of a blocked channel is in ready, so only
	// elements taken from the queue need the blocked check, and none at all
	// while nothing is blocked.
	blocked  []bool
	nblocked int
	held     [][]taken
	ready    []taken
	inputOf  []int // logical input of each channel

	// idle is the time (ns) the task waited in NextDelivery for an element,
	// idleSince when it waits now (0 otherwise): Flink's idle time, read by
	// IdleTime from any goroutine.
	idle, idleSince atomic.Int64
}

// channelKey tells the channels of one gate apart.
type channelKey struct{ edge, source int }

// inputChannel is the consumer side of one channel.
type inputChannel struct {
	id      ChannelID
	index   int32 // in the gate's layout, < 1<<20
	gate    *InputGate
	conn    *serverConn
	bufSize int
	free    chan []byte // received buffers handed back by Next for reuse

	available atomic.Int32 // credits the producer holds
	pending   atomic.Int32 // credits freed by Next and not yet sent
	kick      chan struct{}
	ended     bool // end of partition delivered; only the connection reader touches it
	detached  bool // under gate.mu
}

// RegisterGate creates the input gate id expecting channels input channels
// of any edges, as one group: channel indexes follow the order in which the
// producers connect. Producers that connected early and wait for it are
// attached at once. Registering an id again replaces (and closes) the
// previous gate.
func (s *Server) RegisterGate(id GateID, channels int) *InputGate {
	return s.register(id, max(channels, 0), nil)
}

// RegisterGateLayout creates the input gate id with a channel per source of
// each in-edge of layout: the channel of edge layout[i].Edge from source s
// has index base(i)+s, where base(i) is the sum of the Channels before it,
// and a forward edge's only channel comes from the consumer's own subtask.
// A producer whose edge or source is not in the layout is refused. The
// layout is checked (every edge once, at least one channel, a forward edge
// has one) and an error names what is wrong.
func (s *Server) RegisterGateLayout(id GateID, layout []GateInput) (*InputGate, error) {
	total := 0
	seen := make(map[int]bool, len(layout))
	for i, in := range layout {
		switch {
		case in.Edge < 0:
			return nil, fmt.Errorf("gate %v: input %d has edge %d, want >= 0", id, i, in.Edge)
		case seen[in.Edge]:
			return nil, fmt.Errorf("gate %v: edge %d appears twice in the layout", id, in.Edge)
		case in.Channels < 1:
			return nil, fmt.Errorf("gate %v: edge %d has %d channels, want at least 1", id, in.Edge, in.Channels)
		case in.Forward && in.Channels != 1:
			return nil, fmt.Errorf("gate %v: forward edge %d has %d channels, want 1", id, in.Edge, in.Channels)
		case in.Input < 0:
			return nil, fmt.Errorf("gate %v: edge %d feeds input %d, want >= 0", id, in.Edge, in.Input)
		case in.Channels > 1<<20-total:
			return nil, fmt.Errorf("gate %v: more than %d channels", id, 1<<20)
		}
		seen[in.Edge] = true
		total += in.Channels
	}
	return s.register(id, total, append([]GateInput(nil), layout...)), nil
}

func (s *Server) register(id GateID, channels int, layout []GateInput) *InputGate {
	g := &InputGate{
		id:       id,
		srv:      s,
		expected: channels,
		layout:   layout,
		queue:    make(chan delivery, max(channels, 1)*(s.opts.CreditsPerChannel+1)),
		done:     make(chan struct{}),
		channels: make(map[channelKey]*inputChannel),
		blocked:  make([]bool, channels),
		held:     make([][]taken, channels),
		inputOf:  make([]int, channels),
	}
	base := 0
	for _, in := range layout {
		for c := range in.Channels {
			g.inputOf[base+c] = in.Input
		}
		base += in.Channels
	}
	s.mu.Lock()
	old := s.gates[id]
	s.gates[id] = g
	close(s.gatesChanged)
	s.gatesChanged = make(chan struct{})
	s.mu.Unlock()
	if old != nil {
		s.log.Warn("data exchange: gate registered twice, closing the old one", "gate", id.String())
		old.Close()
	}
	return g
}

// UnregisterJob closes the gates of one attempt of a job, and with them the
// connections of their channels.
func (s *Server) UnregisterJob(job string, attempt int) {
	var gates []*InputGate
	s.mu.Lock()
	for id, g := range s.gates {
		if id.Job == job && id.Attempt == attempt {
			gates = append(gates, g)
		}
	}
	s.mu.Unlock()
	for _, g := range gates {
		g.Close()
	}
}

// Close unregisters the gate and closes its channels' connections; their
// producers see an error. A blocked Next returns ErrGateClosed.
func (g *InputGate) Close() {
	g.closeOnce.Do(func() {
		close(g.done)
		s := g.srv
		s.mu.Lock()
		if s.gates[g.id] == g {
			delete(s.gates, g.id)
		}
		s.mu.Unlock()
		g.mu.Lock()
		for _, ch := range g.channels {
			ch.conn.nc.Close()
		}
		g.mu.Unlock()
	})
}

// IdleTime is the total time the gate's task waited for input, including
// a wait in progress. Safe from any goroutine.
func (g *InputGate) IdleTime() time.Duration {
	d := time.Duration(g.idle.Load())
	if since := g.idleSince.Load(); since != 0 {
		d += time.Since(time.Unix(0, since))
	}
	return d
}

// Channels is the number of channels of the gate; their indexes are
// 0..Channels()-1.
func (g *InputGate) Channels() int { return g.expected }

// Input returns the logical input of the operator that channel ch feeds: the
// Input of its group in the layout, 0 for a gate without a layout.
func (g *InputGate) Input(ch int) int { return g.inputOf[ch] }

// index returns the channel index of id in the layout, or why id has none.
// g.mu is held.
func (g *InputGate) index(id ChannelID) (int, error) {
	if g.layout == nil {
		if len(g.channels) >= g.expected {
			return 0, fmt.Errorf("gate %v expects %d channels and all are connected", g.id, g.expected)
		}
		return len(g.channels), nil
	}
	base := 0
	for _, in := range g.layout {
		if in.Edge != id.Edge {
			base += in.Channels
			continue
		}
		switch {
		case in.Forward && id.Source != g.id.Subtask:
			return 0, fmt.Errorf("edge %d is a forward edge into subtask %d: source %d may not connect to it", id.Edge, g.id.Subtask, id.Source)
		case in.Forward:
			return base, nil
		case id.Source >= in.Channels:
			return 0, fmt.Errorf("edge %d has %d sources: source %d is out of range", id.Edge, in.Channels, id.Source)
		}
		return base + id.Source, nil
	}
	return 0, fmt.Errorf("edge %d is not an input of gate %v", id.Edge, g.id)
}

// attach claims the slot of channel id for conn.
func (g *InputGate) attach(id ChannelID, conn *serverConn) (*inputChannel, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.done:
		return nil, errors.New("gate closed")
	default:
	}
	key := channelKey{id.Edge, id.Source}
	if _, dup := g.channels[key]; dup {
		return nil, fmt.Errorf("duplicate connection for edge %d source %d", id.Edge, id.Source)
	}
	index, err := g.index(id)
	if err != nil {
		return nil, err
	}
	s := g.srv
	ch := &inputChannel{
		id:      id,
		index:   int32(index),
		gate:    g,
		conn:    conn,
		bufSize: s.opts.BufferSize,
		free:    make(chan []byte, s.opts.CreditsPerChannel),
		kick:    make(chan struct{}, 1),
	}
	ch.available.Store(int32(s.opts.CreditsPerChannel))
	g.channels[key] = ch
	s.active.Add(1)
	return ch, nil
}

// detach marks the end of a channel's connection. An error before end of
// partition is handed to Next, which fails the task.
func (g *InputGate) detach(ch *inputChannel, err error) {
	g.mu.Lock()
	if ch.detached {
		g.mu.Unlock()
		return
	}
	ch.detached = true
	g.mu.Unlock()
	g.srv.active.Add(-1)
	if err != nil && !ch.ended && !errors.Is(err, errGateClosed) {
		g.deliver(delivery{ch: ch, err: fmt.Errorf("channel %v from %s: %w", ch.id, ch.conn.peer, err)})
	}
}

// deliver queues an element for Next.
func (g *InputGate) deliver(d delivery) error {
	select {
	case g.queue <- d:
		return nil
	case <-g.done:
		return errGateClosed
	}
}

// buffer returns a buffer of n bytes for a DATA payload, reusing one Next
// has finished with when it is large enough.
func (ch *inputChannel) buffer(n int) []byte {
	if n <= ch.bufSize {
		select {
		case b := <-ch.free:
			return b[:n]
		default:
		}
		return make([]byte, n, ch.bufSize)
	}
	return make([]byte, n)
}

// release recycles a consumed buffer and returns its credit to the producer.
func (ch *inputChannel) release(b []byte) {
	if cap(b) == ch.bufSize {
		select {
		case ch.free <- b:
		default:
		}
	}
	ch.pending.Add(1)
	select {
	case ch.kick <- struct{}{}:
	default:
	}
}

// Next returns the next record from any channel of the gate; records of one
// channel come in the order they were written. The slice aliases the receive
// buffer and is valid until the next call. Next returns io.EOF once every
// expected channel has ended its partition, and an error if a channel's
// connection broke before that; after an error it keeps returning it.
//
// Next is the record-only view of the gate for tasks that do not read
// events yet: it consumes events and per-channel ends without returning
// them. It honours Block like NextDelivery.
func (g *InputGate) Next(ctx context.Context) ([]byte, error) {
	if g.pos < len(g.cur) {
		return g.untimed(g.record()), nil
	}
	for {
		d, err := g.nextSlow(ctx, nil)
		if err != nil {
			return nil, err
		}
		if d.Kind == event.DeliverRecord || d.Kind == event.DeliverTimedRecord {
			return g.untimed(d.Data), nil
		}
	}
}

// untimed strips the timestamp of a timed record for Next, the view without event time.
func (g *InputGate) untimed(rec []byte) []byte {
	if g.kind != event.DeliverTimedRecord {
		return rec
	}
	_, k := binary.Varint(rec) // validated on receipt
	return rec[k:]
}

// NextDelivery returns the next element of an unblocked channel: a record,
// an event, or the end of a channel's partition. Elements of one channel
// come in the order they were sent; Data aliases the receive buffer and is
// valid until the next call. It returns io.EOF once every channel ended its
// partition (after the DeliverEnd of each), event.ErrWoken when wake became
// ready while no element was available (a nil wake never does), and an error
// if a channel's connection broke, which it keeps returning after that.
func (g *InputGate) NextDelivery(ctx context.Context, wake <-chan struct{}) (event.Delivery, error) {
	if g.pos < len(g.cur) {
		return event.Delivery{Channel: g.curCh.index, Kind: g.kind, Data: g.record()}, nil
	}
	return g.nextSlow(ctx, wake)
}

// record slices the record at g.pos; the buffer was validated on receipt.
func (g *InputGate) record() []byte {
	buf, p := g.cur, g.pos
	n := int(buf[p])
	p++
	if n >= 0x80 {
		v, k := binary.Uvarint(buf[g.pos:])
		n, p = int(v), g.pos+k
	}
	end := p + n
	g.pos = end
	return buf[p:end:end]
}

// nextSlow releases the consumed buffer or event and waits for the next
// element of an unblocked channel.
func (g *InputGate) nextSlow(ctx context.Context, wake <-chan struct{}) (event.Delivery, error) {
	for {
		if g.curCh != nil {
			g.curCh.release(g.cur)
			g.cur, g.pos, g.curCh = nil, 0, nil
		}
		if g.err != nil {
			return event.Delivery{}, g.err
		}
		if g.expected <= 0 {
			return event.Delivery{}, io.EOF
		}
		var h taken
		if len(g.ready) > 0 {
			h = g.ready[0]
			g.ready[0] = taken{}
			g.ready = g.ready[1:]
		} else {
			select {
			case h.d = <-g.queue:
			default:
				// Nothing is ready: the task is idle until something is.
				start := time.Now().UnixNano()
				g.idleSince.Store(start)
				var stop error
				select {
				case h.d = <-g.queue:
				case <-wake:
					stop = event.ErrWoken
				case <-ctx.Done():
					stop = ctx.Err()
				case <-g.done:
					stop = ErrGateClosed
				}
				g.idleSince.Store(0)
				g.idle.Add(time.Now().UnixNano() - start)
				if stop != nil {
					return event.Delivery{}, stop
				}
			}
			if h.d.err != nil && h.d.err != io.EOF {
				// A broken channel fails the task at once, blocked or not.
				g.err = h.d.err
				continue
			}
			if g.nblocked > 0 && g.blocked[h.d.ch.index] {
				i := h.d.ch.index
				g.held[i] = append(g.held[i], h)
				continue
			}
		}
		d := h.d
		switch {
		case d.err == io.EOF:
			g.ended++
			if g.ended >= g.expected {
				g.err = io.EOF
			}
			return event.Delivery{Channel: d.ch.index, Kind: event.DeliverEnd}, nil
		case d.event:
			// pos at the end: the fast path of Next skips it, and the
			// next call releases its credit.
			g.cur, g.pos, g.curCh = d.buf, len(d.buf), d.ch
			return event.Delivery{Channel: d.ch.index, Kind: event.DeliverEvent, Data: d.buf}, nil
		default:
			g.cur, g.pos, g.curCh = d.buf, h.pos, d.ch
			g.kind = event.DeliverRecord
			if d.timed {
				g.kind = event.DeliverTimedRecord
			}
			if g.pos < len(g.cur) {
				return event.Delivery{Channel: d.ch.index, Kind: g.kind, Data: g.record()}, nil
			}
		}
	}
}

// Block holds back the elements of channel ch (an index below Channels()),
// including the rest of a buffer being read, until Unblock. Held elements
// keep their credits, so the
// producer stops after CreditsPerChannel buffers (buffers-per-channel): a
// blocked channel holds at most that much memory, and back-pressure spreads
// upstream exactly as for a slow consumer. Blocking a blocked channel does
// nothing. Block runs in the task's goroutine and costs the record path
// nothing while no channel is blocked.
func (g *InputGate) Block(ch int) {
	if g.blocked[ch] {
		return
	}
	g.blocked[ch] = true
	g.nblocked++
	// An unblocked channel holds nothing (Unblock emptied it), so the rest
	// of the current buffer comes first, then the channel's ready elements.
	if g.curCh != nil && int(g.curCh.index) == ch && g.pos < len(g.cur) {
		g.held[ch] = append(g.held[ch], taken{d: delivery{ch: g.curCh, buf: g.cur, timed: g.kind == event.DeliverTimedRecord}, pos: g.pos})
		g.cur, g.pos, g.curCh = nil, 0, nil
	}
	kept := g.ready[:0]
	for _, h := range g.ready {
		if int(h.d.ch.index) == ch {
			g.held[ch] = append(g.held[ch], h)
		} else {
			kept = append(kept, h)
		}
	}
	clear(g.ready[len(kept):])
	g.ready = kept
}

// Unblock releases channel ch: its held elements are delivered, in order,
// before anything that arrives later. Unblocking a channel that is not
// blocked does nothing.
func (g *InputGate) Unblock(ch int) {
	if !g.blocked[ch] {
		return
	}
	g.blocked[ch] = false
	g.nblocked--
	g.ready = append(g.ready, g.held[ch]...)
	clear(g.held[ch])
	g.held[ch] = g.held[ch][:0]
}
