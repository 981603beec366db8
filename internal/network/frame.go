// Package network is the TaskManager-to-TaskManager data plane: a framed TCP
// protocol that carries batched buffers of serialized records from producer
// subtasks to consumer input gates, with credit-based back-pressure.
//
// The package never opens sockets on its own: the server takes a net.Listener
// and writers take a Dialer, so the caller decides whether the transport is
// plain TCP or mutual TLS.
//
// Wire format: every frame is an 8-byte header followed by its payload.
//
//	byte 0   magic 0xA5 (not ASCII and not a TLS record type, so HTTP or TLS
//	         spoken to a data port is recognised at the first byte)
//	byte 1   protocol version (3; version 1 had no EVENT frame, version 2 no
//	         event time: DATA_TIMED, WATERMARK and WATERMARK_STATUS)
//	byte 2   frame type
//	byte 3   reserved, must be 0
//	byte 4-7 payload length, u32 big-endian
//
// A DATA payload is a sequence of records, each uvarint(len) followed by len
// bytes; a buffer holds many records so that the cost of a frame, a syscall
// and a credit is shared by hundreds of records.
//
// A DATA_TIMED payload is a DATA payload whose records each begin with their
// event timestamp, a zigzag varint of milliseconds (event.DeliverTimedRecord):
// a buffer holds records of one kind, so records without event time cost
// nothing more than before timestamps existed.
//
// An EVENT payload is one in-band event (a checkpoint barrier, a cancel
// barrier, end of data) as encoded by package event, at most event.MaxSize
// bytes. It travels in order with the DATA frames of its channel and, like a
// DATA frame, consumes one credit, so the consumer's queue stays bounded by
// the credits it granted.
package network

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

const (
	frameMagic   = 0xA5
	frameVersion = 3
	headerSize   = 8

	// maxHelloSize bounds a HELLO: a 64-byte job id and five uvarints.
	maxHelloSize = 1 + maxJobIDLen + 5*binary.MaxVarintLen64
	maxJobIDLen  = 64
	// maxErrorSize bounds the text of an ERROR frame.
	maxErrorSize = 4096

	// maxFrameKey is the setting a user raises when records are too large.
	maxFrameKey = "taskmanager.network.max-frame-size"
)

// FrameType is the type byte of a frame header.
type FrameType uint8

// Frame types. The numbering is part of the wire protocol.
const (
	FrameHello          FrameType = 1 // producer -> consumer: ChannelID of the connection
	FrameAccept         FrameType = 2 // consumer -> producer: u32 initial credits, u32 buffer size, u32 max frame payload
	FrameError          FrameType = 3 // either way: UTF-8 reason, the sender closes afterwards
	FrameData           FrameType = 4 // producer -> consumer: a buffer of length-prefixed records
	FrameCredit         FrameType = 5 // consumer -> producer: u32 additional buffers the producer may send
	FrameEndOfPartition FrameType = 6 // producer -> consumer: no more data on this channel
	FrameEOPAck         FrameType = 7 // consumer -> producer: end of partition received
	FrameEvent          FrameType = 8 // producer -> consumer: one in-band event (package event)
	FrameDataTimed      FrameType = 9 // producer -> consumer: a buffer of records each preceded by its timestamp
)

var frameTypeNames = [...]string{
	FrameHello:          "HELLO",
	FrameAccept:         "ACCEPT",
	FrameError:          "ERROR",
	FrameData:           "DATA",
	FrameCredit:         "CREDIT",
	FrameEndOfPartition: "END_OF_PARTITION",
	FrameEOPAck:         "EOP_ACK",
	FrameEvent:          "EVENT",
	FrameDataTimed:      "DATA_TIMED",
}

func (t FrameType) String() string {
	if int(t) < len(frameTypeNames) && frameTypeNames[t] != "" {
		return frameTypeNames[t]
	}
	return fmt.Sprintf("frame type %d", uint8(t))
}

