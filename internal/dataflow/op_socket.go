package dataflow

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
)

// TypeSocket reads text lines from a TCP connection.
const TypeSocket = "socket"

func init() {
	Register(OperatorType{Name: TypeSocket, New: func() Definition { return new(SocketOptions) }})
}

// SocketOptions are the options of a socket source.
type SocketOptions struct {
	Host   string `yaml:"host"`
	Port   int    `yaml:"port"`
	Format string `yaml:"format"` // only "text"
}

// Check implements Definition.
func (s *SocketOptions) Check(op *OperatorSpec) (Shape, error) {
	if s.Host == "" {
		return Shape{}, op.errf("host", "missing required option")
	}
	if s.Port <= 0 || s.Port > 65535 {
		return Shape{}, op.errf("port", "missing required option or out of range: want 1-65535")
	}
	if s.Format != "" && s.Format != "text" {
		return Shape{}, op.errf("format", "unknown format %q: sockets read text lines", s.Format)
	}
	s.Format = "text"
	// One connection: a second reader would see a second stream.
	return Shape{MaxSubtasks: 1}, nil
}

// Plan implements Definition.
func (s *SocketOptions) Plan(*PlanContext) (Schema, error) {
	return Schema{{Name: "line", Kind: KindString}}, nil
}

// Access implements Definition.
func (s *SocketOptions) Access(*OperatorSpec) []Access {
	return []Access{{Scheme: "socket", Target: fmt.Sprintf("%s:%d", s.Host, s.Port)}}
}

// NewOperator implements Definition.
func (s *SocketOptions) NewOperator() Operator {
	return &socketSource{addr: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}
}

// socketBatch is how many lines the reader holds at most before it waits for Poll.
const socketBatch = 256

// socketSource connects to host:port and reads text lines until the peer closes. A reader
// goroutine, owned by the operator and stopped by Close, does the blocking reads; Poll takes
// what it has read, so a quiet peer leaves the task free for mail and cancellation.
type socketSource struct {
	NoInput
	name, addr string
	out        Output

	conn  net.Conn
	stop  func() bool   // unregisters closing conn on cancellation
	ready chan struct{} // a token after each line and at the end
	wg    sync.WaitGroup

	mu      sync.Mutex
	space   *sync.Cond // the reader waits on it while pending is full
	pending []string   // lines read, not yet polled
	spare   []string   // the slice the last Poll emitted, reused
	ended   bool       // the reader returned
	closed  bool       // Close: the reader stops
	readErr error      // why the reader returned, if not end of stream

	rec Record
	el  Element
}

func (s *socketSource) Open(ctx context.Context, rc *RuntimeContext) error {
	s.name, s.out = rc.Operator, rc.Output
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return opErr(s.name, fmt.Errorf("connect %s: %w", s.addr, err))
	}
	s.conn = conn
	// Closing the connection is the only way to interrupt a blocked read on cancel.
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	s.ready = make(chan struct{}, 1)
	s.space = sync.NewCond(&s.mu)
	s.rec = make(Record, 1)
	s.el = Element{Record: s.rec, Timestamp: NoTimestamp}
	s.wg.Add(1)
	go s.read()
	return nil
}

// read runs in the reader goroutine until the peer closes, the read fails or Close.
func (s *socketSource) read() {
	defer s.wg.Done()
	sc := bufio.NewScanner(s.conn)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		s.mu.Lock()
		for len(s.pending) >= socketBatch && !s.closed {
			s.space.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.pending = append(s.pending, line)
		s.mu.Unlock()
		s.signal()
	}
	s.mu.Lock()
	s.ended = true
	if err := sc.Err(); err != nil && err != io.EOF {
		s.readErr = err
	}
	s.mu.Unlock()
	s.signal()
}

func (s *socketSource) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Poll implements Source: it emits the lines the reader has, if any.
func (s *socketSource) Poll(ctx context.Context) (PollStatus, error) {
	s.mu.Lock()
	lines := s.pending
	s.pending, s.spare = s.spare[:0], nil
	ended, readErr := s.ended, s.readErr
	s.space.Signal()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.spare = lines
		s.mu.Unlock()
	}()
	if len(lines) > 0 {
		for _, line := range lines {
			s.rec[0] = String(line)
			if err := s.out.Collect(&s.el); err != nil {
				return PollEnd, err
			}
		}
		return PollMore, nil
	}
	if !ended {
		return PollIdle, nil
	}
	if ctx.Err() != nil {
		return PollEnd, ctx.Err()
	}
	if readErr != nil {
		return PollEnd, fmt.Errorf("read %s: %w", s.addr, readErr)
	}
	return PollEnd, nil
}

// Available implements Source: ready when the reader has read lines or ended.
func (s *socketSource) Available() <-chan struct{} { return s.ready }

func (s *socketSource) Finish() error { return nil }

// Close stops the reader and closes the connection.
func (s *socketSource) Close() error {
	if s.conn == nil {
		return nil
	}
	s.stop()
	s.mu.Lock()
	s.closed = true
	s.space.Broadcast()
	s.mu.Unlock()
	s.conn.Close()
	s.wg.Wait()
	s.conn = nil
	return nil
}

// CannotReplay implements NonReplayable: a socket's bytes are gone once read, so a restored
// job goes on from what the peer sends next.
func (s *SocketOptions) CannotReplay() bool { return true }
