package network

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// BenchOptions configures RunExchangeBench.
type BenchOptions struct {
	Records    int64
	RecordSize int
	// ServerTLS and ClientTLS switch both the exchange and the raw baseline
	// to TLS; nil means plaintext.
	ServerTLS, ClientTLS *tls.Config
	// Encode builds record i into dst (reused between calls); by default a
	// RecordSize record carrying i in its first bytes.
	Encode func(dst []byte, i int64) []byte
	// Decode, if set, is called on every record received.
	Decode func([]byte) error
	// Listen and Dial, when set, open the exchange's connection (the
	// TaskManager's transport, with its TLS); the raw baseline always uses
	// a bare socket (with ServerTLS/ClientTLS when set).
	Listen func() (net.Listener, error)
	Dial   Dialer

	// recordOnly reads with the record-only InputGate.Next rather than
	// NextDelivery, so the two can be compared (BenchmarkExchangeNext).
	recordOnly bool
}

// BenchResult is the outcome of RunExchangeBench. MB are 1e6 bytes of record
// payload; RawMBPerSec is a bare socket of the same transport moving the same
// number of bytes in 32 KiB writes, the ceiling the exchange is judged by.
type BenchResult struct {
	Records       int64   `json:"records"`
	RecordSize    int     `json:"record_size"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	RawMBPerSec   float64 `json:"raw_mb_per_sec"`
	TLS           bool    `json:"tls"`
}

// RunExchangeBench sends o.Records records through the real data plane (a
// Server on 127.0.0.1, a gate of one channel, one Writer,
// InputGate.NextDelivery as tasks read their input)
// and then measures the raw transport over loopback for comparison.
func RunExchangeBench(ctx context.Context, o BenchOptions) (BenchResult, error) {
	if o.Records <= 0 {
		o.Records = 10_000_000
	}
	if o.RecordSize <= 0 {
		o.RecordSize = 100
	}
	if (o.ServerTLS == nil) != (o.ClientTLS == nil) {
		return BenchResult{}, errors.New("bench: set both ServerTLS and ClientTLS, or neither")
	}
	res := BenchResult{Records: o.Records, RecordSize: o.RecordSize, TLS: o.ServerTLS != nil}

	secs, err := benchExchange(ctx, o)
	if err != nil {
		return res, err
	}
	res.Seconds = secs
	payload := float64(o.Records) * float64(o.RecordSize)
	res.RecordsPerSec = float64(o.Records) / secs
	res.MBPerSec = payload / 1e6 / secs

	rawSecs, err := benchRaw(ctx, o, int64(payload))
	if err != nil {
		return res, err
	}
	res.RawMBPerSec = payload / 1e6 / rawSecs
	return res, nil
}

// benchListener listens on loopback, with TLS if o asks for it.
func benchListener(o BenchOptions) (net.Listener, Dialer, error) {
	if o.Listen != nil && o.Dial != nil {
		l, err := o.Listen()
		return l, o.Dial, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	var d net.Dialer
	dial := Dialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	})
	if o.ServerTLS != nil {
		l = tls.NewListener(l, o.ServerTLS)
		td := tls.Dialer{Config: o.ClientTLS}
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return td.DialContext(ctx, "tcp", addr)
		}
	}
	return l, dial, nil
}

func benchExchange(ctx context.Context, o BenchOptions) (float64, error) {
	l, dial, err := benchListener(o)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := NewServer(ServerOptions{Logger: slog.New(slog.DiscardHandler)})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	defer func() { cancel(); <-served }()

	id := ChannelID{Job: "bench", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, dial, l.Addr().String(), id, WriterOptions{})
	if err != nil {
		return 0, err
	}

	encode := o.Encode
	if encode == nil {
		encode = func(dst []byte, i int64) []byte {
			dst = dst[:o.RecordSize]
			if len(dst) >= 8 {
				binary.LittleEndian.PutUint64(dst, uint64(i))
			}
			return dst
		}
	}
	start := time.Now()
	sent := make(chan error, 1)
	go func() {
		rec := make([]byte, o.RecordSize)
		for i := range o.Records {
			if err := w.WriteRecord(encode(rec[:0], i)); err != nil {
				w.Abort()
				sent <- err
				return
			}
		}
		sent <- w.Close()
	}()

	got, err := benchReceive(ctx, gate, o)
	if err != nil {
		return 0, err
	}
	secs := time.Since(start).Seconds()
	if err := <-sent; err != nil {
		return 0, fmt.Errorf("bench: send: %w", err)
	}
	if got != o.Records {
		return 0, fmt.Errorf("bench: received %d records, sent %d", got, o.Records)
	}
	return secs, nil
}

// benchReceive reads records from gate until its end.
func benchReceive(ctx context.Context, gate *InputGate, o BenchOptions) (int64, error) {
	var got int64
	if o.recordOnly {
		for {
			rec, err := gate.Next(ctx)
			if err == io.EOF {
				return got, nil
			}
			if err != nil {
				return got, fmt.Errorf("bench: receive: %w", err)
			}
			if o.Decode != nil {
				if err := o.Decode(rec); err != nil {
					return got, fmt.Errorf("bench: decode record %d: %w", got, err)
				}
			}
			got++
		}
	}
	for {
		d, err := gate.NextDelivery(ctx, nil)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, fmt.Errorf("bench: receive: %w", err)
		}
		if d.Kind != event.DeliverRecord {
			continue
		}
		if o.Decode != nil {
			if err := o.Decode(d.Data); err != nil {
				return got, fmt.Errorf("bench: decode record %d: %w", got, err)
			}
		}
		got++
	}
}

// benchRaw moves total bytes over a bare connection of the same transport.
func benchRaw(ctx context.Context, o BenchOptions, total int64) (float64, error) {
	l, dial, err := benchListener(o)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		// A TLS dialer handshakes inside dial: the server side must answer
		// concurrently, and the handshake stays out of the measured time.
		if tc, ok := c.(*tls.Conn); ok {
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				close(accepted)
				return
			}
		}
		accepted <- c
	}()
	c, err := dial(ctx, l.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	sc, ok := <-accepted
	if !ok {
		return 0, errors.New("bench: raw accept or handshake failed")
	}
	defer sc.Close()

	start := time.Now()
	wrote := make(chan error, 1)
	go func() {
		buf := make([]byte, 32<<10)
		for left := total; left > 0; {
			n := min(left, int64(len(buf)))
			if _, err := c.Write(buf[:n]); err != nil {
				wrote <- err
				return
			}
			left -= n
		}
		wrote <- nil
	}()
	buf := make([]byte, 32<<10)
	for left := total; left > 0; {
		n, err := sc.Read(buf[:min(left, int64(len(buf)))])
		if err != nil {
			return 0, fmt.Errorf("bench: raw read: %w", err)
		}
		left -= int64(n)
	}
	secs := time.Since(start).Seconds()
	if err := <-wrote; err != nil {
		return 0, fmt.Errorf("bench: raw write: %w", err)
	}
	return secs, nil
}
