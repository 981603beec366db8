// Package sealed is the sealed file format of checkpoints and savepoints: a
// streaming AEAD (the STREAM construction, as Tink's streaming AEAD) that
// encrypts and authenticates a file of any size in 64 KiB chunks, bound to
// the job, the checkpoint and the file's path, so that a file altered,
// truncated, extended, or moved to another checkpoint, job or name is
// refused when it is read.
//
// Layout:
//
//	header:  "SLSEAL\x00\x01" (8) | key id (8) | salt (32) | binding
//	binding: uvarint len | job id | u64 BE checkpoint id | uvarint len | path
//	subkey = HKDF-SHA256(key, salt, info = "sluice sealed v1" | binding)
//	chunks:  AES-256-GCM(subkey, nonce = u88 BE chunk index | u8 last,
//	                     aad = header, up to 64 KiB plaintext) with its 16-byte tag
//
// Every file has at least one chunk and exactly one last chunk, the final
// one; only an empty file has an empty chunk. The per-file subkey (fresh
// salt) means nonces never repeat under one key; the binding in the key
// derivation means a header edited to claim another binding fails to
// authenticate; the last flag in the nonce means a file cut at a chunk
// boundary, or extended, fails at its end, which Open checks first.
//
// Without a key, files are written in the clear and their SHA-256 is
// recorded instead (integrity.go).
package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Algorithm is the name of the sealing in _metadata's "sealing".
const Algorithm = "aes-256-gcm"

const (
	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize = 64 << 10
	tagSize   = 16
	chunkCT   = ChunkSize + tagSize
	saltSize  = 32
	magic     = "SLSEAL\x00\x01"
	info      = "sluice sealed v1"

	// MaxJobIDLen and MaxPathLen bound the binding, so a corrupt header
	// cannot make Open allocate much.
	MaxJobIDLen = 256
	MaxPathLen  = 4096
)

// ErrAuth is wrapped by every error that means the file's content or header
// failed authentication.
var ErrAuth = errors.New("authentication failed")

// ErrWrongKey is wrapped when a file was sealed with another key.
var ErrWrongKey = errors.New("sealed with another key")

// Binding is what a sealed file belongs to. Path is relative to the
// snapshot's root (chk-17/2-0-keyed, shared/…, or a savepoint's plain
// names), exactly as _metadata records it.
type Binding struct {
	JobID        string
	CheckpointID int64
	Path         string
}

func (b Binding) check() error {
	if b.JobID == "" || len(b.JobID) > MaxJobIDLen {
		return fmt.Errorf("job id of %d bytes: want 1..%d", len(b.JobID), MaxJobIDLen)
	}
	if b.CheckpointID <= 0 {
		return fmt.Errorf("checkpoint id %d: want > 0", b.CheckpointID)
	}
	if b.Path == "" || len(b.Path) > MaxPathLen {
		return fmt.Errorf("path of %d bytes: want 1..%d", len(b.Path), MaxPathLen)
	}
	return nil
}

func (b Binding) encode() []byte {
	e := binary.AppendUvarint(nil, uint64(len(b.JobID)))
	e = append(e, b.JobID...)
	e = binary.BigEndian.AppendUint64(e, uint64(b.CheckpointID))
	e = binary.AppendUvarint(e, uint64(len(b.Path)))
	return append(e, b.Path...)
}

// FileError is the error of a sealed file that cannot be opened or read; it
// names the file.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return "checkpoint file " + e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

func authError(chunk int64) error {
	return fmt.Errorf("%w (chunk %d): the file was altered, or belongs to another checkpoint or job", ErrAuth, chunk)
}

func header(k *Key, salt []byte, b Binding) []byte {
	h := make([]byte, 0, len(magic)+idSize+saltSize+len(b.JobID)+len(b.Path)+20)
	h = append(h, magic...)
	h = append(h, k.id[:]...)
	h = append(h, salt...)
	return append(h, b.encode()...)
}

func newAEAD(k *Key, salt []byte, b Binding) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, k.k[:], salt, info+string(b.encode()), 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func nonce(dst *[12]byte, chunk int64, last bool) []byte {
	clear(dst[:])
	binary.BigEndian.PutUint64(dst[3:11], uint64(chunk))
	if last {
		dst[11] = 1
	}
	return dst[:]
}

// HeaderSize is the size of the header for a binding.
func HeaderSize(b Binding) int64 {
	return int64(len(magic) + idSize + saltSize + len(b.encode()))
}

// SealedSize is the size of the sealed file of n plaintext bytes.
func SealedSize(b Binding, n int64) int64 {
	chunks := max(1, (n+ChunkSize-1)/ChunkSize)
	return HeaderSize(b) + n + chunks*tagSize
}

// Writer seals what is written to it, one chunk at a time: memory use is
// one chunk whatever the file's size. Close seals the last chunk; a file
// whose Writer was not closed does not open. Not safe for concurrent use.
type Writer struct {
	w      io.Writer
	aead   cipher.AEAD
	aad    []byte
	buf    []byte // plaintext of the chunk being filled
	out    []byte
	nonce  [12]byte
	chunk  int64
	n      int64 // bytes written to w
	err    error
	closed bool
}

