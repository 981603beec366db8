package sealed

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Integrity is the name of the unkeyed mode in _metadata's "sealing": files
// are in the clear and their SHA-256 is recorded in _metadata. It detects
// corruption and mix-ups, not an attacker who can rewrite _metadata too.
const Integrity = "sha-256"

// ErrDigest is wrapped by every error of a file whose SHA-256 or size is not
// the recorded one.
var ErrDigest = errors.New("SHA-256 mismatch")

// HashWriter passes writes through and computes their SHA-256 and size, for
// FileRef.SHA256 and FileRef.Size.
type HashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

// NewHashWriter returns a HashWriter writing to w.
func NewHashWriter(w io.Writer) *HashWriter { return &HashWriter{w: w, h: sha256.New()} }

// Write writes p to the underlying writer and hashes what was written.
func (w *HashWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Sum is the hex SHA-256 of what was written.
func (w *HashWriter) Sum() string { return hex.EncodeToString(w.h.Sum(nil)) }

// Size is the number of bytes written.
func (w *HashWriter) Size() int64 { return w.n }

// HashReader reads a file whose size and SHA-256 were recorded, and
// returns an error naming the file instead of io.EOF if they differ. The
// caller must read to the end: content is only trusted once Read has
// returned io.EOF (a reader of part of a file reads the rest to check it).
type HashReader struct {
	r         io.Reader
	path      string
	h         hash.Hash
	n, size   int64
	want      []byte
	checked   bool
	resultErr error
}

// NewHashReader reads r, the file at path (for messages) expected to hold
// size bytes with the hex SHA-256 sum.
func NewHashReader(r io.Reader, path string, size int64, sum string) (*HashReader, error) {
	want, err := hex.DecodeString(sum)
	if err != nil || len(want) != sha256.Size {
		return nil, &FileError{Path: path, Err: fmt.Errorf("recorded SHA-256 %q is not 64 hex digits", sum)}
	}
	return &HashReader{r: io.LimitReader(r, size+1), path: path, h: sha256.New(), size: size, want: want}, nil
}

// Read reads from the file; at its end it checks the size and the digest.
func (r *HashReader) Read(p []byte) (int, error) {
	if r.checked {
		return 0, r.resultErr
	}
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if r.n > r.size {
		return n, r.finish(fmt.Errorf("%w: longer than the recorded %d bytes: the file was altered, or belongs to another checkpoint", ErrDigest, r.size))
	}
	if errors.Is(err, io.EOF) {
		if r.n != r.size {
			return n, r.finish(fmt.Errorf("%w: %d bytes, the checkpoint recorded %d: the file was truncated or replaced", ErrDigest, r.n, r.size))
		}
		if subtle.ConstantTimeCompare(r.h.Sum(nil), r.want) != 1 {
			return n, r.finish(fmt.Errorf("%w: the file was altered, or belongs to another checkpoint or job", ErrDigest))
		}
		return n, r.finish(nil)
	}
	if err != nil {
		return n, &FileError{Path: r.path, Err: err}
	}
	return n, nil
}

func (r *HashReader) finish(err error) error {
	r.checked = true
	if err != nil {
		r.resultErr = &FileError{Path: r.path, Err: err}
	} else {
		r.resultErr = io.EOF
	}
	return r.resultErr
}

// VerifyHash reads r to its end and checks its size and SHA-256.
func VerifyHash(r io.Reader, path string, size int64, sum string) error {
	hr, err := NewHashReader(r, path, size, sum)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, hr)
	return err
}

// digestPrefix starts the last line of an unsealed _metadata.
const digestPrefix = "sha-256 "

// AppendDigestLine appends to an unsealed _metadata the line holding the
// SHA-256 of what precedes it ("sha-256 <hex>\n"), so a damaged or
// hand-edited _metadata is refused even without a key.
func AppendDigestLine(b []byte) []byte {
	sum := sha256.Sum256(b)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
		sum = sha256.Sum256(b)
	}
	b = append(b, digestPrefix...)
	b = hex.AppendEncode(b, sum[:])
	return append(b, '\n')
}

// SplitDigestLine checks the last line written by AppendDigestLine and
// returns what precedes it. path names the file in errors.
func SplitDigestLine(b []byte, path string) ([]byte, error) {
	fail := func(why string) ([]byte, error) {
		return nil, &FileError{Path: path, Err: fmt.Errorf("%w: %s", ErrDigest, why)}
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return fail("no digest line at its end: the file is truncated or not a sluice _metadata")
	}
	i := bytes.LastIndexByte(b[:len(b)-1], '\n') + 1
	line := b[i : len(b)-1]
	body := b[:i]
	if !bytes.HasPrefix(line, []byte(digestPrefix)) {
		return fail("no digest line at its end: the file is truncated, or sealed and opened without " + KeyFileKey)
	}
	want, err := hex.DecodeString(string(line[len(digestPrefix):]))
	if err != nil || len(want) != sha256.Size {
		return fail("malformed digest line")
	}
	sum := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return fail("the content does not match its digest line: the file was altered")
	}
	return body, nil
}
