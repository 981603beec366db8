package dataflow

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
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
	return Schema{{"line", KindString}}, nil
}

// Access implements Definition.
func (s *SocketOptions) Access(*OperatorSpec) []Access {
	return []Access{{Scheme: "socket", Target: fmt.Sprintf("%s:%d", s.Host, s.Port)}}
}

// NewOperator implements Definition.
func (s *SocketOptions) NewOperator() Operator {
	return sourced(func(rc *RuntimeContext) source {
		return &socketSource{name: rc.Operator, addr: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}
	})
}

// socketSource connects to host:port and reads text lines until the peer closes.
type socketSource struct {
	name, addr string
}

func (s *socketSource) run(ctx context.Context, out collector) error {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("operator %q: connect %s: %w", s.name, s.addr, err)
	}
	// Closing the connection is the only way to interrupt a blocked read on cancel.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	rec := make(Record, 1)
	for sc.Scan() {
		rec[0] = String(strings.TrimSuffix(sc.Text(), "\r"))
		if err := out.collect(rec); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil && err != io.EOF {
		return fmt.Errorf("operator %q: read %s: %w", s.name, s.addr, err)
	}
	return out.finish()
}
