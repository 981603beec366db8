package transport

import (
	"crypto/tls"
	"net"
	"sync"
)

// crypto/tls writes every record (at most 16 KiB) with its own write
// system call, so one 32 KiB data-exchange buffer costs two or three
// syscalls. recordBatcher sits under the TLS layer and, while a Write of
// the TLS connection is in progress, collects the records it produces so
// they leave in one syscall: TLS throughput is mostly syscalls and crypto,
// and this removes half of the former.
type recordBatcher struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
}

func (b *recordBatcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.batching {
		b.buf = append(b.buf, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	b.mu.Unlock()
	return b.Conn.Write(p)
}

func (b *recordBatcher) begin() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// end stops collecting and sends what was collected.
func (b *recordBatcher) end() error {
	b.mu.Lock()
	b.batching = false
	buf := b.buf
	b.buf = b.buf[:0]
	b.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(buf)
	return err
}

// batchedTLSConn is a TLS connection whose Writes leave in one syscall.
type batchedTLSConn struct {
	*tls.Conn
	raw *recordBatcher
	wmu sync.Mutex
}

func (c *batchedTLSConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.raw.begin()
	n, err := c.Conn.Write(p)
	if ferr := c.raw.end(); err == nil && ferr != nil {
		err = ferr
		n = 0
	}
	return n, err
}

// NetConn exposes the TCP connection, as tls.Conn does.
func (c *batchedTLSConn) NetConn() net.Conn { return c.raw.Conn }