// Frame is one decoded frame.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// ReadFrame reads one frame from r. A DATA payload may be at most maxSize
// bytes; control frames have their own small fixed limits, so a peer cannot
// make the reader allocate more than maxSize whatever it sends. A clean end of
// stream between frames is io.EOF; everything else malformed is an error that
// says what is wrong.
func ReadFrame(r *bufio.Reader, maxSize int) (Frame, error) {
	typ, n, err := readHeader(r, maxSize)
	if err != nil {
		return Frame{}, err
	}
	payload := make([]byte, n)
	if err := readPayload(r, typ, payload); err != nil {
		return Frame{}, err
	}
	return Frame{Type: typ, Payload: payload}, nil
}

// WriteFrame writes f to w with a single Write call, so that frames written
// by different goroutines under a lock never interleave on the wire.
func WriteFrame(w io.Writer, f Frame) error {
	buf := make([]byte, headerSize+len(f.Payload))
	putHeader(buf, f.Type, len(f.Payload))
	copy(buf[headerSize:], f.Payload)
	_, err := w.Write(buf)
	return err
}

// putHeader fills hdr[:headerSize] for a frame of type t with n payload bytes.
func putHeader(hdr []byte, t FrameType, n int) {
	_ = hdr[headerSize-1]
	hdr[0] = frameMagic
	hdr[1] = frameVersion
	hdr[2] = byte(t)
	hdr[3] = 0
	binary.BigEndian.PutUint32(hdr[4:], uint32(n))
}

// readHeader reads and validates a frame header, returning the type and the
// payload length, which is within the limit of that type.
func readHeader(r *bufio.Reader, maxSize int) (FrameType, int, error) {
	hdr, err := r.Peek(headerSize)
	if len(hdr) > 0 && hdr[0] != frameMagic {
		// Judge the magic before truncation: a short HTTP probe is still HTTP.
		return 0, 0, badMagic(hdr[0])
	}
	if err != nil {
		if len(hdr) == 0 && err == io.EOF {
			return 0, 0, io.EOF
		}
		if errors.Is(err, io.EOF) {
			return 0, 0, fmt.Errorf("truncated frame header: got %d of %d bytes: %w", len(hdr), headerSize, io.ErrUnexpectedEOF)
		}
		return 0, 0, err
	}
	if hdr[1] != frameVersion {
		return 0, 0, fmt.Errorf("unsupported data protocol version %d (this build speaks version %d): run the same sluice version on all TaskManagers", hdr[1], frameVersion)
	}
	typ := FrameType(hdr[2])
	if hdr[3] != 0 {
		return 0, 0, fmt.Errorf("%v frame has reserved header byte 0x%02x, want 0", typ, hdr[3])
	}
	n64 := int64(binary.BigEndian.Uint32(hdr[4:]))
	if _, err := r.Discard(headerSize); err != nil {
		return 0, 0, err
	}
	var limit int64
	exact := false
	switch typ {
	case FrameHello:
		limit = maxHelloSize
	case FrameAccept:
		limit, exact = 12, true
	case FrameError:
		limit = maxErrorSize
	case FrameData, FrameDataTimed:
		limit = int64(maxSize)
	case FrameCredit:
		limit, exact = 4, true
	case FrameEndOfPartition, FrameEOPAck:
		limit, exact = 0, true
	case FrameEvent:
		// The exact size depends on the kind: event.Decode checks it.
		limit = event.MaxSize
	default:
		return 0, 0, fmt.Errorf("unknown frame type %d", uint8(typ))
	}
	switch {
	case exact && n64 != limit:
		return 0, 0, fmt.Errorf("%v frame has %d payload bytes, want %d", typ, n64, limit)
	case (typ == FrameData || typ == FrameDataTimed) && n64 > limit:
		return 0, 0, fmt.Errorf("frame of %d bytes exceeds the limit of %d (%s)", n64, limit, maxFrameKey)
	case n64 > limit:
		return 0, 0, fmt.Errorf("%v frame of %d bytes exceeds the limit of %d", typ, n64, limit)
	}
	return typ, int(n64), nil
}

