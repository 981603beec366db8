package network

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// Dialer opens a connection to addr; the caller decides TCP or TLS.
type Dialer func(ctx context.Context, addr string) (net.Conn, error)

// WriterOptions configures a Writer. Zero values take the defaults.
type WriterOptions struct {
	// BufferSize is the payload size of a DATA buffer; 0 takes the size the
	// consumer announces (ServerOptions.BufferSize, 32 KiB by default).
	BufferSize int
	// FlushTimeout is the longest a partly filled buffer waits before it is
	// sent (Flink's execution.buffer-timeout), default 100ms; negative
	// means only full buffers, Flush and Close send.
	FlushTimeout time.Duration
}

// RejectedError is the reason a consumer gave in an ERROR frame.
type RejectedError struct {
	Addr   string
	Reason string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("data exchange %s refused the channel: %s", e.Addr, e.Reason)
}

var errWriterClosed = errors.New("data exchange writer closed")

// Writer is the producer side of one channel. WriteRecord, WriteEvent, Flush
// and Close are meant for one goroutine; Abort, BackPressured and BytesSent
// for any.
type Writer struct {
	id   ChannelID
	addr string
	conn net.Conn

	mu       sync.Mutex
	buf      []byte // header room followed by the records of the current buffer
	timed    bool   // the current buffer holds timed records: it goes as DATA_TIMED
	limit    int    // headerSize + buffer size
	maxFrame int    // largest DATA payload the consumer accepts
	err      error  // sticky: the channel is unusable
	closed   bool

	credits    atomic.Int64
	creditKick chan struct{}
	ackCh      chan struct{}
	readerDone chan struct{}
	readErr    error // written before readerDone is closed

	stopFlush chan struct{}
	stopOnce  sync.Once
	flushDone chan struct{}

	aborted      atomic.Bool
	blocked      atomic.Int64 // nanoseconds waited for credit, finished waits
	blockedSince atomic.Int64 // unix nanoseconds the current wait began, 0 if none
	sent         atomic.Int64
}

