package network

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// Defaults of ServerOptions and WriterOptions.
const (
	DefaultBufferSize        = 64 << 10
	DefaultCreditsPerChannel = 8
	DefaultMaxFrameSize      = 1 << 20
	DefaultHelloTimeout      = 10 * time.Second
	DefaultFlushTimeout      = 100 * time.Millisecond
)

// connReadBufferSize is the bufio size of a server connection. Measured on
// loopback, reading up to 64 KiB per syscall and copying DATA payloads out of
// it beats reading each payload straight into its buffer with more syscalls.
const connReadBufferSize = 128 << 10

// ServerOptions configures a Server. Zero values take the defaults.
type ServerOptions struct {
	// BufferSize is the size of the receive buffers kept for reuse and is
	// told to writers that do not choose their own (default 32 KiB).
	BufferSize int
	// CreditsPerChannel is how many buffers a channel may have in flight:
	// sent by the producer and not yet consumed by InputGate.Next (default
	// 8). It bounds the memory of a channel (credits x buffer size); on
	// loopback 8 x 32 KiB keeps one channel near the socket's speed where 4
	// left the producer waiting for credit about a third of the time.
	CreditsPerChannel int
	// MaxFrameSize is the largest DATA payload accepted (default 1 MiB);
	// a larger frame is a protocol error that closes the connection.
	MaxFrameSize int
	// HelloTimeout bounds the time from accept until a valid HELLO names a
	// registered gate (default 10s), TLS handshake included.
	HelloTimeout time.Duration
	// Logger receives one line per failed connection (default slog.Default()).
	Logger *slog.Logger
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.CreditsPerChannel <= 0 {
		o.CreditsPerChannel = DefaultCreditsPerChannel
	}
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
	if o.BufferSize > o.MaxFrameSize {
		o.BufferSize = o.MaxFrameSize
	}
	if o.HelloTimeout <= 0 {
		o.HelloTimeout = DefaultHelloTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stats are cumulative counters of a Server.
type Stats struct {
	Connections       int64 `json:"connections"`        // accepted connections
	FailedConnections int64 `json:"failed_connections"` // connections closed on an error
	ActiveChannels    int64 `json:"active_channels"`    // channels currently attached to a gate
	BytesReceived     int64 `json:"bytes_received"`     // DATA bytes, headers included
	BuffersReceived   int64 `json:"buffers_received"`
	RecordsReceived   int64 `json:"records_received"`
	EventsReceived    int64 `json:"events_received"` // EVENT frames (barriers, end of data)
}

// Server accepts producer connections and routes their buffers to the input
// gates registered on it.
type Server struct {
	opts ServerOptions
	log  *slog.Logger

	mu           sync.Mutex
	gates        map[GateID]*InputGate
	gatesChanged chan struct{} // closed and replaced on every registration

	connections, failed, active    atomic.Int64
	bytes, buffers, recordsCounter atomic.Int64
	events                         atomic.Int64
}

// NewServer returns a server with opts; call Serve to accept connections.
func NewServer(opts ServerOptions) *Server {
	opts = opts.withDefaults()
	return &Server{
		opts:         opts,
		log:          opts.Logger,
		gates:        make(map[GateID]*InputGate),
		gatesChanged: make(chan struct{}),
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:       s.connections.Load(),
		FailedConnections: s.failed.Load(),
		ActiveChannels:    s.active.Load(),
		BytesReceived:     s.bytes.Load(),
		BuffersReceived:   s.buffers.Load(),
		RecordsReceived:   s.recordsCounter.Load(),
		EventsReceived:    s.events.Load(),
	}
}

// Serve accepts connections on l until ctx is done or l is closed, then
// closes l and every connection it accepted and returns nil. Each connection
// has its own goroutine; an error on one is logged and closes only that one.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = make(map[net.Conn]struct{})
	)
	defer func() {
		cancel()
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()

	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off rather than
			// spin, keep serving the connections that exist.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("data exchange: accept failed", "address", l.Addr().String(), "err", err, "retry-in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		delay = 0
		mu.Lock()
		conns[nc] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			s.serveConn(ctx, nc)
			mu.Lock()
			delete(conns, nc)
			mu.Unlock()
		})
	}
}

