package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
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

// ErrGateClosed is returned by InputGate.Next after Close or UnregisterJob.
var ErrGateClosed = errors.New("input gate closed")

var errGateClosed = ErrGateClosed

// delivery is one event of a channel for the gate: a buffer of records, or
// the end of the channel (err is io.EOF for end of partition).
type delivery struct {
	ch  *inputChannel
	buf []byte
	err error
}

// InputGate is the input of one consumer subtask: the union of all channels
// into it. Next is called from one goroutine (the task); Close from any.
type InputGate struct {
	id       GateID
	srv      *Server
	expected int
	// queue holds at most CreditsPerChannel buffers plus one final event per
	// channel, so the connection readers never block on it.
	queue     chan delivery
	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	channels map[channelKey]*inputChannel

	// Owned by the goroutine calling Next.
	cur   []byte
	pos   int
	curCh *inputChannel
	ended int
	err   error
}

// channelKey tells the channels of one gate apart.
type channelKey struct{ edge, source int }

// inputChannel is the consumer side of one channel.
type inputChannel struct {
	id      ChannelID
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

// RegisterGate creates the input gate id expecting channels input channels.
// Producers that connected early and wait for it are attached at once.
// Registering an id again replaces (and closes) the previous gate.
func (s *Server) RegisterGate(id GateID, channels int) *InputGate {
	g := &InputGate{
		id:       id,
		srv:      s,
		expected: channels,
		queue:    make(chan delivery, max(channels, 1)*(s.opts.CreditsPerChannel+1)),
		done:     make(chan struct{}),
		channels: make(map[channelKey]*inputChannel),
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
	if len(g.channels) >= g.expected {
		return nil, fmt.Errorf("gate %v expects %d channels and all are connected", g.id, g.expected)
	}
	s := g.srv
	ch := &inputChannel{
		id:      id,
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

// deliver queues an event for Next.
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
func (g *InputGate) Next(ctx context.Context) ([]byte, error) {
	if g.pos < len(g.cur) {
		return g.record(), nil
	}
	return g.nextBuffer(ctx)
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

// nextBuffer releases the consumed buffer and waits for the next event.
func (g *InputGate) nextBuffer(ctx context.Context) ([]byte, error) {
	for {
		if g.curCh != nil {
			g.curCh.release(g.cur)
			g.cur, g.pos, g.curCh = nil, 0, nil
		}
		if g.err != nil {
			return nil, g.err
		}
		if g.expected <= 0 {
			return nil, io.EOF
		}
		var d delivery
		select {
		case d = <-g.queue:
		default:
			select {
			case d = <-g.queue:
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-g.done:
				return nil, ErrGateClosed
			}
		}
		switch {
		case d.err == nil:
			g.cur, g.pos, g.curCh = d.buf, 0, d.ch
			if len(d.buf) > 0 {
				return g.record(), nil
			}
		case d.err == io.EOF:
			g.ended++
			if g.ended >= g.expected {
				g.err = io.EOF
			}
		default:
			g.err = d.err
		}
	}
}