// Connect dials addr, announces channel id and waits for the consumer to
// accept it. While the consumer is unreachable it retries with backoff until
// ctx is done, since the consumer's TaskManager may start a little later.
// Once connected it does not retry: a refusal (for example an unknown gate,
// as a *RejectedError) or a failed handshake is returned.
func Connect(ctx context.Context, dial Dialer, addr string, id ChannelID, opts WriterOptions) (*Writer, error) {
	if err := validJobID(id.Job); err != nil {
		return nil, fmt.Errorf("channel %v: %w", id, err)
	}
	for _, v := range [...]int{id.Attempt, id.Edge, id.Source, id.Target, id.Vertex} {
		if v < 0 || v > 1<<31-1 {
			return nil, fmt.Errorf("channel %v: field out of range", id)
		}
	}
	hello := make([]byte, headerSize, headerSize+maxHelloSize)
	hello = appendHello(hello, id)
	putHeader(hello, FrameHello, len(hello)-headerSize)

	backoff := 20 * time.Millisecond
	for {
		nc, err := dial(ctx, addr)
		if err == nil {
			var w *Writer
			w, err = handshake(ctx, nc, addr, id, hello, opts)
			if err == nil {
				return w, nil
			}
			// The consumer is reachable, so trying again would not change
			// its answer: a refusal or a protocol mismatch is final.
			nc.Close()
			return nil, fmt.Errorf("connect to data exchange %s for channel %v: %w", addr, id, err)
		}
		select {
		case <-ctx.Done():
			return nil, &PeerError{fmt.Errorf("connect to data exchange %s for channel %v: %w (last error: %v)", addr, id, ctx.Err(), err)}
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func handshake(ctx context.Context, nc net.Conn, addr string, id ChannelID, hello []byte, opts WriterOptions) (*Writer, error) {
	// Cancelling ctx interrupts the blocking read of the answer.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	if _, err := nc.Write(hello); err != nil {
		stop()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	br := bufio.NewReaderSize(nc, 512)
	f, err := ReadFrame(br, 0)
	if !stop() {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("read answer to hello: %w", err)
	}
	switch f.Type {
	case FrameAccept:
	case FrameError:
		return nil, &RejectedError{Addr: addr, Reason: string(f.Payload)}
	default:
		return nil, fmt.Errorf("answer to hello is %v, want ACCEPT", f.Type)
	}
	credits := int64(binary.BigEndian.Uint32(f.Payload[0:]))
	bufSize := int(binary.BigEndian.Uint32(f.Payload[4:]))
	maxFrame := int(binary.BigEndian.Uint32(f.Payload[8:]))
	if opts.BufferSize > 0 {
		bufSize = opts.BufferSize
	}
	bufSize = max(min(bufSize, maxFrame), 16)
	if opts.FlushTimeout == 0 {
		opts.FlushTimeout = DefaultFlushTimeout
	}

	w := &Writer{
		id:         id,
		addr:       addr,
		conn:       nc,
		buf:        make([]byte, headerSize, headerSize+bufSize),
		limit:      headerSize + bufSize,
		maxFrame:   maxFrame,
		creditKick: make(chan struct{}, 1),
		ackCh:      make(chan struct{}),
		readerDone: make(chan struct{}),
		stopFlush:  make(chan struct{}),
		flushDone:  make(chan struct{}),
	}
	w.credits.Store(credits)
	go w.readLoop(br)
	if opts.FlushTimeout > 0 {
		go w.flushLoop(opts.FlushTimeout)
	} else {
		close(w.flushDone)
	}
	return w, nil
}

// WriteRecord appends rec to the current buffer and sends the buffer when it
// is full, blocking while the channel has no credit. A record larger than a
// buffer goes alone in an oversized buffer if the consumer's max frame size
// allows, else it is refused with an error and the channel stays usable.
func (w *Writer) WriteRecord(rec []byte) error {
	w.mu.Lock()
	if w.err == nil && !w.timed && len(w.buf)+binary.MaxVarintLen64+len(rec) <= w.limit {
		w.buf = binary.AppendUvarint(w.buf, uint64(len(rec)))
		w.buf = append(w.buf, rec...)
		w.mu.Unlock()
		return nil
	}
	err := w.writeSlow(rec, false)
	w.mu.Unlock()
	return err
}

// WriteTimedRecord is WriteRecord for a record with event time: rec is a zigzag
// varint timestamp followed by the record (dataflow.AppendTimedRecord). Timed
// and untimed records go in buffers of their own kind (DATA_TIMED and DATA),
// so switching between them sends the current buffer first.
func (w *Writer) WriteTimedRecord(rec []byte) error {
	w.mu.Lock()
	if w.err == nil && w.timed && len(w.buf)+binary.MaxVarintLen64+len(rec) <= w.limit {
		w.buf = binary.AppendUvarint(w.buf, uint64(len(rec)))
		w.buf = append(w.buf, rec...)
		w.mu.Unlock()
		return nil
	}
	err := w.writeSlow(rec, true)
	w.mu.Unlock()
	return err
}

// dataFrame is the frame type of a buffer of timed or untimed records.
func dataFrame(timed bool) FrameType {
	if timed {
		return FrameDataTimed
	}
	return FrameData
}

func (w *Writer) writeSlow(rec []byte, timed bool) error {
	if w.err != nil {
		return w.err
	}
	if timed != w.timed {
		if len(w.buf) > headerSize {
			if err := w.sendLocked(); err != nil {
				return err
			}
		}
		w.timed = timed
	}
	need := uvarintLen(uint64(len(rec))) + len(rec)
	if len(w.buf)+need <= w.limit {
		w.buf = binary.AppendUvarint(w.buf, uint64(len(rec)))
		w.buf = append(w.buf, rec...)
		return nil
	}
	if need > w.maxFrame {
		return fmt.Errorf("record of %d bytes exceeds the max frame size of %d bytes (%s) of channel %v", len(rec), w.maxFrame, maxFrameKey, w.id)
	}
	if len(w.buf) > headerSize {
		if err := w.sendLocked(); err != nil {
			return err
		}
	}
	if headerSize+need <= w.limit {
		w.buf = binary.AppendUvarint(w.buf, uint64(len(rec)))
		w.buf = append(w.buf, rec...)
		return nil
	}
	// Oversized: header and length prefix, then the record itself, without
	// copying it into a buffer.
	if err := w.acquireCredit(); err != nil {
		return w.fail(err)
	}
	hdr := make([]byte, headerSize, headerSize+binary.MaxVarintLen64)
	hdr = binary.AppendUvarint(hdr, uint64(len(rec)))
	putHeader(hdr, dataFrame(timed), need)
	bufs := net.Buffers{hdr, rec}
	if _, err := bufs.WriteTo(w.conn); err != nil {
		return w.fail(w.connError(err))
	}
	w.sent.Add(int64(headerSize + need))
	return nil
}

// WriteEvent sends the records buffered so far, then the event, in order,
// each waiting for credit. It is how barriers, cancel barriers and end of
// data go downstream. payload must be an event as package event encodes it:
// one the consumer would refuse is refused here with an error and the
// channel stays usable.
func (w *Writer) WriteEvent(payload []byte) error {
	if _, err := event.Decode(payload); err != nil {
		return fmt.Errorf("channel %v: refusing to send a malformed event: %w", w.id, err)
	}
	// Holding w.mu like WriteRecord and the flush loop is what keeps an
	// event behind every record written before it.
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > headerSize {
		if err := w.sendLocked(); err != nil {
			return err
		}
	}
	if w.aborted.Load() {
		return w.fail(errors.New("data exchange writer aborted"))
	}
	if err := w.acquireCredit(); err != nil {
		return w.fail(err)
	}
	var frame [headerSize + event.MaxSize]byte
	putHeader(frame[:], FrameEvent, len(payload))
	n := copy(frame[headerSize:], payload)
	if _, err := w.conn.Write(frame[:headerSize+n]); err != nil {
		return w.fail(w.connError(err))
	}
	w.sent.Add(int64(headerSize + n))
	return nil
}

// Flush sends the current buffer if it holds any record, waiting for credit.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > headerSize {
		return w.sendLocked()
	}
	return nil
}

// sendLocked sends the current buffer as one DATA frame; w.mu is held.
func (w *Writer) sendLocked() error {
	if w.aborted.Load() {
		return w.fail(errors.New("data exchange writer aborted"))
	}
	if err := w.acquireCredit(); err != nil {
		return w.fail(err)
	}
	putHeader(w.buf, dataFrame(w.timed), len(w.buf)-headerSize)
	if _, err := w.conn.Write(w.buf); err != nil {
		return w.fail(w.connError(err))
	}
	w.sent.Add(int64(len(w.buf)))
	w.buf = w.buf[:headerSize]
	return nil
}

// acquireCredit takes one credit, waiting for the consumer to grant one.
// Only the holder of w.mu takes credits, so load-then-add cannot oversell.
func (w *Writer) acquireCredit() error {
	if w.credits.Load() > 0 {
		w.credits.Add(-1)
		return nil
	}
	start := time.Now()
	w.blockedSince.Store(start.UnixNano())
	defer func() {
		w.blockedSince.Store(0)
		w.blocked.Add(int64(time.Since(start)))
	}()
	for {
		select {
		case <-w.creditKick:
		case <-w.readerDone:
			if w.credits.Load() > 0 {
				break
			}
			return w.connError(io.ErrUnexpectedEOF)
		}
		if w.credits.Load() > 0 {
			w.credits.Add(-1)
			return nil
		}
	}
}

func (w *Writer) fail(err error) error {
	w.err = err
	return err
}

// connError explains a broken connection, preferring the consumer's reason.
func (w *Writer) connError(err error) error {
	select {
	case <-w.readerDone:
		if w.readErr != nil {
			return &PeerError{fmt.Errorf("channel %v to %s: %w", w.id, w.addr, w.readErr)}
		}
	default:
	}
	return &PeerError{fmt.Errorf("channel %v to %s: %w", w.id, w.addr, err)}
}

// readLoop receives credits, the end-of-partition ack and errors.
func (w *Writer) readLoop(br *bufio.Reader) {
	defer close(w.readerDone)
	acked := false
	for {
		f, err := ReadFrame(br, 0)
		if err != nil {
			if err == io.EOF {
				err = errors.New("consumer closed the connection")
			}
			w.readErr = err
			return
		}
		switch f.Type {
		case FrameCredit:
			w.credits.Add(int64(binary.BigEndian.Uint32(f.Payload)))
			select {
			case w.creditKick <- struct{}{}:
			default:
			}
		case FrameEOPAck:
			if !acked {
				acked = true
				close(w.ackCh)
			}
		case FrameError:
			w.readErr = &RejectedError{Addr: w.addr, Reason: string(f.Payload)}
			return
		default:
			w.readErr = fmt.Errorf("unexpected %v frame from the consumer", f.Type)
			return
		}
	}
}

// flushLoop sends partly filled buffers so records never wait longer than
// the flush timeout. It does not wait for credit: without credit the
// consumer is busy anyway, and the next tick tries again.
func (w *Writer) flushLoop(every time.Duration) {
	defer close(w.flushDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.stopFlush:
			return
		}
		w.mu.Lock()
		if w.err == nil && len(w.buf) > headerSize && w.credits.Load() > 0 {
			w.sendLocked()
		}
		w.mu.Unlock()
	}
}

