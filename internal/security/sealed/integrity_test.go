package sealed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestHashRoundTrip(t *testing.T) {
	plain := pattern(200000)
	var buf bytes.Buffer
	w := NewHashWriter(&buf)
	w.Write(plain[:1000])
	w.Write(plain[1000:])
	want := sha256.Sum256(plain)
	if w.Sum() != hex.EncodeToString(want[:]) || w.Size() != int64(len(plain)) {
		t.Fatalf("Sum %s Size %d", w.Sum(), w.Size())
	}
	r, err := NewHashReader(bytes.NewReader(buf.Bytes()), "chk-3/0-0-operator", w.Size(), w.Sum())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("read back: %v", err)
	}
}

func TestHashRefused(t *testing.T) {
	plain := pattern(5000)
	sum := sha256.Sum256(plain)
	s := hex.EncodeToString(sum[:])
	const path = "chk-3/1-0-keyed"
	flipped := bytes.Clone(plain)
	flipped[4321] ^= 0x80
	tests := []struct {
		name string
		data []byte
		size int64
		sum  string
		want string
	}{
		{"altered", flipped, 5000, s, "the file was altered"},
		{"truncated", plain[:4999], 5000, s, "4999 bytes, the checkpoint recorded 5000"},
		{"appended", append(bytes.Clone(plain), 'x'), 5000, s, "longer than the recorded 5000 bytes"},
		{"other file", pattern(5001)[1:], 5000, s, "the file was altered"},
	}
	for _, tt := range tests {
		err := VerifyHash(bytes.NewReader(tt.data), path, tt.size, tt.sum)
		if !errors.Is(err, ErrDigest) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "checkpoint file "+path+":") {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if err := VerifyHash(bytes.NewReader(plain), path, 5000, s); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "zz", s[:62]} {
		if _, err := NewHashReader(bytes.NewReader(plain), path, 5000, bad); err == nil {
			t.Errorf("sum %q accepted", bad)
		}
	}
}

func TestDigestLine(t *testing.T) {
	body := []byte("{\"format\": \"sluice-checkpoint/1\"}\n")
	file := AppendDigestLine(bytes.Clone(body))
	got, err := SplitDigestLine(file, "chk-3/_metadata")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("split: %q %v", got, err)
	}
	// No trailing newline in the body: one is added before the digest.
	got, err = SplitDigestLine(AppendDigestLine([]byte("{}")), "x")
	if err != nil || string(got) != "{}\n" {
		t.Fatalf("split: %q %v", got, err)
	}
	for i := range file {
		bad := bytes.Clone(file)
		bad[i] ^= 0x04
		if _, err := SplitDigestLine(bad, "chk-3/_metadata"); !errors.Is(err, ErrDigest) || !strings.Contains(err.Error(), "chk-3/_metadata") {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, bad := range [][]byte{nil, body, file[:len(file)-1], file[:len(file)-10]} {
		if _, err := SplitDigestLine(bad, "m"); !errors.Is(err, ErrDigest) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