// serverConn is the consumer side of one producer connection.
type serverConn struct {
	srv  *Server
	nc   net.Conn
	peer string
	br   *bufio.Reader

	wmu     sync.Mutex // one frame at a time from the credit loop and the reader
	scratch [headerSize + 16]byte
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	s.connections.Add(1)
	c := &serverConn{srv: s, nc: nc, peer: nc.RemoteAddr().String(), br: bufio.NewReaderSize(nc, connReadBufferSize)}

	ch, err := c.handshake(ctx)
	if err == nil {
		err = c.readLoop(ch)
		ch.gate.detach(ch, err)
		if err != nil && !errors.Is(err, errGateClosed) {
			c.sendError(err.Error())
		}
	}
	if err == nil || errors.Is(err, errGateClosed) {
		return
	}
	s.failed.Add(1)
	attrs := []any{"peer", c.peer, "err", err}
	if ch != nil {
		attrs = append(attrs, "channel", ch.id.String())
	}
	if ch == nil && err == io.EOF {
		// Closed before saying anything: a port probe or health check.
		s.log.Debug("data exchange: connection closed before hello", attrs...)
		return
	}
	s.log.Warn("data exchange: connection failed", attrs...)
}

// handshake reads the HELLO, waits for the gate, claims the channel and
// answers ACCEPT; on failure it tells the peer why with an ERROR frame.
func (c *serverConn) handshake(ctx context.Context) (*inputChannel, error) {
	s := c.srv
	deadline := time.Now().Add(s.opts.HelloTimeout)
	c.nc.SetDeadline(deadline)
	// Any size passes here: only a HELLO payload, bounded by its own small
	// limit, is read before the peer has named a registered gate.
	typ, n, err := readHeader(c.br, 1<<31-1)
	if err == nil && typ != FrameHello {
		err = fmt.Errorf("first frame is %v, want HELLO", typ)
	}
	var hello [maxHelloSize]byte
	if err == nil {
		err = readPayload(c.br, typ, hello[:n])
	}
	if err != nil {
		if err == io.EOF {
			return nil, err
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			err = fmt.Errorf("no hello within %v: %w", s.opts.HelloTimeout, err)
		}
		c.sendError(err.Error())
		return nil, err
	}
	id, err := parseHello(hello[:n])
	if err != nil {
		c.sendError(err.Error())
		return nil, err
	}
	g, err := s.waitGate(ctx, id.gateID(), deadline)
	if err != nil {
		err = fmt.Errorf("channel %v: %w", id, err)
		c.sendError(err.Error())
		return nil, err
	}
	ch, err := g.attach(id, c)
	if err != nil {
		err = fmt.Errorf("channel %v: %w", id, err)
		c.sendError(err.Error())
		return nil, err
	}
	c.nc.SetDeadline(time.Time{})
	var p [12]byte
	binary.BigEndian.PutUint32(p[0:], uint32(s.opts.CreditsPerChannel))
	binary.BigEndian.PutUint32(p[4:], uint32(s.opts.BufferSize))
	binary.BigEndian.PutUint32(p[8:], uint32(s.opts.MaxFrameSize))
	if err := c.writeFrame(FrameAccept, p[:]); err != nil {
		g.detach(ch, err)
		return nil, fmt.Errorf("send accept: %w", err)
	}
	return ch, nil
}

// waitGate returns the gate id, waiting until deadline for it to be
// registered: the producer's task may start before the consumer's.
func (s *Server) waitGate(ctx context.Context, id GateID, deadline time.Time) (*InputGate, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		s.mu.Lock()
		g, changed := s.gates[id], s.gatesChanged
		s.mu.Unlock()
		if g != nil {
			return g, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, fmt.Errorf("no such gate %v: not registered within %v (is the consumer task deployed on this TaskManager?)", id, s.opts.HelloTimeout)
		case <-ctx.Done():
			return nil, errors.New("server shutting down")
		}
	}
}