func (w *Writer) stopFlusher() {
	w.stopOnce.Do(func() { close(w.stopFlush) })
	<-w.flushDone
}

// Close flushes, sends end of partition, waits for the consumer's ack and
// closes the connection. The error, if any, means the consumer may not have
// received everything.
func (w *Writer) Close() error {
	w.stopFlusher()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.err
	if err == nil && len(w.buf) > headerSize {
		err = w.sendLocked()
	}
	if err == nil {
		var eop [headerSize]byte
		putHeader(eop[:], FrameEndOfPartition, 0)
		if _, werr := w.conn.Write(eop[:]); werr != nil {
			err = w.connError(werr)
		}
	}
	if err == nil {
		select {
		case <-w.ackCh:
		case <-w.readerDone:
			select {
			case <-w.ackCh:
			default:
				err = w.connError(errors.New("no end-of-partition ack"))
			}
		}
	}
	w.err = errWriterClosed
	w.conn.Close()
	<-w.readerDone
	return err
}

// Abort closes the connection without end of partition, so the consumer's
// task fails rather than taking partial data as complete.
func (w *Writer) Abort() {
	w.aborted.Store(true)
	w.conn.Close()
	<-w.readerDone
	w.stopFlusher()
}

// BackPressured is the total time spent waiting for credit, including a
// wait in progress.
func (w *Writer) BackPressured() time.Duration {
	d := time.Duration(w.blocked.Load())
	if since := w.blockedSince.Load(); since != 0 {
		d += time.Since(time.Unix(0, since))
	}
	return d
}

// BytesSent is the number of DATA and EVENT bytes written, frame headers
// included.
func (w *Writer) BytesSent() int64 { return w.sent.Load() }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