// NewWriter writes the header for the binding to w and returns a Writer
// sealing into it.
func NewWriter(w io.Writer, k *Key, b Binding) (*Writer, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("seal %s: %w", b.Path, err)
	}
	return newWriter(w, k, b, salt)
}

func newWriter(w io.Writer, k *Key, b Binding, salt []byte) (*Writer, error) {
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("seal %s: %w", b.Path, err)
	}
	aead, err := newAEAD(k, salt, b)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", b.Path, err)
	}
	sw := &Writer{w: w, aead: aead, aad: header(k, salt, b), buf: make([]byte, 0, ChunkSize), out: make([]byte, 0, chunkCT)}
	if err := sw.emit(sw.aad); err != nil {
		return nil, fmt.Errorf("seal %s: %w", b.Path, err)
	}
	return sw, nil
}

func (w *Writer) emit(p []byte) error {
	n, err := w.w.Write(p)
	w.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
	}
	return err
}

// Write seals p. A full chunk is sealed only when more data follows it, so
// that the last chunk is known when it is sealed.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("sealed: write after Close")
	}
	written := 0
	for len(p) > 0 {
		if len(w.buf) == ChunkSize {
			if err := w.seal(false); err != nil {
				return written, err
			}
		}
		n := copy(w.buf[len(w.buf):ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
		written += n
	}
	return written, nil
}

func (w *Writer) seal(last bool) error {
	w.out = w.aead.Seal(w.out[:0], nonce(&w.nonce, w.chunk, last), w.buf, w.aad)
	w.chunk++
	w.buf = w.buf[:0]
	return w.emit(w.out)
}

// Close seals the last chunk. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	w.closed = true
	return w.seal(true)
}

// Size is the number of sealed bytes written so far (the file's size after
// Close).
func (w *Writer) Size() int64 { return w.n }

// Reader reads and verifies a sealed file. It reads by chunk, so reading
// part of a file (a rescaled restore reading its key groups) decrypts only
// the chunks it needs. Every chunk is authenticated before any of its bytes
// is returned. Not safe for concurrent use.
type Reader struct {
	r       io.ReaderAt
	path    string
	binding Binding
	keyID   string
	aead    cipher.AEAD
	aad     []byte
	hdr     int64
	chunks  int64
	size    int64 // plaintext
	nonce   [12]byte
	ct      []byte
	plain   []byte // decrypted chunk cur
	cur     int64  // -1: none
	off     int64  // Read position
}

// Open opens the sealed file r of size bytes, expecting it to be bound to
// want. It checks the header, the key id and the binding, and authenticates
// the last chunk, so a file that is truncated, extended, sealed with another
// key, or bound elsewhere is refused here; a chunk altered in the middle is
// refused when it is read. Errors are *FileError naming want.Path.
func Open(r io.ReaderAt, size int64, k *Key, want Binding) (*Reader, error) {
	if err := want.check(); err != nil {
		return nil, &FileError{Path: want.Path, Err: err}
	}
	return open(r, size, k, want.Path, &want)
}

// OpenUnbound opens a sealed file whose job and checkpoint are not known
// beforehand: a savepoint's _metadata, found by the directory the user
// names. The path must still match; the caller must check that the
// content names the ids Binding reports, and open every file it references
// with Open and the full binding.
func OpenUnbound(r io.ReaderAt, size int64, k *Key, path string) (*Reader, error) {
	return open(r, size, k, path, nil)
}

func open(r io.ReaderAt, size int64, k *Key, path string, want *Binding) (*Reader, error) {
	fail := func(err error) (*Reader, error) { return nil, &FileError{Path: path, Err: err} }
	// Fixed part, then the two length-prefixed fields, each bounded.
	if size < 0 {
		return fail(errors.New("negative size"))
	}
	fixed := int64(len(magic) + idSize + saltSize)
	prefix := make([]byte, min(size, fixed+binary.MaxVarintLen64+MaxJobIDLen+8+binary.MaxVarintLen64+MaxPathLen))
	if _, err := r.ReadAt(prefix, 0); err != nil && !errors.Is(err, io.EOF) {
		return fail(err)
	}
	if int64(len(prefix)) < fixed || string(prefix[:len(magic)]) != magic {
		return fail(fmt.Errorf("not a sealed file (no %q header): it was written without %s, or is damaged", "SLSEAL", KeyFileKey))
	}
	id := prefix[len(magic) : len(magic)+idSize]
	if !bytes.Equal(id, k.id[:]) {
		return fail(fmt.Errorf("%w %s, but %s holds key %s: configure the key the checkpoint was written with", ErrWrongKey, hex.EncodeToString(id), KeyFileKey, k.ID()))
	}
	salt := prefix[len(magic)+idSize : fixed]
	got, n, err := decodeBinding(prefix[fixed:])
	if err != nil {
		return fail(fmt.Errorf("%w: header: %v", ErrAuth, err))
	}
	if got.Path != path {
		return fail(fmt.Errorf("%w: the header names %q: the file was renamed or copied from another name", ErrAuth, got.Path))
	}
	if want != nil && (got.JobID != want.JobID || got.CheckpointID != want.CheckpointID) {
		return fail(fmt.Errorf("%w: the header names job %s checkpoint %d, want job %s checkpoint %d: the file belongs to another checkpoint or job",
			ErrAuth, got.JobID, got.CheckpointID, want.JobID, want.CheckpointID))
	}
	aead, err := newAEAD(k, salt, got)
	if err != nil {
		return fail(err)
	}
	hdr := fixed + int64(n)
	body := size - hdr
	if body < tagSize {
		return fail(fmt.Errorf("%w: truncated (%d bytes after the header)", ErrAuth, max(body, 0)))
	}
	chunks := (body + chunkCT - 1) / chunkCT
	lastCT := body - (chunks-1)*chunkCT
	if lastCT < tagSize {
		// A last chunk shorter than a tag: the file was cut or padded.
		return fail(fmt.Errorf("%w: truncated or extended", ErrAuth))
	}
	rd := &Reader{
		r: r, path: path, binding: got, keyID: k.ID(), aead: aead,
		aad: append([]byte(nil), prefix[:hdr]...), hdr: hdr, chunks: chunks,
		size: (chunks-1)*ChunkSize + lastCT - tagSize,
		ct:   make([]byte, chunkCT), cur: -1,
	}
	// Authenticating the end first catches truncation and extension at open.
	if err := rd.load(chunks - 1); err != nil {
		return nil, err
	}
	return rd, nil
}