// readLoop receives the frames of an accepted channel until end of partition
// and the peer's close. A nil result means the channel ended cleanly.
func (c *serverConn) readLoop(ch *inputChannel) error {
	s := c.srv
	done := make(chan struct{})
	defer close(done)
	go c.creditLoop(ch, done)

	ended := false
	for {
		typ, n, err := readHeader(c.br, s.opts.MaxFrameSize)
		if err != nil {
			if ended {
				// Whatever ends the connection after end of
				// partition (the producer's close, or the gate
				// closing it once the task is done) is no failure.
				return nil
			}
			select {
			case <-ch.gate.done:
				return errGateClosed // the task ended or was cancelled
			default:
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &PeerError{fmt.Errorf("connection lost before end of partition: %w", err)}
		}
		if ended {
			return fmt.Errorf("%v frame after end of partition", typ)
		}
		switch typ {
		case FrameData, FrameDataTimed:
			if ch.available.Add(-1) < 0 {
				return fmt.Errorf("%v frame without credit: the producer ignores back-pressure", typ)
			}
			buf := ch.buffer(n)
			if err := readPayload(c.br, typ, buf); err != nil {
				return err
			}
			timed := typ == FrameDataTimed
			records, err := validateRecords(buf, timed)
			if err != nil {
				return fmt.Errorf("bad %v frame: %w", typ, err)
			}
			s.bytes.Add(int64(headerSize + n))
			s.buffers.Add(1)
			s.recordsCounter.Add(int64(records))
			if err := ch.gate.deliver(delivery{ch: ch, buf: buf, timed: timed}); err != nil {
				return err
			}
		case FrameEvent:
			// Same credit rule as DATA: an event takes a slot of the
			// gate's bounded queue until the task has read it.
			if ch.available.Add(-1) < 0 {
				return errors.New("EVENT frame without credit: the producer ignores back-pressure")
			}
			p := make([]byte, n)
			if err := readPayload(c.br, typ, p); err != nil {
				return err
			}
			if _, err := event.Decode(p); err != nil {
				return fmt.Errorf("bad EVENT frame: %w", err)
			}
			s.events.Add(1)
			if err := ch.gate.deliver(delivery{ch: ch, buf: p, event: true}); err != nil {
				return err
			}
		case FrameEndOfPartition:
			ended, ch.ended = true, true
			// Acknowledge before delivering: once the gate has the last
			// end-of-partition its task may finish and close every
			// connection, and an ack not yet written would be lost (the
			// producer would fail a job that succeeded). The buffers are
			// in this process's memory already, so the producer may finish.
			// A producer that went away early is no failure here.
			_ = c.writeFrame(FrameEOPAck, nil)
			if err := ch.gate.deliver(delivery{ch: ch, err: io.EOF}); err != nil {
				return err
			}
		case FrameError:
			p := make([]byte, n)
			if err := readPayload(c.br, typ, p); err != nil {
				return err
			}
			return &PeerError{fmt.Errorf("producer failed: %s", p)}
		default:
			return fmt.Errorf("unexpected %v frame from a producer", typ)
		}
	}
}

// creditLoop sends the credits that InputGate.Next and NextDelivery free. It
// runs apart from them so that a consumer never blocks on a socket write, and
// it batches the credits freed while it was busy into one frame.
func (c *serverConn) creditLoop(ch *inputChannel, done <-chan struct{}) {
	var p [4]byte
	for {
		select {
		case <-ch.kick:
		case <-done:
			return
		}
		n := ch.pending.Swap(0)
		if n <= 0 {
			continue
		}
		// Count the credit as available before the producer can use it.
		ch.available.Add(n)
		binary.BigEndian.PutUint32(p[:], uint32(n))
		if err := c.writeFrame(FrameCredit, p[:]); err != nil {
			return // the reader sees the broken connection too and reports it
		}
	}
}

// writeFrame writes a small control frame with a single Write.
func (c *serverConn) writeFrame(t FrameType, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.scratch[:headerSize]
	putHeader(b, t, len(payload))
	b = append(b, payload...)
	_, err := c.nc.Write(b)
	return err
}

// sendError tells the peer why its connection is closed, best effort.
func (c *serverConn) sendError(reason string) {
	if len(reason) > maxErrorSize {
		reason = reason[:maxErrorSize]
	}
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := make([]byte, headerSize, headerSize+len(reason))
	putHeader(b, FrameError, len(reason))
	c.nc.Write(append(b, reason...))
}
