package network

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects log output written from server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*Server
	addr string
	logs *syncBuffer
	dial Dialer
}

// startServer serves on a loopback port until the test ends.
func startServer(t *testing.T, opts ServerOptions, tlsConf ...*tls.Config) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: l.Addr().String(), logs: &syncBuffer{}, dial: tcpDial}
	if len(tlsConf) == 2 {
		l = tls.NewListener(l, tlsConf[0])
		d := tls.Dialer{Config: tlsConf[1]}
		ts.dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ts.Server = NewServer(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func tcpDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// record builds a record that names its channel and sequence number, of a
// size that varies so both one- and two-byte length prefixes occur.
func record(edge, source, seq int) []byte {
	head := fmt.Sprintf("%d/%d/%d;", edge, source, seq)
	return append([]byte(head), bytes.Repeat([]byte{'x'}, seq%300)...)
}

func TestExchangeManyChannels(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{BufferSize: 4096, CreditsPerChannel: 2})
	const edges, sources, perChannel = 2, 3, 3000
	gate := srv.RegisterGate(GateID{Job: "feed", Attempt: 1, Vertex: 5, Subtask: 2}, edges*sources)
	defer gate.Close()

	errs := make(chan error, edges*sources)
	for e := range edges {
		for s := range sources {
			go func() {
				id := ChannelID{Job: "feed", Attempt: 1, Edge: e, Source: s, Target: 2, Vertex: 5}
				w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
				if err != nil {
					errs <- err
					return
				}
				for i := range perChannel {
					if err := w.WriteRecord(record(e, s, i)); err != nil {
						errs <- err
						return
					}
					if i == perChannel/2 {
						// Larger than a buffer: travels as its own frame.
						if err := w.WriteRecord(bytes.Repeat([]byte{'L'}, 10000)); err != nil {
							errs <- err
							return
						}
					}
				}
				errs <- w.Close()
			}()
		}
	}

	next := map[[2]int]int{}
	large := 0
	for {
		rec, err := gate.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec[0] == 'L' {
			large++
			continue
		}
		var e, s, seq int
		if _, err := fmt.Sscanf(string(rec[:bytes.IndexByte(rec, ';')]), "%d/%d/%d", &e, &s, &seq); err != nil {
			t.Fatalf("record %q: %v", rec, err)
		}
		if want := next[[2]int{e, s}]; seq != want {
			t.Fatalf("edge %d source %d: got record %d, want %d", e, s, seq, want)
		}
		if !bytes.Equal(rec, record(e, s, seq)) {
			t.Fatalf("record %d/%d/%d corrupted", e, s, seq)
		}
		next[[2]int{e, s}]++
	}
	for range edges * sources {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for k, n := range next {
		if n != perChannel {
			t.Errorf("channel %v: %d records, want %d", k, n, perChannel)
		}
	}
	if len(next) != edges*sources || large != edges*sources {
		t.Errorf("%d channels, %d large records; want %d", len(next), large, edges*sources)
	}
	if _, err := gate.Next(ctx); err != io.EOF {
		t.Errorf("Next after EOF: %v", err)
	}
	st := srv.Stats()
	if want := int64(edges * sources * (perChannel + 1)); st.RecordsReceived != want {
		t.Errorf("stats: %d records, want %d", st.RecordsReceived, want)
	}
}

func TestBackPressureBlocksWriter(t *testing.T) {
	ctx := testCtx(t)
	const bufSize, credits = 1024, 2
	srv := startServer(t, ServerOptions{BufferSize: bufSize, CreditsPerChannel: credits})
	id := ChannelID{Job: "bp", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{FlushTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}

	const total = 10000
	var mu sync.Mutex
	written := 0
	done := make(chan error, 1)
	go func() {
		rec := make([]byte, 100)
		for range total {
			if err := w.WriteRecord(rec); err != nil {
				done <- err
				return
			}
			mu.Lock()
			written++
			mu.Unlock()
		}
		done <- w.Close()
	}()

	// Nobody reads: the writer must stop after its credits and the buffer
	// it is filling, whatever the socket buffers could take.
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	stalled := written
	mu.Unlock()
	limit := (credits + 1) * bufSize / 101
	if stalled > limit {
		t.Fatalf("writer wrote %d records without a reader, want at most %d", stalled, limit)
	}
	if w.BackPressured() < 100*time.Millisecond {
		t.Fatalf("BackPressured = %v, want the time it was blocked", w.BackPressured())
	}
	for n := 0; ; n++ {
		_, err := gate.Next(ctx)
		if err == io.EOF {
			if n != total {
				t.Fatalf("read %d records, want %d", n, total)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.BytesSent() < total*101 {
		t.Fatalf("BytesSent = %d", w.BytesSent())
	}
}

func TestProducerDropBeforeEndOfPartition(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{})
	id := ChannelID{Job: "drop", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 2)
	defer gate.Close()
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteRecord([]byte("one"))
	w.WriteRecord([]byte("two"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	for _, want := range []string{"one", "two"} {
		rec, err := gate.Next(ctx)
		if err != nil || string(rec) != want {
			t.Fatalf("got %q, %v; want %q", rec, err, want)
		}
	}
	_, err = gate.Next(ctx)
	if err == nil || err == io.EOF || !strings.Contains(err.Error(), "before end of partition") {
		t.Fatalf("got %v, want a lost-connection error", err)
	}
	if _, again := gate.Next(ctx); again != err {
		t.Fatalf("second Next: %v", again)
	}
}

func TestBadConnectionsDoNotHurtOthers(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{HelloTimeout: 300 * time.Millisecond})
	good := ChannelID{Job: "good", Edge: 1}
	gate := srv.RegisterGate(good.gateID(), 1)
	defer gate.Close()
	bad := srv.RegisterGate(ChannelID{Job: "bad", Edge: 7}.gateID(), 10)
	defer bad.Close()

	// A producer connected before the bad ones must survive them.
	w, err := Connect(ctx, srv.dial, srv.addr, good, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		in    []byte
		hello bool
		want  string
	}{
		{"garbage", []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"), false, "bad magic 0x00"},
		{"http", []byte("GET /metrics HTTP/1.1\r\nHost: tm\r\n\r\n"), false, "plaintext HTTP?"},
		{"truncated", append(header(FrameHello, 20), 1, 'a'), false, "no hello within"},
		{"oversized hello", header(FrameHello, 1<<30), false, "HELLO frame of 1073741824 bytes exceeds the limit"},
		{"no hello", nil, false, "no hello within"},
		{"data first", header(FrameData, 10), false, "first frame is DATA, want HELLO"},
		{"oversized data", header(FrameData, 3000000), true, "frame of 3000000 bytes exceeds the limit of 1048576"},
		{"bad record", append(header(FrameData, 2), 9, 'a'), true, "record of 9 bytes at offset 1 runs past the end"},
		{"unknown type", header(42, 0), true, "unknown frame type 42"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Each hello claims its own channel (source i) of the "bad" gate.
			got := rawExchangeAs(t, srv.addr, c.in, c.hello, i)
			if !strings.Contains(got, c.want) {
				t.Fatalf("ERROR frame %q, want %q", got, c.want)
			}
		})
	}
	if logs := srv.logs.String(); !strings.Contains(logs, "bad magic 0x47") || !strings.Contains(logs, "peer=127.0.0.1:") {
		t.Errorf("log lacks the failure with its peer:\n%s", logs)
	}

	sent := make(chan error, 1)
	go func() {
		for i := range 1000 {
			if err := w.WriteRecord(record(1, 0, i)); err != nil {
				sent <- err
				return
			}
		}
		sent <- w.Close()
	}()
	n := 0
	for ; ; n++ {
		if _, err := gate.Next(ctx); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if n != 1000 {
		t.Fatalf("good channel delivered %d records", n)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// And a connection made after the bad ones works too.
	late := ChannelID{Job: "late", Edge: 1}
	lateGate := srv.RegisterGate(late.gateID(), 1)
	defer lateGate.Close()
	w2, err := Connect(ctx, srv.dial, srv.addr, late, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w2.WriteRecord([]byte("ok"))
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if rec, err := lateGate.Next(ctx); err != nil || string(rec) != "ok" {
		t.Fatalf("late channel: %q %v", rec, err)
	}
	if srv.Stats().FailedConnections < int64(len(cases)) {
		t.Errorf("stats: %+v", srv.Stats())
	}
}

// rawExchangeAs writes in to the server, after a HELLO for source i of the
// "bad" gate when hello is set, and returns the ERROR frame it answers.
func rawExchangeAs(t *testing.T, addr string, in []byte, hello bool, i int) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	if hello {
		WriteFrame(c, Frame{Type: FrameHello, Payload: appendHello(nil, ChannelID{Job: "bad", Edge: 7, Source: i})})
		if f, err := ReadFrame(br, 0); err != nil || f.Type != FrameAccept {
			t.Fatalf("hello: %v %v", f.Type, err)
		}
	}
	c.Write(in)
	f, err := ReadFrame(br, 0)
	if err != nil || f.Type != FrameError {
		t.Fatalf("answer: %v %v, want an ERROR frame", f.Type, err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after ERROR")
	}
	return string(f.Payload)
}

func TestUnknownGateTimesOut(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{HelloTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := Connect(ctx, srv.dial, srv.addr, ChannelID{Job: "nope", Edge: 1}, WriterOptions{})
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(rej.Reason, "no such gate") {
		t.Fatalf("got %v, want a refusal naming the missing gate", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Fatalf("refused after %v, want about the hello timeout", d)
	}
}

func TestHelloWaitsForRegistration(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{})
	id := ChannelID{Job: "early", Attempt: 3, Edge: 1, Target: 1, Vertex: 2}
	type result struct {
		w   *Writer
		err error
	}
	res := make(chan result, 1)
	go func() {
		w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
		res <- result{w, err}
	}()
	time.Sleep(100 * time.Millisecond)
	gate := srv.RegisterGate(GateID{Job: "early", Attempt: 3, Vertex: 2, Subtask: 1}, 1)
	defer gate.Close()
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.w.WriteRecord([]byte("hi"))
	r.w.Close()
	if rec, err := gate.Next(ctx); err != nil || string(rec) != "hi" {
		t.Fatalf("%q %v", rec, err)
	}
}

func TestWriterRetriesUntilServerUp(t *testing.T) {
	ctx := testCtx(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	id := ChannelID{Job: "retry", Edge: 1}
	res := make(chan error, 1)
	go func() {
		w, err := Connect(ctx, tcpDial, addr, id, WriterOptions{})
		if err == nil {
			w.WriteRecord([]byte("late"))
			err = w.Close()
		}
		res <- err
	}()
	time.Sleep(300 * time.Millisecond)
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	srv := NewServer(ServerOptions{})
	gate := srv.RegisterGate(id.gateID(), 1)
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, l) }()
	defer func() { cancel(); <-served }()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if rec, err := gate.Next(ctx); err != nil || string(rec) != "late" {
		t.Fatalf("%q %v", rec, err)
	}

	// Without a server the retries end with the context, naming the cause.
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l2.Addr().String()
	l2.Close()
	if _, err := Connect(short, tcpDial, dead, id, WriterOptions{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v", err)
	}
}

func TestFlushTimeoutSendsPartialBuffer(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{})
	id := ChannelID{Job: "idle", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{FlushTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteRecord([]byte("lonely"))
	wait, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if rec, err := gate.Next(wait); err != nil || string(rec) != "lonely" {
		t.Fatalf("%q %v", rec, err)
	}
}

func TestRecordLargerThanMaxFrame(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{MaxFrameSize: 64 << 10})
	id := ChannelID{Job: "big", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = w.WriteRecord(make([]byte, 100000))
	if err == nil || !strings.Contains(err.Error(), "record of 100000 bytes exceeds the max frame size of 65536") {
		t.Fatalf("got %v", err)
	}
	w.WriteRecord([]byte("still fine"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rec, err := gate.Next(ctx); err != nil || string(rec) != "still fine" {
		t.Fatalf("%q %v", rec, err)
	}
}

func TestUnregisterJobClosesChannels(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{CreditsPerChannel: 1, BufferSize: 1024})
	id := ChannelID{Job: "gone", Attempt: 1, Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() {
		for {
			if err := w.WriteRecord(make([]byte, 500)); err != nil {
				blocked <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	srv.UnregisterJob("gone", 1)
	if _, err := gate.Next(ctx); !errors.Is(err, ErrGateClosed) && err != nil {
		// Buffered records may still come first; the gate is closed after.
		for err == nil {
			_, err = gate.Next(ctx)
		}
		if !errors.Is(err, ErrGateClosed) {
			t.Fatalf("Next: %v", err)
		}
	}
	select {
	case err := <-blocked:
		if err == nil {
			t.Fatal("writer kept writing into a closed gate")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writer still blocked after its gate was unregistered")
	}
	w.Abort()
}

func TestExchangeOverTLS(t *testing.T) {
	ctx := testCtx(t)
	srvTLS, cliTLS := testTLSConfigs(t)
	srv := startServer(t, ServerOptions{}, srvTLS, cliTLS)
	id := ChannelID{Job: "secure", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.conn.(*tls.Conn); !ok {
		t.Fatalf("connection is %T, want *tls.Conn", w.conn)
	}
	const n = 20000
	go func() {
		for i := range n {
			w.WriteRecord(record(1, 0, i))
		}
		w.Close()
	}()
	for i := 0; ; i++ {
		rec, err := gate.Next(ctx)
		if err == io.EOF {
			if i != n {
				t.Fatalf("got %d records", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec, record(1, 0, i)) {
			t.Fatalf("record %d: %q", i, rec)
		}
	}

	// A plaintext client on the TLS port fails cleanly.
	_, err = Connect(ctx, tcpDial, srv.addr, ChannelID{Job: "plain", Edge: 1}, WriterOptions{})
	if err == nil {
		t.Fatal("plaintext connect to a TLS port succeeded")
	}
}

func TestRunExchangeBench(t *testing.T) {
	for _, recordOnly := range []bool{false, true} {
		var n int64
		res, err := RunExchangeBench(testCtx(t), BenchOptions{Records: 200000, RecordSize: 100,
			Decode: func(b []byte) error {
				n++
				if len(b) != 100 {
					return fmt.Errorf("record of %d bytes", len(b))
				}
				return nil
			}, recordOnly: recordOnly})
		if err != nil {
			t.Fatal(err)
		}
		if res.Records != 200000 || n != 200000 || res.RecordsPerSec <= 0 || res.RawMBPerSec <= 0 {
			t.Fatalf("record only %v: %d decoded, %+v", recordOnly, n, res)
		}
	}
}