// readPayload fills p with the payload of a frame whose header was read.
func readPayload(r *bufio.Reader, typ FrameType, p []byte) error {
	if got, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("truncated %v frame: got %d of %d payload bytes: %w", typ, got, len(p), io.ErrUnexpectedEOF)
		}
		return err
	}
	return nil
}

func badMagic(b byte) error {
	hint := "not a sluice data connection"
	switch b {
	case 'G', 'P', 'H', 'D', 'O', 'C', 'T':
		hint += " (plaintext HTTP?)"
	case 0x16:
		hint += " (a TLS handshake: is internal SSL enabled here but not on this TaskManager?)"
	}
	return fmt.Errorf("bad magic 0x%02x: %s", b, hint)
}

// appendHello encodes id as a HELLO payload.
func appendHello(dst []byte, id ChannelID) []byte {
	dst = append(dst, byte(len(id.Job)))
	dst = append(dst, id.Job...)
	for _, v := range [...]int{id.Attempt, id.Edge, id.Source, id.Target, id.Vertex} {
		dst = binary.AppendUvarint(dst, uint64(v))
	}
	return dst
}

// parseHello decodes a HELLO payload.
func parseHello(p []byte) (ChannelID, error) {
	var id ChannelID
	if len(p) == 0 {
		return id, errors.New("hello: empty payload")
	}
	n := int(p[0])
	p = p[1:]
	if n > len(p) {
		return id, fmt.Errorf("hello: job id of %d bytes but only %d bytes follow", n, len(p))
	}
	id.Job = string(p[:n])
	if err := validJobID(id.Job); err != nil {
		return id, fmt.Errorf("hello: %w", err)
	}
	p = p[n:]
	names := [...]string{"attempt", "edge", "source", "target", "vertex"}
	fields := [...]*int{&id.Attempt, &id.Edge, &id.Source, &id.Target, &id.Vertex}
	for i, f := range fields {
		v, k := binary.Uvarint(p)
		if k <= 0 {
			return id, fmt.Errorf("hello: %s field is truncated or malformed", names[i])
		}
		if v > 1<<31-1 {
			return id, fmt.Errorf("hello: %s %d out of range", names[i], v)
		}
		*f = int(v)
		p = p[k:]
	}
	if len(p) != 0 {
		return id, fmt.Errorf("hello: %d unexpected trailing bytes", len(p))
	}
	return id, nil
}

// validJobID accepts the job ids sluice generates (hex) and readable test ids,
// and nothing that could garble a log line.
func validJobID(job string) error {
	if job == "" || len(job) > maxJobIDLen {
		return fmt.Errorf("job id must have 1 to %d bytes, got %d", maxJobIDLen, len(job))
	}
	for i := 0; i < len(job); i++ {
		c := job[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("job id %q has invalid byte 0x%02x at %d", job, c, i)
		}
	}
	return nil
}

// validateRecords checks that buf is a whole sequence of length-prefixed
// records and counts them; with timed, that each record begins with a
// well-formed timestamp varint. The connection reader runs it once per
// buffer, so InputGate.Next can slice records out without checking lengths
// again.
func validateRecords(buf []byte, timed bool) (int, error) {
	records := 0
	for pos := 0; pos < len(buf); records++ {
		n := uint64(buf[pos])
		k := 1
		if n >= 0x80 {
			n, k = binary.Uvarint(buf[pos:])
			if k <= 0 {
				return records, fmt.Errorf("malformed record length at offset %d of a %d-byte buffer", pos, len(buf))
			}
		}
		start := pos + k
		if n > uint64(len(buf)-start) {
			return records, fmt.Errorf("record of %d bytes at offset %d runs past the end of the %d-byte buffer", n, start, len(buf))
		}
		pos = start + int(n)
		if timed {
			if _, k := binary.Varint(buf[start:pos]); k <= 0 {
				return records, fmt.Errorf("timed record at offset %d has no well-formed timestamp", start)
			}
		}
	}
	return records, nil
}