func decodeBinding(p []byte) (Binding, int, error) {
	var b Binding
	off := 0
	field := func(limit int, what string) (string, error) {
		l, n := binary.Uvarint(p[off:])
		if n <= 0 {
			return "", fmt.Errorf("bad %s length", what)
		}
		if l == 0 || l > uint64(limit) {
			return "", fmt.Errorf("%s length %d outside 1..%d", what, l, limit)
		}
		off += n
		if len(p)-off < int(l) {
			return "", fmt.Errorf("short %s", what)
		}
		s := string(p[off : off+int(l)])
		off += int(l)
		return s, nil
	}
	var err error
	if b.JobID, err = field(MaxJobIDLen, "job id"); err != nil {
		return b, 0, err
	}
	if len(p)-off < 8 {
		return b, 0, errors.New("short checkpoint id")
	}
	b.CheckpointID = int64(binary.BigEndian.Uint64(p[off:]))
	off += 8
	if b.CheckpointID <= 0 {
		return b, 0, fmt.Errorf("checkpoint id %d", b.CheckpointID)
	}
	if b.Path, err = field(MaxPathLen, "path"); err != nil {
		return b, 0, err
	}
	return b, off, nil
}

func (r *Reader) load(chunk int64) error {
	if chunk == r.cur {
		return nil
	}
	off := r.hdr + chunk*chunkCT
	n := int64(chunkCT)
	last := chunk == r.chunks-1
	if last {
		n = r.size - chunk*ChunkSize + tagSize
	}
	ct := r.ct[:n]
	if _, err := r.r.ReadAt(ct, off); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: truncated while reading (chunk %d)", ErrAuth, chunk)
		}
		return &FileError{Path: r.path, Err: err}
	}
	plain, err := r.aead.Open(r.plain[:0], nonce(&r.nonce, chunk, last), ct, r.aad)
	if err != nil {
		r.cur = -1
		return &FileError{Path: r.path, Err: authError(chunk)}
	}
	r.plain, r.cur = plain, chunk
	return nil
}

// Size is the plaintext size.
func (r *Reader) Size() int64 { return r.size }

// Binding is the binding of the file's header (authenticated once a chunk
// has been; Open authenticates the last).
func (r *Reader) Binding() Binding { return r.binding }

// KeyID is the id of the key the file is sealed with.
func (r *Reader) KeyID() string { return r.keyID }

// ReadAt reads plaintext at off, authenticating every chunk it touches.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &FileError{Path: r.path, Err: errors.New("negative offset")}
	}
	n := 0
	for len(p) > 0 {
		if off >= r.size {
			return n, io.EOF
		}
		c := off / ChunkSize
		if err := r.load(c); err != nil {
			return n, err
		}
		m := copy(p, r.plain[off-c*ChunkSize:])
		p, off, n = p[m:], off+int64(m), n+m
	}
	return n, nil
}

// Read reads plaintext sequentially.
func (r *Reader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-r.off)]
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset of the next Read.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, &FileError{Path: r.path, Err: fmt.Errorf("seek: whence %d", whence)}
	}
	if offset < 0 {
		return 0, &FileError{Path: r.path, Err: errors.New("seek before the start")}
	}
	r.off = offset
	return offset, nil
}

// Verify authenticates every chunk (a whole-file check, as before trusting
// a checkpoint for recovery).
func (r *Reader) Verify() error {
	for c := range r.chunks {
		if err := r.load(c); err != nil {
			return err
		}
	}
	return nil
}

var (
	_ io.ReaderAt   = (*Reader)(nil)
	_ io.ReadSeeker = (*Reader)(nil)
)
